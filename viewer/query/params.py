"""The list and export parameters, parsed from a request's query string and validated.

Input is the query string as ``(name, value)`` pairs in order (Starlette's
``request.query_params.multi_items()``). Every problem raises :class:`BadParameter` naming
the parameter exactly as the client spelled it; the HTTP app answers it with a 400.
Nothing here touches ClickHouse, and nothing here escapes anything: values are carried to
the SQL as bound parameters only (see :mod:`viewer.query.sql`), so an injection attempt
such as ``' OR 1=1 --`` is an ordinary (non-matching) value.

Names (the seed product's first, so its clients keep working):

========================================  ==============================================
``from``, ``to``                          ISO 8601; ``from`` inclusive, ``to`` exclusive;
                                          a date alone is midnight UTC; a time without a
                                          zone is taken as UTC (the seed's clients send
                                          ``Z``); ``from`` must be before ``to``
``users_ids[]``                           actor ids (repeatable)
``include_resource_types[]`` /            resource types kept / dropped (repeatable)
``exclude_resource_types[]``
``include_event_types[]`` /               actions kept / dropped (repeatable)
``exclude_event_types[]``
``page[after]``                           the cursor of the previous page
``page[size]``                            1..100 (the seed's limit; default 100)
``page[limit]``                           ours: 1..1000, instead of ``page[size]``
``categories[]``                          activity categories (repeatable)
``actor_emails[]``                        actor e-mail addresses, case-insensitive
``resource_ids[]``                        resource ids (repeatable)
``workspace_id``, ``environment``         the workspace's id / environment
``outcome``                               ``success`` or ``failure``
``ip``                                    the request's IP address (v4 or v6)
``q``                                     case-insensitive substring of the resource name
                                          or the actor's e-mail (1..256 characters)
``order``                                 ``newest`` (default: occurred_at, newest
                                          first) or ``ingested`` (ingest order, oldest
                                          first, for pollers)
``account_id``                            a managed account (partners); authorised by the
                                          app, not here
``format``                                export only: ``ndjson`` (default) or ``csv``
========================================  ==============================================

A scalar given twice, an unknown name, more than :data:`MAX_VALUES` values of a list, a
value longer than :data:`MAX_VALUE_CHARS` or holding control characters: 400.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from schemas.catalog.model import ACTION_PATTERN, ID_PATTERN

MAX_SEED_PAGE_SIZE = 100
MAX_PAGE_LIMIT = 1000
DEFAULT_PAGE_SIZE = 100
MAX_VALUES = 100
MAX_VALUE_CHARS = 512
MAX_Q_CHARS = 256

Order = Literal["newest", "ingested"]
ExportFormat = Literal["ndjson", "csv"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


class BadParameter(ValueError):
    """A query parameter that is unknown, malformed or out of range; ``parameter`` is its
    name as the client sent it, ``message`` says what is wrong (safe to show)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class EventFilters:
    """What an event must match (all given filters at once; values of one list: any).
    Empty tuples and None mean "no filter". Tuples are sorted and deduplicated so two
    equal filter sets compare (and bind cursors) equal."""

    users_ids: tuple[str, ...] = ()
    include_resource_types: tuple[str, ...] = ()
    exclude_resource_types: tuple[str, ...] = ()
    include_event_types: tuple[str, ...] = ()
    exclude_event_types: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    actor_emails: tuple[str, ...] = ()  # lower-cased
    resource_ids: tuple[str, ...] = ()
    workspace_id: str | None = None
    environment: str | None = None
    outcome: Literal["success", "failure"] | None = None
    ip: str | None = None
    q: str | None = None

    def query_items(self) -> list[tuple[str, str]]:
        """These filters as query parameters, in a fixed order (what the audit event of a
        read records: the filters applied, not the request's text)."""
        items: list[tuple[str, str]] = []
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, tuple):
                items.extend((f"{name}[]", item) for item in value)
            elif value is not None:
                items.append((name, value))
        return items

    def canonical(self) -> str:
        """A stable text of these filters (what a cursor binds)."""
        parts = []
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value in ((), None):
                continue
            parts.append(f"{name}={value!r}")
        return "&".join(parts)


@dataclass(frozen=True)
class ListQuery:
    """One list request. ``since`` inclusive, ``until`` exclusive, both UTC or None."""

    since: datetime | None = None
    until: datetime | None = None
    filters: EventFilters = field(default_factory=EventFilters)
    page_after: str | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    order: Order = "newest"
    account_id: str | None = None


@dataclass(frozen=True)
class ExportQuery:
    """One export request: a filtered range, newest first, as NDJSON or CSV."""

    since: datetime | None = None
    until: datetime | None = None
    filters: EventFilters = field(default_factory=EventFilters)
    format: ExportFormat = "ndjson"
    account_id: str | None = None


# name -> kind. "list" names are repeatable; every other name may appear once.
_FILTER_LISTS = {
    "users_ids[]": "users_ids",
    "include_resource_types[]": "include_resource_types",
    "exclude_resource_types[]": "exclude_resource_types",
    "include_event_types[]": "include_event_types",
    "exclude_event_types[]": "exclude_event_types",
    "categories[]": "categories",
    "actor_emails[]": "actor_emails",
    "resource_ids[]": "resource_ids",
}
_FILTER_SCALARS = {"workspace_id", "environment", "outcome", "ip", "q"}
_COMMON_SCALARS = {"from", "to", "account_id"} | _FILTER_SCALARS
_LIST_ONLY = {"page[after]", "page[size]", "page[limit]", "order"}
_EXPORT_ONLY = {"format"}


def parse_list_query(items: Sequence[tuple[str, str]]) -> ListQuery:
    """The list request of these query items; raises :class:`BadParameter`."""
    lists, scalars = _collect(items, _COMMON_SCALARS | _LIST_ONLY)
    since, until = _range(scalars)
    if "page[size]" in scalars and "page[limit]" in scalars:
        raise BadParameter("page[limit]", "give page[size] or page[limit], not both")
    page_size = DEFAULT_PAGE_SIZE
    if "page[size]" in scalars:
        page_size = _int_in("page[size]", scalars["page[size]"], 1, MAX_SEED_PAGE_SIZE)
    if "page[limit]" in scalars:
        page_size = _int_in("page[limit]", scalars["page[limit]"], 1, MAX_PAGE_LIMIT)
    order = scalars.get("order", "newest")
    if order not in ("newest", "ingested"):
        raise BadParameter("order", "must be newest or ingested")
    after = scalars.get("page[after]")
    if after is not None and not after:
        raise BadParameter("page[after]", "is empty")
    return ListQuery(
        since=since,
        until=until,
        filters=_filters(lists, scalars),
        page_after=after,
        page_size=page_size,
        order="ingested" if order == "ingested" else "newest",
        account_id=_account(scalars),
    )


def parse_export_query(items: Sequence[tuple[str, str]]) -> ExportQuery:
    """The export request of these query items; raises :class:`BadParameter`."""
    lists, scalars = _collect(items, _COMMON_SCALARS | _EXPORT_ONLY)
    since, until = _range(scalars)
    fmt = scalars.get("format", "ndjson")
    if fmt not in ("ndjson", "csv"):
        raise BadParameter("format", "must be ndjson or csv")
    return ExportQuery(
        since=since,
        until=until,
        filters=_filters(lists, scalars),
        format="csv" if fmt == "csv" else "ndjson",
        account_id=_account(scalars),
    )


def _collect(
    items: Sequence[tuple[str, str]], scalar_names: set[str]
) -> tuple[dict[str, list[str]], dict[str, str]]:
    lists: dict[str, list[str]] = {}
    scalars: dict[str, str] = {}
    for name, value in items:
        shown = _shown(name)
        if name in _FILTER_LISTS:
            values = lists.setdefault(name, [])
            if len(values) >= MAX_VALUES:
                raise BadParameter(shown, f"at most {MAX_VALUES} values")
            values.append(_text(shown, value))
        elif name in scalar_names:
            if name in scalars:
                raise BadParameter(shown, "given more than once")
            scalars[name] = _text(shown, value)
        else:
            raise BadParameter(shown, "unknown parameter")
    return lists, scalars


def _shown(name: str) -> str:
    """The name as the client sent it, cut and without control characters (for messages)."""
    return _CONTROL.sub("?", name[:64])


def _text(name: str, value: str) -> str:
    if len(value) > MAX_VALUE_CHARS:
        raise BadParameter(name, f"longer than {MAX_VALUE_CHARS} characters")
    if _CONTROL.search(value):
        raise BadParameter(name, "holds control characters")
    return value


def _int_in(name: str, value: str, low: int, high: int) -> int:
    if not re.fullmatch(r"[0-9]{1,7}", value):
        raise BadParameter(name, f"must be a whole number from {low} to {high}")
    number = int(value)
    if not low <= number <= high:
        raise BadParameter(name, f"must be from {low} to {high}, not {number}")
    return number


def parse_instant(name: str, value: str) -> datetime:
    """An ISO 8601 instant in UTC, rounded up to the millisecond (the table's precision):
    ``from`` .0009 then excludes an event at .000 (before it), ``to`` .0009 includes it."""
    text = value.strip()
    if _DATE_ONLY.fullmatch(text):
        text += "T00:00:00"
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadParameter(name, "is not an ISO 8601 date-time") from None
    if "T" not in text and " " not in text:
        raise BadParameter(name, "is not an ISO 8601 date-time")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    if not datetime(1970, 1, 1, tzinfo=UTC) <= parsed < datetime(2200, 1, 1, tzinfo=UTC):
        raise BadParameter(name, "is outside 1970..2200")
    below = parsed.microsecond % 1000
    return parsed + timedelta(microseconds=1000 - below) if below else parsed


def _range(scalars: dict[str, str]) -> tuple[datetime | None, datetime | None]:
    since = parse_instant("from", scalars["from"]) if "from" in scalars else None
    until = parse_instant("to", scalars["to"]) if "to" in scalars else None
    if since is not None and until is not None and since >= until:
        raise BadParameter("to", "must be later than from")
    return since, until


def _account(scalars: dict[str, str]) -> str | None:
    account = scalars.get("account_id")
    if account is not None and not _TENANT.fullmatch(account):
        raise BadParameter("account_id", "is not an account id")
    return account


def _checked(name: str, values: list[str], pattern: re.Pattern[str], what: str) -> list[str]:
    for value in values:
        if not pattern.fullmatch(value):
            raise BadParameter(name, f"{value[:64]!r} is not {what}")
    return values


def _filters(lists: dict[str, list[str]], scalars: dict[str, str]) -> EventFilters:
    def many(name: str) -> list[str]:
        values = lists.get(name, [])
        for value in values:
            if not value:
                raise BadParameter(name, "empty value")
        return values

    def norm(values: list[str]) -> tuple[str, ...]:
        return tuple(sorted(set(values)))

    ip = scalars.get("ip")
    if ip is not None:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            raise BadParameter("ip", "is not an IPv4 or IPv6 address") from None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        ip = str(address)  # as the producer stores it
    outcome = scalars.get("outcome")
    if outcome is not None and outcome not in ("success", "failure"):
        raise BadParameter("outcome", "must be success or failure")
    q = scalars.get("q")
    if q is not None and not 1 <= len(q) <= MAX_Q_CHARS:
        raise BadParameter("q", f"must be 1 to {MAX_Q_CHARS} characters")
    for name in ("workspace_id", "environment"):
        if name in scalars and not scalars[name]:
            raise BadParameter(name, "is empty")
    return EventFilters(
        users_ids=norm(many("users_ids[]")),
        include_resource_types=norm(
            _checked(
                "include_resource_types[]",
                many("include_resource_types[]"),
                ID_PATTERN,
                "a resource type",
            )
        ),
        exclude_resource_types=norm(
            _checked(
                "exclude_resource_types[]",
                many("exclude_resource_types[]"),
                ID_PATTERN,
                "a resource type",
            )
        ),
        include_event_types=norm(
            _checked(
                "include_event_types[]",
                many("include_event_types[]"),
                ACTION_PATTERN,
                "an event type",
            )
        ),
        exclude_event_types=norm(
            _checked(
                "exclude_event_types[]",
                many("exclude_event_types[]"),
                ACTION_PATTERN,
                "an event type",
            )
        ),
        categories=norm(_checked("categories[]", many("categories[]"), ID_PATTERN, "a category")),
        actor_emails=norm([v.lower() for v in many("actor_emails[]")]),
        resource_ids=norm(many("resource_ids[]")),
        workspace_id=scalars.get("workspace_id"),
        environment=scalars.get("environment"),
        outcome="success" if outcome == "success" else "failure" if outcome else None,
        ip=ip,
        q=q,
    )
