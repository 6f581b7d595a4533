"""Page cursors: round trip, and refusal of anything altered, foreign or old."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import uuid
from datetime import UTC, datetime

import pytest

from viewer.query import cursor
from viewer.query.cursor import Position
from viewer.query.params import BadParameter, EventFilters

KEY = b"k" * 32
SINCE = datetime(2026, 11, 1, tzinfo=UTC)
FILTERS = EventFilters(users_ids=("u-1",))
POSITION = Position("newest", 1_790_000_000_000, 523_417, 1_789_999_999_123, uuid.uuid4())


def _binding(account: str = "acme", filters: EventFilters = FILTERS, **kw: object) -> bytes:
    return cursor.binding(account, "newest", kw.get("since", SINCE), None, filters)  # type: ignore[arg-type]


def test_round_trip() -> None:
    token = cursor.encode(KEY, _binding(), POSITION)
    assert token.isascii()
    assert "=" not in token
    assert "+" not in token
    assert "/" not in token
    assert cursor.decode(KEY, _binding(), token) == POSITION
    ingested = Position("ingested", 0, 0, 5, uuid.UUID(int=0))
    bound = cursor.binding("acme", "ingested", None, None, EventFilters())
    assert cursor.decode(KEY, bound, cursor.encode(KEY, bound, ingested)) == ingested


def _refused(token: str, bound: bytes | None = None, key: bytes = KEY) -> BadParameter:
    with pytest.raises(BadParameter) as caught:
        cursor.decode(key, bound if bound is not None else _binding(), token)
    assert caught.value.parameter == "page[after]"
    return caught.value


@pytest.mark.parametrize("index", range(90))
def test_any_flipped_byte_is_refused(index: int) -> None:
    raw = bytearray(base64.urlsafe_b64decode(cursor.encode(KEY, _binding(), POSITION) + "=="))
    raw[index] ^= 0x01
    _refused(base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode())


def test_foreign_account_other_filters_other_range_other_order() -> None:
    token = cursor.encode(KEY, _binding(), POSITION)
    assert "another query" in _refused(token, _binding(account="globex")).message
    _refused(token, _binding(filters=EventFilters(users_ids=("u-2",))))
    _refused(token, _binding(filters=EventFilters()))
    _refused(token, _binding(since=datetime(2026, 10, 1, tzinfo=UTC)))
    _refused(token, cursor.binding("acme", "ingested", SINCE, None, FILTERS))


def test_other_key_wrong_version_and_garbage() -> None:
    token = cursor.encode(KEY, _binding(), POSITION)
    _refused(token, key=b"x" * 32)
    # A version-3 cursor correctly signed is still refused (by its version).
    raw = bytearray(base64.urlsafe_b64decode(token + "=="))[:-32]
    raw[0] = 3
    signed = bytes(raw) + hmac.new(KEY, bytes(raw), hashlib.sha256).digest()
    assert "version" in _refused(base64.urlsafe_b64encode(signed).decode()).message
    for garbage in ("", "abc", "!!!!", "' OR 1=1 --", "é" * 10, "A" * 500, token[:-4]):
        _refused(garbage)


def test_a_version_1_cursor_is_refused_like_a_foreign_one() -> None:
    """Version 1 (before ``total``), correctly signed with the same key and binding."""
    body = struct.pack(
        ">BB16sqq16s",
        1,
        0,
        _binding(),
        POSITION.pinned_ms,
        POSITION.key_ms,
        POSITION.event_id.bytes,
    )
    old = body + hmac.new(KEY, body, hashlib.sha256).digest()
    refused = _refused(base64.urlsafe_b64encode(old).rstrip(b"=").decode())
    assert refused.message == "is not a cursor of this API"


def test_the_total_round_trips_up_to_the_largest_count() -> None:
    for total in (0, 1, 2**63, 2**64 - 1):
        position = Position("newest", 5, total, 4, uuid.UUID(int=1))
        assert cursor.decode(KEY, _binding(), cursor.encode(KEY, _binding(), position)) == position
