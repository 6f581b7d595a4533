"""Streamed copies for tests, made as the appender and the sinks make them: events as a
destination receives them (:func:`sinks.encoding.event_json`) and, after each batch of
them, its ``auditlog.leaves`` records and (every few batches) a signed checkpoint, built by
:mod:`integrity.copy_records` over real trees and real keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from integrity import merkle
from integrity.checkpoint import Checkpoint, origin_for, sign
from integrity.copy_records import CheckpointRecord, encode, leaves_records
from integrity.keys import KeyRing, SigningKey
from integrity.leaf import event_leaf_hash
from sinks.encoding import event_json

KEY = SigningKey("auditlog.copy-test", Ed25519PrivateKey.generate())
RING = KeyRing([KEY.verifier()])
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SIGNED_MS = int((T0 + timedelta(hours=1)).timestamp() * 1000)


def copy_event(account: str, number: int) -> dict[str, Any]:
    """Event ``number`` of ``account`` as a destination receives it (strings only)."""
    at = T0 + timedelta(seconds=number)
    return {
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{account}/{number}")),
        "tenant_id": account,
        "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
        "action": "recipe.stopped",
        "category": "recipes",
        "actor": {"type": "user", "id": f"u-{number}", "name": "Ann Lee", "email": None},
        "resource": {"type": "recipe", "id": f"r-{number}", "name": "Onboard <new> hires"},
        "workspace": {"id": "w-1", "name": "Main", "environment": "prod"},
        "request": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0"},
        "outcome": {"status": "success", "reason": None},
        "details": {"reason": "manual", "ticket": f"T-{number}"},
        "changes": [{"field": "state", "before": "running", "after": "stopped"}],
        "source": "recipes-service",
    }


@dataclass
class Batch:
    """One appended batch: its events' lines, then its integrity lines."""

    events: list[bytes] = field(default_factory=list)
    integrity: list[bytes] = field(default_factory=list)

    def lines(self) -> list[bytes]:
        return [*self.events, *self.integrity]


@dataclass
class GeneratedCopy:
    account: str
    events: list[dict[str, Any]]
    batches: list[Batch]
    hashes: list[bytes]

    def lines(self) -> list[bytes]:
        return [line for batch in self.batches for line in batch.lines()]

    def ndjson(self) -> bytes:
        return b"".join(line + b"\n" for line in self.lines())


def checkpoint_line(
    account: str, hashes: list[bytes], size: int, time_ms: int, key: SigningKey = KEY
) -> bytes:
    checkpoint = Checkpoint(origin_for(account), size, merkle.root(hashes[:size]), time_ms)
    return encode(CheckpointRecord(account, sign(checkpoint, [key])))


def generated_copy(
    account: str = "acme",
    events: int = 20,
    *,
    batch: int = 5,
    checkpoint_every: int = 2,
    max_hashes: int = 8192,
) -> GeneratedCopy:
    """``events`` events of ``account`` in batches of ``batch``, each followed by its
    leaves records, and a checkpoint after every ``checkpoint_every`` batches and the last."""
    made = [copy_event(account, n) for n in range(events)]
    hashes = [event_leaf_hash(event) for event in made]
    tree = merkle.Frontier.empty()
    batches = []
    starts = range(0, events, batch)
    for number, start in enumerate(starts, 1):
        chunk = hashes[start : start + batch]
        out = Batch([event_json(event) for event in made[start : start + batch]])
        out.integrity += [
            encode(r) for r in leaves_records(account, tree, chunk, max_hashes=max_hashes)
        ]
        for leaf_hash in chunk:
            tree.append(leaf_hash)
        if number % checkpoint_every == 0 or number == len(starts):
            out.integrity.append(checkpoint_line(account, hashes, tree.size, SIGNED_MS + tree.size))
        batches.append(out)
    return GeneratedCopy(account, made, batches, hashes)
