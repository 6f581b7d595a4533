"""Kafka record headers every audit event carries, so routers, filters and dead-letter
handling downstream need not decode the value. The record key is the tenant id."""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import Any, Protocol

TENANT = "auditlog-tenant"
ACTION = "auditlog-action"
CATEGORY = "auditlog-category"
EVENT_ID = "auditlog-event-id"
# "fp:<16 hex digits>" (single-object encoding) or "sr:<schema id>" (schema registry).
SCHEMA = "auditlog-schema"
# What a record on the events topic is when it is not an event: ``integrity`` marks the
# integrity log's streamed copy (integrity/copy_records.py). Absent on every event; the
# producer SDK refuses events that carry it.
RECORD_KIND = "auditlog-record"
INTEGRITY = "integrity"
INTEGRITY_VALUE = INTEGRITY.encode()
INTEGRITY_HEADER = (RECORD_KIND, INTEGRITY_VALUE)
"""The header as a consumed record's ``headers()`` list holds it (values are bytes)."""


HeaderValue = str | bytes | None


def header_map(
    headers: Sequence[tuple[str, HeaderValue]] | Mapping[str, HeaderValue] | None,
) -> dict[str, bytes]:
    """The headers of a record as a dict of bytes (the last value wins for repeated names;
    headers without a value are left out)."""
    items = headers.items() if isinstance(headers, Mapping) else headers or ()
    return {
        name: value.encode() if isinstance(value, str) else value
        for name, value in items
        if value is not None
    }


def header_list(
    headers: Sequence[tuple[str, HeaderValue]] | Mapping[str, HeaderValue] | None,
) -> list[tuple[str, bytes | None]]:
    """The headers of a record as a list of (name, bytes or None), order and repeats kept."""
    items = headers.items() if isinstance(headers, Mapping) else headers or ()
    return [(name, value.encode() if isinstance(value, str) else value) for name, value in items]


def is_integrity(headers: Any) -> bool:
    """Whether a consumed record's headers (confluent_kafka's list of ``(name, bytes)``)
    mark it as an integrity record: any ``RECORD_KIND`` header whose value is the bytes
    ``integrity``. Another value of that header does not (and is never produced by us)."""
    return bool(headers) and INTEGRITY_HEADER in headers


class _HasHeaders(Protocol):
    def headers(self) -> Any: ...


_headers_of = operator.methodcaller("headers")


def any_integrity(records: Sequence[_HasHeaders]) -> bool:
    """Whether any of consumed ``records`` is an integrity record (:func:`is_integrity`),
    without a Python call per record: the hot paths' one check of a batch."""
    try:
        return any(map(operator.contains, map(_headers_of, records), repeat(INTEGRITY_HEADER)))
    except TypeError:  # a record without headers (None): ask each one
        return any(is_integrity(record.headers()) for record in records)
