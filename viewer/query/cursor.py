"""Page cursors: opaque to the client, signed, and bound to the query that made them.

Format (version 2), URL-safe base64 without padding of::

    version    1 byte   = 2
    order      1 byte   0 = newest (occurred_at, event_id) descending,
                        1 = ingested (ingested_at, event_id) ascending
    binding   16 bytes  SHA-256(account | order | from | to | filters)[:16]
    pinned_ms  8 bytes  signed: the ``to`` fixed at the first page (newest order), so a
                        range paged while events arrive returns each event once; 0 for
                        ingest order
    total      8 bytes  unsigned: the events of the range counted at the first page
                        (newest order), served as ``total`` on every later page instead
                        of counting again; 0 for ingest order (counted on every page)
    key_ms     8 bytes  signed: occurred_at (newest) or ingested_at (ingested) of the
                        last row served, epoch milliseconds
    event_id  16 bytes  the last row's event id
    mac       32 bytes  HMAC-SHA256(key, everything above)

Version 1 (no ``total``, 82 bytes) is no longer read: such a cursor is refused like any
foreign one, and its client starts again from page one.

The MAC is checked first (constant time), then the version, then the binding: a cursor
made for another account, other filters, another range or order is refused as
:class:`~viewer.query.params.BadParameter` ``page[after]``, as is anything malformed or
tampered with. The account id is never in the clear (only inside the binding hash).
Rotating the key invalidates every cursor in flight (clients start again from page one).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass
from datetime import datetime

from viewer.query.params import BadParameter, EventFilters, Order

VERSION = 2
PARAMETER = "page[after]"
_BODY = struct.Struct(">BB16sqQq16s")
_MAC_BYTES = 32
_ORDERS: dict[Order, int] = {"newest": 0, "ingested": 1}


@dataclass(frozen=True)
class Position:
    """Where the previous page stopped, and what the first page fixed: the ``to`` pinned
    and the ``total`` counted (newest order; 0 and 0 for ingest order)."""

    order: Order
    pinned_ms: int
    total: int
    key_ms: int
    event_id: uuid.UUID


def binding(
    account_id: str,
    order: Order,
    since: datetime | None,
    until: datetime | None,
    filters: EventFilters,
) -> bytes:
    """The 16 bytes a cursor carries to prove it belongs to this query."""
    text = "\x1f".join(
        [
            account_id,
            order,
            since.isoformat() if since else "",
            until.isoformat() if until else "",
            filters.canonical(),
        ]
    )
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


def encode(key: bytes, bound_to: bytes, position: Position) -> str:
    body = _BODY.pack(
        VERSION,
        _ORDERS[position.order],
        bound_to,
        position.pinned_ms,
        position.total,
        position.key_ms,
        position.event_id.bytes,
    )
    mac = hmac.new(key, body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode("ascii")


def decode(key: bytes, bound_to: bytes, token: str) -> Position:
    """The position in ``token``; :class:`BadParameter` when it is malformed, tampered
    with, of another version, or made for another query."""
    if len(token) > 200 or not token.isascii():
        raise BadParameter(PARAMETER, "is not a cursor of this API")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise BadParameter(PARAMETER, "is not a cursor of this API") from None
    if len(raw) != _BODY.size + _MAC_BYTES:
        raise BadParameter(PARAMETER, "is not a cursor of this API")
    body, mac = raw[: _BODY.size], raw[_BODY.size :]
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()):
        raise BadParameter(PARAMETER, "is not a valid cursor (altered, or from another server)")
    version, order_code, their_binding, pinned_ms, total, key_ms, event_id = _BODY.unpack(body)
    if version != VERSION:
        raise BadParameter(PARAMETER, f"cursor version {version} is not supported; start again")
    if not hmac.compare_digest(their_binding, bound_to):
        raise BadParameter(
            PARAMETER, "belongs to another query (account, range, order or filters differ)"
        )
    order: Order = "newest" if order_code == 0 else "ingested"
    return Position(order, pinned_ms, total, key_ms, uuid.UUID(bytes=event_id))
