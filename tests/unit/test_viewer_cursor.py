"""Page cursors: round trip, and refusal of anything altered, foreign or old."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime

import pytest

from viewer.query import cursor
from viewer.query.cursor import Position
from viewer.query.params import BadParameter, EventFilters

KEY = b"k" * 32
SINCE = datetime(2026, 11, 1, tzinfo=UTC)
FILTERS = EventFilters(users_ids=("u-1",))
POSITION = Position("newest", 1_790_000_000_000, 1_789_999_999_123, uuid.uuid4())


def _binding(account: str = "acme", filters: EventFilters = FILTERS, **kw: object) -> bytes:
    return cursor.binding(account, "newest", kw.get("since", SINCE), None, filters)  # type: ignore[arg-type]


def test_round_trip() -> None:
    token = cursor.encode(KEY, _binding(), POSITION)
    assert token.isascii()
    assert "=" not in token
    assert "+" not in token
    assert "/" not in token
    assert cursor.decode(KEY, _binding(), token) == POSITION
    ingested = Position("ingested", 0, 5, uuid.UUID(int=0))
    bound = cursor.binding("acme", "ingested", None, None, EventFilters())
    assert cursor.decode(KEY, bound, cursor.encode(KEY, bound, ingested)) == ingested


def _refused(token: str, bound: bytes | None = None, key: bytes = KEY) -> BadParameter:
    with pytest.raises(BadParameter) as caught:
        cursor.decode(key, bound if bound is not None else _binding(), token)
    assert caught.value.parameter == "page[after]"
    return caught.value


@pytest.mark.parametrize("index", range(82))
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
    # A version-2 cursor correctly signed is still refused (by its version).
    raw = bytearray(base64.urlsafe_b64decode(token + "=="))[:-32]
    raw[0] = 2
    signed = bytes(raw) + hmac.new(KEY, bytes(raw), hashlib.sha256).digest()
    assert "version" in _refused(base64.urlsafe_b64encode(signed).decode()).message
    for garbage in ("", "abc", "!!!!", "' OR 1=1 --", "é" * 10, "A" * 500, token[:-4]):
        _refused(garbage)
