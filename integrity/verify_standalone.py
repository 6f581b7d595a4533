#!/usr/bin/env python3
"""Verify an auditlog checkpoint against your own copy of an account's events.

One file, meant to be copied and read: it needs Python 3.11+ and the ``cryptography``
package, and imports nothing else of auditlog. It re-implements, on purpose, what the
service does (docs/integrity.md), so that you need not trust the service's code.

    python verify_standalone.py --keys keys.json --checkpoint note.txt --events events.ndjson
        [--old-checkpoint older-note.txt] [--prune-statement statement.txt ...]
    python verify_standalone.py --keys keys.json --copy DIR [--account T] [--filtered]

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

With ``--copy DIR``: a streamed copy as a destination received it, every file under DIR
(NDJSON or a JSON array, gzip or not, read in path order: a downloaded bucket prefix, a
webhook receiver's saved payloads), events together with the ``auditlog.leaves`` and
``auditlog.checkpoint`` records delivered beside them. The leaves records list every
leaf's hash and the tree before them, so the copy may start mid-log, hold duplicates and,
with ``--filtered``, lack events. Checked: records that list one leaf agree; each record's
``frontier`` is the tree of the leaves before it; each checkpoint is signed and has the
root of the listed leaves at its size; every received event's hash is listed (else it was
changed or inserted); every listed leaf between the first and the last received event
was received (else missing; with ``--filtered``, counted). Events and leaves beyond the
newest checkpoint are reported as not yet proven.

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
import os
import re
import sys
import zlib
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


MAX_FILE_BYTES = 256 * 1024 * 1024


def read_copy_file(path: str) -> list[Any]:
    """The JSON values of one file of a copy: NDJSON or a JSON array, gzip or not."""
    with open(path, "rb") as file:
        data = file.read(MAX_FILE_BYTES + 1)
    if data[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(wbits=47)
        data = inflater.decompress(data, MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise Unusable(f"{path}: more than {MAX_FILE_BYTES} bytes")
    try:
        if data.lstrip()[:1] == b"[":
            values = json.loads(data)
            return values if isinstance(values, list) else [values]
        return [json.loads(line) for line in data.split(b"\n") if line.strip()]
    except ValueError as exc:
        raise Unusable(f"{path}: not NDJSON nor a JSON array ({exc})") from exc


def b64_hash(value: Any) -> bytes:
    raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    if len(raw) != 32 or base64.b64encode(raw).decode() != value:
        raise Unusable(f"not a base64 hash of 32 bytes: {str(value)[:60]!r}")
    return raw


def append_leaf(frontier: list[bytes], size: int, leaf: bytes) -> None:
    """Add a leaf to the tree's frontier (its perfect subtrees, largest first)."""
    while size & 1:
        leaf = hashlib.sha256(b"\x01" + frontier.pop() + leaf).digest()
        size >>= 1
    frontier.append(leaf)


def frontier_root(frontier: list[bytes]) -> bytes:
    if not frontier:
        return hashlib.sha256(b"").digest()
    result = frontier[-1]
    for left in reversed(frontier[:-1]):
        result = hashlib.sha256(b"\x01" + left + result).digest()
    return result


class CopyContent:
    """One account's part of a copy: listed leaves by index, each record's frontier by its
    first index, checkpoint notes, and the received events' (id, leaf hash) in order."""

    def __init__(self, account: str | None) -> None:
        self.account = account
        self.leaves: dict[int, bytes] = {}
        self.claims: dict[int, list[bytes]] = {}
        self.notes: list[str] = []
        self.events: list[tuple[str, bytes]] = []

    def add(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise Failed(f"{where}: a value that is not a JSON object")
        self.account = self.account or value.get("tenant_id")
        if value.get("tenant_id") != self.account:
            return
        kind = value.get("type")
        if kind == "auditlog.leaves":
            self.add_leaves(value, where)
        elif kind == "auditlog.checkpoint":
            self.notes.append(str(value.get("note")))
        elif isinstance(kind, str) and kind.startswith("auditlog."):
            raise Failed(f"{where}: an unknown integrity record {kind[:40]!r}")
        else:
            try:
                data = LEAF_PREFIX + canonical_event(value)
            except Unusable as exc:
                raise Failed(f"{where}: an event that does not read as one: {exc}") from exc
            self.events.append((str(value.get("event_id")), leaf_hash(data)))

    def add_leaves(self, value: dict[str, Any], where: str) -> None:
        if set(value) != {"type", "version", "tenant_id", "first", "frontier", "hashes"}:
            raise Failed(f"{where}: a leaves record with other keys")
        first = value["first"]
        if type(first) is not int or first < 0 or value["version"] != 1:
            raise Failed(f"{where}: a leaves record of another version or first")
        if not isinstance(value["frontier"], list) or not isinstance(value["hashes"], list):
            raise Failed(f"{where}: a leaves record without lists of hashes")
        frontier = [b64_hash(h) for h in value["frontier"]]
        if len(frontier) != first.bit_count() or self.claims.get(first, frontier) != frontier:
            raise Failed(f"{where}: a leaves record with a wrong frontier at {first}")
        self.claims[first] = frontier
        for index, encoded in enumerate(value["hashes"], start=first):
            if self.leaves.setdefault(index, b64_hash(encoded)) != b64_hash(encoded):
                raise Failed(f"two leaves records list different hashes for leaf {index}")


def check_tree(content: CopyContent, keys: dict[Any, Any]) -> tuple[int, int, int]:
    """(first listed leaf, end of the listing, largest verified checkpoint size)."""
    leaves, claims = content.leaves, content.claims
    base, end = min(leaves), max(leaves) + 1
    if len(leaves) != end - base:
        gap = next(i for i in range(base, end) if i not in leaves)
        raise Failed(f"leaves from {gap} on were never received: a leaves record is missing")
    checkpoints = []
    for note in dict.fromkeys(content.notes):
        origin, size, root, _ = check_signature(note, keys)
        if origin != f"auditlog/{content.account}":
            raise Failed(f"a checkpoint of {origin}, not auditlog/{content.account}")
        if size > end:
            raise Failed(f"a checkpoint signed {size} leaves, the copy lists {end}")
        checkpoints.append((size, root))
    wanted: dict[int, list[bytes]] = {}
    for size, root in checkpoints:
        wanted.setdefault(size, []).append(root)
    frontier = list(claims[base])
    proven = base
    for size in range(base, end + 1):
        if size in claims and claims[size] != frontier:
            raise Failed(f"the leaves record from leaf {size} carries a frontier of another tree")
        for root in wanted.get(size, []):
            if frontier_root(frontier) != root:
                raise Failed(f"the listed leaves do not have the root signed at size {size}")
            proven = size
        if size < end:
            append_leaf(frontier, size, leaves[size])
    return base, end, proven


def verify_copy(keys_path: str, directory: str, account: str | None, filtered: bool) -> str:
    """What was verified, in one line; raises Failed or Unusable."""
    with open(keys_path, encoding="utf-8") as file:
        keys = read_keys(json.load(file))
    content = CopyContent(account)
    paths = []
    for folder, folders, names in os.walk(directory):  # links to folders are not followed
        folders[:] = [f for f in folders if not f.startswith(".")]
        paths += [os.path.join(folder, n) for n in names if not n.startswith(".")]
    for path in sorted(paths, key=lambda p: os.path.relpath(p, directory).split(os.sep)):
        if os.path.isfile(path) and not os.path.islink(path):
            for number, value in enumerate(read_copy_file(path), start=1):
                content.add(value, f"{path}:{number}")
    if not content.leaves:
        raise Unusable(f"{directory}: no auditlog.leaves record of {account or 'any account'}")
    base, end, proven = check_tree(content, keys)
    by_hash: dict[bytes, list[int]] = {}
    for index in range(base, end):
        by_hash.setdefault(content.leaves[index], []).append(index)
    matched = [n for n, (_, digest) in enumerate(content.events) if digest in by_hash]
    unlisted = [(n, e) for n, (e, digest) in enumerate(content.events) if digest not in by_hash]
    inside = [e for n, e in unlisted if matched and matched[0] < n < matched[-1]]
    if inside:
        raise Failed(f"event {inside[0]} is in no leaf of the log (changed or inserted)")
    received = {i for n in matched for i in by_hash[content.events[n][1]]}
    lost = [i for i in range(min(received, default=end), end) if i not in received]
    if lost and not filtered:
        raise Failed(f"the event of leaf {lost[0]} was not received ({len(lost)} missing)")
    summary = (
        f"verified: auditlog/{content.account}, leaves {base}..{end - 1} listed, "
        f"{proven - base} proven by a checkpoint, {len(content.events)} events received"
    )
    if unlisted:
        summary += f"; {len(unlisted)} events at the copy's ends not listed yet"
    if lost:
        summary += f"; {len(lost)} leaves left out by the filter"
    return summary


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
    parser.add_argument("--checkpoint", help="the signed checkpoint note")
    parser.add_argument("--events", help="the account's events, NDJSON")
    parser.add_argument("--copy", help="a directory of a streamed copy (with its records)")
    parser.add_argument("--account", help="with --copy: the account (default: the first)")
    parser.add_argument("--filtered", action="store_true", help="with --copy: a filtered one")
    parser.add_argument("--old-checkpoint", help="an older checkpoint that must be a prefix")
    parser.add_argument(
        "--prune-statement",
        action="append",
        default=[],
        help="a signed prune statement of the same account, checked (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.copy is None and (args.checkpoint is None or args.events is None):
        parser.error("give --checkpoint and --events, or --copy")
    try:
        if args.copy is not None:
            print(verify_copy(args.keys, args.copy, args.account, args.filtered))
        else:
            print(
                verify(
                    args.keys,
                    args.checkpoint,
                    args.events,
                    args.old_checkpoint,
                    args.prune_statement,
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
