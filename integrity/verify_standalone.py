#!/usr/bin/env python3
"""Verify an auditlog checkpoint against your own copy of an account's events.

One file, meant to be copied and read: it needs Python 3.11+ and the ``cryptography``
package, and imports nothing else of auditlog. It re-implements, on purpose, what the
service does (docs/integrity.md), so that you need not trust the service's code.

    python verify_standalone.py --keys keys.json --checkpoint note.txt --events events.ndjson
        [--old-checkpoint older-note.txt] [--prune-statement statement.txt ...]

- ``keys.json``: the public keys with their validity windows (``auditlog keys export``).
- ``note.txt``: a checkpoint (a C2SP signed note) of the account's log.
- ``events.ndjson``: the account's events as a destination received them, one JSON object a
  line, in the order they were published (Kafka offset order, duplicates included), from
  the log's first event on. A filtered destination does not hold the whole log.

It recomputes each event's leaf hash (RFC 9162 over the RFC 8785 canonical JSON), the tree
of the first ``size`` events, and checks that root and the note's signature by a key valid
at the checkpoint's time; with ``--old-checkpoint``, also that the older checkpoint is a
prefix of the same events (the log was only appended to). With ``--prune-statement``, a
prune statement (``auditlog-prune/<account>``, ``below N``, ``retention D``, ``time T``:
by T, with D days of retention, our store's TTL had removed the events of the leaves below
N) is checked too: signed by a key valid at its time, of the checkpoint's account, N no
larger than the checkpoint's size.

Limit: the canonical JSON here covers only what events hold, strings, objects and arrays
(the event schema has no numbers, booleans or nulls that survive: nulls, empty objects and
empty arrays are left out). A number or boolean in an event is reported as an error.

Exit codes: 0 verified; 1 verification failed (the reason is printed); 2 unusable input.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

LEAF_PREFIX = b"auditlog.event.v1\n"
PRUNE_PREFIX = "auditlog-prune/"
FIELDS = [
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
]
REQUIRED = set(FIELDS[:7]) | {"outcome"}  # event_id .. resource, and outcome
UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\Z")
TIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z")
DECIMAL = re.compile(r"(?:0|[1-9][0-9]*)\Z")
ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f]')


class Failed(Exception):
    """Verification failed: the events, keys and checkpoint do not agree."""


class Unusable(Exception):
    """An input cannot be read as what it should be."""


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    return ESCAPES.get(char) or f"\\u{ord(char):04x}"


def jcs(value: Any) -> str:
    """RFC 8785 for strings, objects and arrays: keys sorted by UTF-16 code units, strings
    escaped as ECMAScript's JSON.stringify does, no white space."""
    if isinstance(value, str):
        if re.search("[\ud800-\udfff]", value):
            raise Unusable("a string holds a lone surrogate")
        return '"' + NEEDS_ESCAPE.sub(_escape, value) + '"'
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda item: item[0].encode("utf-16-be"))
        return "{" + ",".join(jcs(k) + ":" + jcs(v) for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    raise Unusable(f"a {type(value).__name__} value: events hold only strings, objects, arrays")


def prune(value: Any) -> Any:
    """The value without nulls, empty objects and empty arrays, at every depth."""
    if isinstance(value, dict):
        kept = {k: prune(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not None} or None
    if isinstance(value, list):
        return [v for v in (prune(item) for item in value) if v is not None] or None
    return value


def canonical_event(event: Any) -> bytes:
    """The canonical JSON of an event's 13 contract fields (leaf data version 1)."""
    if not isinstance(event, dict):
        raise Unusable("an event is a JSON object")
    missing = sorted(name for name in REQUIRED if event.get(name) is None)
    if missing:
        raise Unusable(f"{missing[0]}: missing")
    event_id, occurred_at = event["event_id"], event["occurred_at"]
    if not isinstance(event_id, str) or not UUID_TEXT.match(event_id):
        raise Unusable(f"event_id: not a UUID: {event_id!r:.80}")
    if not isinstance(occurred_at, str) or not TIME_TEXT.match(occurred_at):
        raise Unusable(f"occurred_at: not RFC 3339 UTC with milliseconds: {occurred_at!r:.80}")
    fields = {name: event.get(name) for name in FIELDS}
    fields["event_id"] = event_id.lower()
    return jcs(prune(fields)).encode("utf-8")


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 Merkle tree hash, level by level."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = leaves
    while len(level) > 1:
        paired = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        level = paired + level[len(level) - len(level) % 2 :]
    return level[0]


def key_id(name: str, public_key: bytes) -> int:
    digest = hashlib.sha256(name.encode() + b"\n\x01" + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def read_keys(document: Any) -> dict[tuple[str, int], tuple[Ed25519PublicKey, int, int | None]]:
    """(name, key id) -> (public key, not_before_ms, not_after_ms) from ``keys.json``."""
    keys = {}
    try:
        for entry in document["keys"]:
            name, hex_id, encoded = entry["verifier_key"].split("+", 2)
            raw = base64.b64decode(encoded, validate=True)
            if len(raw) != 33 or raw[0] != 1 or key_id(name, raw[1:]) != int(hex_id, 16):
                raise Unusable(f"key {name}: not a valid Ed25519 verifier key")
            public = Ed25519PublicKey.from_public_bytes(raw[1:])
            keys[(name, int(hex_id, 16))] = (public, entry["not_before_ms"], entry["not_after_ms"])
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise Unusable(f"keys: not an 'auditlog keys export' document ({exc})") from exc
    return keys


def split_note(note: str, what: str) -> tuple[list[str], bytes, list[str]]:
    """The body's lines, the signed body and the signature lines of a signed note."""
    if any(c < " " and c != "\n" for c in note) or not note.endswith("\n"):
        raise Unusable(f"{what}: control characters, or no final newline")
    body, blank, signatures = note.rpartition("\n\n")
    sig_lines = signatures.split("\n")[:-1]
    if not blank or not sig_lines:
        raise Unusable(f"{what}: no blank line and signature lines after the body")
    return body.split("\n"), (body + "\n").encode(), sig_lines


def parse_note(note: str) -> tuple[str, int, bytes, int, bytes, list[str]]:
    """(origin, size, root, time_ms, signed body, signature lines) of a checkpoint note."""
    lines, body, sig_lines = split_note(note, "checkpoint")
    if len(lines) != 4 or not lines[0]:
        raise Unusable("checkpoint: expected origin, size, root, 'time <ms>', a blank line")
    size_text, root_text, time_line = lines[1:4]
    time_text = time_line.removeprefix("time ")
    if not DECIMAL.match(size_text) or time_text == time_line or not DECIMAL.match(time_text):
        raise Unusable("checkpoint: the size or the time line is malformed")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error as exc:
        raise Unusable("checkpoint: the root is not base64") from exc
    if len(root) != 32 or base64.b64encode(root).decode() != root_text:
        raise Unusable("checkpoint: the root is not 32 bytes of canonical base64")
    return lines[0], int(size_text), root, int(time_text), body, sig_lines


def check_signatures(body: bytes, lines: list[str], time_ms: int, keys: dict[Any, Any]) -> None:
    """Returns if a known key valid at ``time_ms`` signed ``body``; raises Failed if not."""
    reasons = []
    for line in lines:
        name, _, encoded = line.removeprefix("\u2014 ").partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise Unusable(f"a signature line is malformed: {line!r:.80}") from exc
        if not line.startswith("\u2014 ") or len(raw) < 5:
            raise Unusable(f"a signature line is malformed: {line!r:.80}")
        found = keys.get((name, int.from_bytes(raw[:4], "big")))
        if found is None:
            reasons.append(f"unknown key {name}")
            continue
        public, not_before_ms, not_after_ms = found
        try:
            public.verify(raw[4:], body)
        except InvalidSignature:
            raise Failed(f"bad signature by key {name}") from None
        if time_ms < not_before_ms or (not_after_ms is not None and time_ms >= not_after_ms):
            reasons.append(f"key {name} is not valid at time {time_ms}")
            continue
        return
    raise Failed("no valid signature: " + "; ".join(reasons))


def check_signature(note: str, keys: dict[Any, Any]) -> tuple[str, int, bytes, int]:
    """The note's (origin, size, root, time_ms) if a known key valid at its time signed it."""
    origin, size, root, time_ms, body, lines = parse_note(note)
    check_signatures(body, lines, time_ms, keys)
    return origin, size, root, time_ms


def check_prune_statement(note: str, keys: dict[Any, Any]) -> tuple[str, int, int, int]:
    """A prune statement's (account, below, retention days, time_ms) if a known key valid
    at its time signed it. Its body: ``auditlog-prune/<account>``, ``below <N>``,
    ``retention <days>``, ``time <ms>``: the TTL had removed the events of the leaves
    below N by that time."""
    lines, body, sig_lines = split_note(note, "prune statement")
    numbers = []
    for line, keyword in zip(lines[1:], ("below ", "retention ", "time "), strict=False):
        value = line.removeprefix(keyword)
        if value == line or not DECIMAL.match(value):
            raise Unusable(f"prune statement: expected '{keyword}<number>', not {line!r:.40}")
        numbers.append(int(value))
    if len(lines) != 4 or not lines[0].startswith(PRUNE_PREFIX) or len(numbers) != 3:
        raise Unusable("prune statement: expected auditlog-prune/<account>, below, retention, time")
    below, days, time_ms = numbers
    check_signatures(body, sig_lines, time_ms, keys)
    return lines[0].removeprefix(PRUNE_PREFIX), below, days, time_ms


def read_leaves(path: str) -> list[bytes]:
    leaves = []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                leaves.append(leaf_hash(LEAF_PREFIX + canonical_event(json.loads(line))))
            except (ValueError, Unusable) as exc:
                raise Unusable(f"{path}:{number}: {exc}") from exc
    return leaves


def verify(
    keys_path: str,
    note_path: str,
    events_path: str,
    old_path: str | None,
    prune_paths: list[str] | None = None,
) -> str:
    """What was verified, in one line; raises Failed or Unusable."""
    with open(keys_path, encoding="utf-8") as file:
        keys = read_keys(json.load(file))
    with open(note_path, encoding="utf-8") as file:
        origin, size, root, time_ms = check_signature(file.read(), keys)
    statements = []
    for path in prune_paths or []:
        with open(path, encoding="utf-8") as file:
            account, below, days, signed_ms = check_prune_statement(file.read(), keys)
        if "auditlog/" + account != origin:
            raise Failed(f"{path}: the prune statement is for {account}, not {origin}")
        if below > size:
            raise Failed(f"{path}: the prune statement names {below} leaves, the checkpoint {size}")
        statements.append(
            f"; prune statement of time {signed_ms}: the events of leaves below {below} are "
            f"expired (retention {days} days)"
        )
    leaves = read_leaves(events_path)
    if len(leaves) < size:
        raise Failed(f"the checkpoint covers {size} events, the file holds {len(leaves)}")
    if merkle_root(leaves[:size]) != root:
        raise Failed(f"the first {size} events do not have the checkpoint's root")
    summary = f"verified: {origin}, {size} events, time {time_ms}"
    if old_path is not None:
        with open(old_path, encoding="utf-8") as file:
            old_origin, old_size, old_root, _ = check_signature(file.read(), keys)
        if old_origin != origin or old_size > size:
            raise Failed(f"the old checkpoint ({old_origin}, {old_size}) is not an earlier state")
        if merkle_root(leaves[:old_size]) != old_root:
            raise Failed(f"the old checkpoint's {old_size} events are not a prefix of the log")
        summary += f"; the old checkpoint of {old_size} events is a prefix"
    if len(leaves) > size:
        summary += f"; {len(leaves) - size} later events are not covered by this checkpoint"
    return summary + "".join(statements)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keys", required=True, help="keys.json from 'auditlog keys export'")
    parser.add_argument("--checkpoint", required=True, help="the signed checkpoint note")
    parser.add_argument("--events", required=True, help="the account's events, NDJSON")
    parser.add_argument("--old-checkpoint", help="an older checkpoint that must be a prefix")
    parser.add_argument(
        "--prune-statement",
        action="append",
        default=[],
        help="a signed prune statement of the same account, checked (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        print(
            verify(
                args.keys, args.checkpoint, args.events, args.old_checkpoint, args.prune_statement
            )
        )
    except Failed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    except (Unusable, OSError, ValueError) as exc:
        print(f"unusable input: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
