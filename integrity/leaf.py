r"""Leaf data, version 1: the bytes of an event that its Merkle leaf hash covers.

``LEAF_PREFIX`` followed by the RFC 8785 (JCS) canonical JSON of the event's 13 contract
fields, with ``event_id`` as lower-case UUID text, ``occurred_at`` as RFC 3339 UTC with
milliseconds and a ``Z``, and every null, empty object and empty array left out at every
depth (array elements included), so an optional field a later schema adds leaves old
leaves unchanged. The same bytes come from each form an event takes:

- the decoded Avro datum (``uuid.UUID``, an aware ``datetime``),
- the JSON a destination receives (``sinks.encoding.event_json``: strings),
- a ClickHouse row as a dict of the same nested shape (nested records as dicts, ``details``
  a dict, ``changes`` a list of dicts; ``occurred_at`` a ``datetime`` in UTC).

Every other value is a string (the schema has no numbers nor booleans); anything else, a
naive or sub-millisecond time, a malformed id or time, or a missing required field raises
ValueError naming the field. Pure: no I/O.

Two implementations give the same bytes. The reference is the ``rfc8785`` library
(:func:`reference_canonical_event`, about 35 us per event of our size). The fast path
(:func:`fast_canonical_event`) serialises the pruned fields with ``orjson`` and
``OPT_SORT_KEYS``, which is RFC 8785 for what an event can hold provided every key is
ASCII: orjson escapes strings as ECMAScript's ``JSON.stringify`` does (``\b \f \n \r \t
\" \\``, other control characters as ``\u00xx`` in lower case, nothing else; checked over
every code point by tests/unit/test_integrity_leaf.py), and sorts keys by code point, which
for ASCII keys is RFC 8785's order of UTF-16 code units. Whenever it cannot be exact (a key
that is not ASCII, a lone surrogate, a value that is not a plain ``str``/``dict``/``list``,
any value the reference refuses) the fast path answers None and the reference decides.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import rfc8785

from integrity.merkle import leaf_hash

LEAF_VERSION = 1
LEAF_PREFIX = b"auditlog.event.v1\n"

CONTRACT_FIELDS = (
    "event_id",
    "tenant_id",
    "occurred_at",
    "action",
    "category",
    "actor",
    "resource",
    "workspace",
    "request",
    "outcome",
    "details",
    "changes",
    "source",
)
# The fields the schema requires (no null, no default): an event without one is refused.
REQUIRED_FIELDS = frozenset(
    ("event_id", "tenant_id", "occurred_at", "action", "category", "actor", "resource", "outcome")
)

_UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\Z")
_TIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def uuid_text(value: str) -> bool:
    """Whether ``value`` is a UUID as 8-4-4-4-12 hex digits (any case)."""
    return _UUID_TEXT.match(value) is not None


def _event_id(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str) and _UUID_TEXT.match(value):
        return value.lower()
    raise ValueError(f"event_id: expected a UUID (8-4-4-4-12 hex digits), got {value!r:.80}")


def _format_time(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("occurred_at: a datetime without a time zone (give it tzinfo=UTC)")
    if value.microsecond % 1000:
        raise ValueError(f"occurred_at: finer than milliseconds ({value.isoformat()})")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _occurred_at(value: Any) -> str:
    if isinstance(value, datetime):
        return _format_time(value)
    if isinstance(value, str) and _TIME_TEXT.match(value):
        try:
            datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")  # a real date and time?
        except ValueError:
            pass
        else:
            return value
    raise ValueError(
        f"occurred_at: expected RFC 3339 UTC with milliseconds "
        f"(2026-11-25T19:46:37.462Z) or an aware datetime, got {value!r:.80}"
    )


def _prune(value: Any, path: str) -> Any:
    """The value with nulls, empty objects and empty arrays left out, checked to hold only
    strings, objects with string keys and arrays; None when nothing is left."""
    if value is None:
        return None
    if isinstance(value, str):
        if _LONE_SURROGATE.search(value):
            raise ValueError(f"{path}: a lone surrogate is not text")
        return value
    if isinstance(value, Mapping):
        pruned: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: a key that is not a string ({key!r:.40})")
            kept = _prune(item, f"{path}.{key}")
            if kept is not None:
                pruned[_prune(key, f"{path} key")] = kept
        return pruned or None
    if isinstance(value, list | tuple):
        items = [_prune(item, f"{path}[{i}]") for i, item in enumerate(value)]
        return [item for item in items if item is not None] or None
    raise ValueError(f"{path}: expected a string, object or array, got {type(value).__name__}")


def reference_canonical_event(event: Mapping[str, Any]) -> bytes:
    """The RFC 8785 canonical JSON of the event's contract fields through the ``rfc8785``
    library: the reference the fast path is tested against. Raises ValueError naming the
    field when a value does not fit."""
    missing = sorted(name for name in REQUIRED_FIELDS if event.get(name) is None)
    if missing:
        raise ValueError(f"{missing[0]}: missing (required by the event contract)")
    fields: dict[str, Any] = {}
    for name in CONTRACT_FIELDS:
        value = event.get(name)
        if name == "event_id":
            value = _event_id(value)
        elif name == "occurred_at":
            value = _occurred_at(value)
        kept = _prune(value, name)
        if kept is not None:
            fields[name] = kept
    return rfc8785.dumps(fields)


class _NotExact(Exception):
    """The fast path cannot promise the reference's bytes for this value."""


def _fast_prune_dict(value: dict[Any, Any]) -> dict[str, Any] | None:
    """:func:`_prune` of a plain ``dict`` whose keys are all ASCII ``str`` (checked at once:
    ``"".join`` raises TypeError for another key, which the caller turns into None); raises
    :class:`_NotExact` for what it cannot answer for exactly (lone surrogates are left to
    orjson, which refuses them). A dict of strings only (no null, no nested value, the
    common case) is returned as it is, not copied: it is only serialised."""
    if not "".join(value).isascii():
        raise _NotExact
    values = value.values()
    if None not in values:
        try:
            "".join(values)  # every value a string (C speed): nothing to prune
        except TypeError:
            pass
        else:
            return value or None
    pruned = {}
    for key, item in value.items():
        kind = type(item)
        if kind is str:
            pruned[key] = item
        elif item is None:
            continue
        elif kind is dict:
            kept = _fast_prune_dict(item) if item else None
            if kept is not None:
                pruned[key] = kept
        elif kind is list or kind is tuple:
            items = _fast_prune_items(item) if item else None
            if items is not None:
                pruned[key] = items
        else:
            raise _NotExact
    return pruned or None


def _fast_prune_items(value: list[Any] | tuple[Any, ...]) -> list[Any] | None:
    items = []
    for item in value:
        kind = type(item)
        if kind is str:
            items.append(item)
        elif item is None:
            continue
        elif kind is dict:
            kept = _fast_prune_dict(item) if item else None
            if kept is not None:
                items.append(kept)
        elif kind is list or kind is tuple:
            nested = _fast_prune_items(item) if item else None
            if nested is not None:
                items.append(nested)
        else:
            raise _NotExact
    return items or None


_OTHER_FIELDS = tuple(name for name in CONTRACT_FIELDS if name not in ("event_id", "occurred_at"))
_REQUIRED_OTHER = REQUIRED_FIELDS.intersection(_OTHER_FIELDS)


def fast_canonical_fields(
    event: Mapping[str, Any], event_id: str, occurred_at: str
) -> bytes | None:
    """:func:`fast_canonical_event` with ``event_id`` and ``occurred_at`` given already in
    their leaf form (lower-case UUID text; RFC 3339 UTC with milliseconds and a ``Z``, a
    real date), ``event``'s own values of them ignored: for a reader that formats them
    itself (:class:`integrity.reading.LeafReader`). The caller answers for their form."""
    get = event.get
    fields: dict[str, Any] = {"event_id": event_id, "occurred_at": occurred_at}
    try:
        for name in _OTHER_FIELDS:
            value = get(name)
            kind = type(value)
            if kind is str:
                fields[name] = value
            elif value is None:
                continue
            elif kind is dict:
                kept = _fast_prune_dict(value) if value else None
                if kept is not None:
                    fields[name] = kept
            elif kind is list or kind is tuple:
                items = _fast_prune_items(value) if value else None
                if items is not None:
                    fields[name] = items
            else:
                return None
        if not fields.keys() >= _REQUIRED_OTHER:
            return None  # a required field missing or empty: the reference says what
        return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    except (_NotExact, TypeError):  # orjson.JSONEncodeError is a TypeError (surrogates)
        return None


def fast_canonical_event(event: Mapping[str, Any]) -> bytes | None:
    """:func:`reference_canonical_event`'s bytes through orjson, or None when that cannot be
    exact or the event does not fit (the reference then says why)."""
    try:
        event_id = _event_id(event.get("event_id"))
        occurred_at = _occurred_at(event.get("occurred_at"))
    except ValueError:
        return None
    return fast_canonical_fields(event, event_id, occurred_at)


def canonical_event(event: Mapping[str, Any]) -> bytes:
    """The RFC 8785 canonical JSON of the event's contract fields, normalised as the module
    says: the fast path, else the reference. Raises ValueError naming the field when a
    value does not fit."""
    fast = fast_canonical_event(event)
    return fast if fast is not None else reference_canonical_event(event)


def leaf_data(event: Mapping[str, Any]) -> bytes:
    """``LEAF_PREFIX`` + :func:`canonical_event`: what the leaf hash covers."""
    return LEAF_PREFIX + canonical_event(event)


def event_leaf_hash(event: Mapping[str, Any]) -> bytes:
    """RFC 9162 leaf hash of :func:`leaf_data` (32 bytes)."""
    return leaf_hash(leaf_data(event))
