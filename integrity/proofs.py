"""An event's proof of inclusion in its account's log, as the viewer serves it: the event's
leaves, an RFC 9162 inclusion proof of each in the tree of the newest signed checkpoint,
and that checkpoint, so anyone holding our public keys can check that the event they read
is the one the log holds (docs/integrity.md).

The proof is computed from the stored leaf hashes (32 bytes each: 32 MB for a million
leaves of one account, read once per request); the checkpoint is the newest one whose
signature the store holds, not re-verified here (the client verifies it).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client

from integrity import merkle
from integrity.leaf import leaf_data
from integrity.stored_log import read_event

ClientFactory = Callable[[], Client]


@dataclass(frozen=True)
class EventProof:
    event_id: str
    tree_size: int
    checkpoint: str  # the signed note
    leaves: list[dict[str, Any]]  # index, leaf_hash, inclusion_proof (base64)
    leaf_data: str | None  # the leaf's canonical bytes, when the event is still stored

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "tree_size": self.tree_size,
            "checkpoint": self.checkpoint,
            "leaves": self.leaves,
            "leaf_data": self.leaf_data,
        }


class ProofReader:
    """Proofs of one database's logs; one sessionless client per call."""

    def __init__(self, client: ClientFactory, database: str) -> None:
        self._client = client
        self._database = database

    def proof(self, account_id: str, event_id: str) -> EventProof | None:
        """The proof of ``event_id`` in ``account_id``'s log at its newest checkpoint, or
        None when no checkpoint covers it yet (or the id is not a UUID). The stored event's
        leaf data comes with it, for the client to hash and compare."""
        try:
            parsed = str(uuid.UUID(event_id))
        except (ValueError, TypeError, AttributeError):
            return None
        client = self._client()
        db = self._database
        try:
            newest = client.query(
                f"SELECT size, note FROM {db}.integrity_checkpoints FINAL "  # noqa: S608
                "WHERE tenant_id = {a:String} ORDER BY size DESC, time DESC LIMIT 1",
                parameters={"a": account_id},
            ).result_rows
            if not newest:
                return None
            size, note = int(newest[0][0]), str(newest[0][1])
            indexes = [
                int(index)
                for (index,) in client.query(
                    f"SELECT leaf_index FROM {db}.integrity_leaves FINAL "  # noqa: S608
                    "WHERE tenant_id = {a:String} AND event_id = {e:UUID} "
                    "AND leaf_index < {size:UInt64} ORDER BY leaf_index",
                    parameters={"a": account_id, "e": parsed, "size": size},
                ).result_rows
            ]
            if not indexes:
                return None
            hashes = [
                bytes(leaf_hash)
                for (leaf_hash,) in client.query(
                    f"SELECT leaf_hash FROM {db}.integrity_leaves FINAL "  # noqa: S608
                    "WHERE tenant_id = {a:String} AND leaf_index < {size:UInt64} "
                    "ORDER BY leaf_index",
                    parameters={"a": account_id, "size": size},
                ).result_rows
            ]
            event = read_event(client, db, account_id, parsed)
        finally:
            client.close()
        leaves = [
            {
                "index": index,
                "leaf_hash": _b64(hashes[index]),
                "inclusion_proof": [_b64(h) for h in merkle.inclusion_proof(index, hashes)],
            }
            for index in indexes
            if index < len(hashes)
        ]
        data = None if event is None else leaf_data(event).decode("utf-8")
        return EventProof(parsed, size, note, leaves, data)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
