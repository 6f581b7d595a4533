"""The producer's fast path: a mapping validated straight into its Avro datum.

:class:`~schemas.validation.EventValidator` validates through the pydantic model
:class:`~schemas.event.AuditEvent` (the contract) and then builds the datum from the model:
eight model instances per event, a ``uuid.UUID`` and an aware ``datetime`` turned back into
text and milliseconds, Python validators for the address, the details and the time, and
catalog look-ups through pydantic attributes. That costs far more than encoding and sending.

:class:`DatumValidator` checks the same constraints with one pydantic-core validator over
plain typed dicts built from the model's own field types (:mod:`schemas.event`), then the
rules that need Python (address, outcome, details size, catalog, time window) on the
validated dict, compiled to dict look-ups and integer comparisons, and returns the datum.

It is a fast path, never a second contract: it accepts a subset of what the model accepts
(canonical lowercase event ids only, plain dicts only, ...) and returns ``None`` for
anything else, valid or not; the caller then takes the model's path, whose errors are the
ones users see. A property-based test checks that whatever this path accepts, the model
accepts and encodes to the same bytes.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, NotRequired

from pydantic import (
    AwareDatetime,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from typing_extensions import TypedDict

from schemas.catalog import Catalog
from schemas.event import (
    EPOCH,
    MAX_CHANGES,
    MAX_DETAILS,
    MAX_DETAILS_BYTES,
    Action,
    ChangeValue,
    DetailValue,
    Email,
    SnakeId,
    TenantId,
    Text256,
    Text512,
    normalise_ip,
)

_STRICT = ConfigDict(extra="forbid")
_ONE_MS = timedelta(milliseconds=1)
_ONE_US = timedelta(microseconds=1)
# The only event id form taken here: str(uuid.UUID(x)) == x. Any other form the model
# accepts (upper case, braces, urn:, a UUID object) goes the model's way.
_UUID_TEXT = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
CanonicalUuid = Annotated[str, StringConstraints(pattern=_UUID_TEXT)]
# _check_details' key rule, as a pattern the Rust engine checks (anchored: fullmatch).
DetailsKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class _Actor(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    type: Literal["user", "api_client", "system", "unknown"]
    id: Text256
    name: NotRequired[Text512 | None]
    email: NotRequired[Email | None]


class _Resource(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    type: SnakeId
    id: Text256
    name: NotRequired[Text512 | None]


class _Workspace(TypedDict, total=False):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    id: Text256 | None
    name: Text512 | None
    environment: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None


class _Request(TypedDict, total=False):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    ip: str | None
    user_agent: Annotated[str, StringConstraints(max_length=1024)] | None
    request_id: Annotated[str, StringConstraints(max_length=128)] | None
    session_id: Annotated[str, StringConstraints(max_length=128)] | None


class _Outcome(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    status: Literal["success", "failure"]
    reason: NotRequired[Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None]


class _Change(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    field: Text256
    before: NotRequired[ChangeValue | None]
    after: NotRequired[ChangeValue | None]


class _Event(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    event_id: NotRequired[CanonicalUuid]
    tenant_id: TenantId
    occurred_at: AwareDatetime
    action: Action
    category: NotRequired[SnakeId | None]
    actor: _Actor
    resource: _Resource
    workspace: NotRequired[_Workspace]
    request: NotRequired[_Request]
    outcome: NotRequired[_Outcome]
    details: NotRequired[Annotated[dict[DetailsKey, DetailValue], Field(max_length=MAX_DETAILS)]]
    changes: NotRequired[Annotated[list[_Change], Field(max_length=MAX_CHANGES)]]
    source: NotRequired[Annotated[str, StringConstraints(min_length=1, max_length=128)] | None]


_VALIDATE = TypeAdapter(_Event).validator.validate_python
_NO_REQUEST: dict[str, Any] = {}
_SUCCESS: dict[str, Any] = {"status": "success"}
_AF_INET = socket.AF_INET
_inet_pton = socket.inet_pton


def utc_now() -> datetime:
    """The current time in UTC: :class:`~schemas.validation.EventValidator`'s clock."""
    return datetime.now(UTC)


def _uuid4_text() -> str:
    """``str(uuid.uuid4())`` without the UUID object: 16 random bytes, version 4, RFC 4122
    variant."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _ip(value: str) -> str:
    """The model's normal form of an address: a dotted quad that ``inet_pton`` takes (no
    leading zeros, four decimal octets) is already in it; anything else asks ``ipaddress``
    (the model's own function; raises ValueError)."""
    try:
        _inet_pton(_AF_INET, value)
    except (OSError, ValueError):
        return normalise_ip(value)
    return value


class DatumValidator:
    """``datum(data)``: the Avro datum of a valid plain-dict event, or None (see the module
    doc). Built from an :class:`~schemas.validation.EventValidator`'s catalog and policy."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        max_future_skew: timedelta,
        max_age: timedelta,
        allow_custom_actions: bool,
        clock: Callable[[], datetime],
    ) -> None:
        # action -> (category, resource type): the catalog rules as one dict look-up.
        self._rules = {a.action: (a.category, a.resource_type) for a in catalog.activities}
        self._skew_us = max_future_skew // _ONE_US
        self._age_us = max_age // _ONE_US
        self._allow_custom = allow_custom_actions
        self._clock = clock
        # The default clock read as an integer: the same instant, no datetime arithmetic.
        self._system_clock = clock is utc_now

    def datum(self, data: Any) -> dict[str, Any] | None:  # noqa: PLR0911, PLR0912
        if type(data) is not dict:
            return None
        try:
            event: dict[str, Any] = _VALIDATE(data)
        except ValidationError:
            return None
        occurred = event["occurred_at"]
        # Floor to the millisecond, as the model's truncation of microseconds does.
        millis = (occurred - EPOCH) // _ONE_MS
        now_us = (
            time.time_ns() // 1000 if self._system_clock else (self._clock() - EPOCH) // _ONE_US
        )
        if not now_us - self._age_us <= millis * 1000 <= now_us + self._skew_us:
            return None
        action = event["action"]
        category = event.get("category")
        rule = self._rules.get(action)
        resource = event["resource"]
        if rule is not None:
            if (category is not None and category != rule[0]) or resource["type"] != rule[1]:
                return None
            category = rule[0]
        elif self._allow_custom and action.startswith("custom."):
            category = category or "custom"
        else:
            return None
        outcome = event.get("outcome", _SUCCESS)
        if outcome["status"] == "failure" and outcome.get("reason") is None:
            return None
        request = event.get("request", _NO_REQUEST)
        ip = request.get("ip")
        if ip is not None:
            try:
                ip = _ip(ip)
            except ValueError:
                return None
        details = event.get("details")
        if details:
            size = 0
            for key, value in details.items():
                size += len(key) + len(value.encode())
            if size > MAX_DETAILS_BYTES:
                return None
        # The validated dict is new: it becomes the datum (the encoder reads absent
        # optional fields as null).
        if "event_id" not in event:
            event["event_id"] = _uuid4_text()
        event["occurred_at"] = millis
        event["category"] = category
        if ip is not None:
            request["ip"] = ip
        elif "request" not in event:
            event["request"] = {}
        if "workspace" not in event:
            event["workspace"] = {}
        if "outcome" not in event:
            event["outcome"] = {"status": "success"}
        return event
