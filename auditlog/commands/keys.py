"""``auditlog keys``: the Ed25519 keys that sign integrity checkpoints.

The keys live in ``AUDITLOG_INTEGRITY_KEYS_DIR`` (:mod:`integrity.keystore`). ``generate``
makes the first key; ``rotate`` adds a key valid from now and ends the active one after an
overlap (checkpoints in between carry both signatures); ``list`` shows names, key ids,
windows and whether the private key is here, never private material; ``export`` prints
the public keys with their windows and verifier-key lines, which customers keep.

Exit codes: 0 done; 2 invalid input (a key name, a negative overlap); 3 refused by the
store's state (``generate`` when a key exists, ``rotate`` without an active key, a name in
use); 4 a key file is unsafe, missing or corrupt (a private key readable by group or others,
an unreadable ``keys.json``). Each refusal is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from auditlog.settings import AuditlogSettings
from integrity.keys import KeyFormatError
from integrity.keystore import KeyStore, KeyStoreError, public_document

EXIT_INVALID = 2
EXIT_REFUSED = 3
EXIT_KEY_FILES = 4


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "keys",
        help="the keys that sign integrity checkpoints",
        description="Ed25519 keys that sign the integrity checkpoints "
        "(AUDITLOG_INTEGRITY_KEYS_DIR).",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    generate = actions.add_parser("generate", help="make the first signing key")
    generate.add_argument("--name", required=True, help="the key's name, e.g. auditlog-2026")
    generate.set_defaults(run=_generate)
    rotate = actions.add_parser(
        "rotate", help="add a key valid from now; the active one ends after the overlap"
    )
    rotate.add_argument("--name", required=True, help="the new key's name")
    rotate.add_argument(
        "--overlap-s",
        type=int,
        default=3600,
        help="seconds both keys sign after the rotation (default 3600)",
    )
    rotate.set_defaults(run=_rotate)
    listing = actions.add_parser("list", help="names, key ids, windows; no private material")
    listing.set_defaults(run=_list)
    export = actions.add_parser(
        "export", help="print the public keys with their windows (JSON), for customers"
    )
    export.set_defaults(run=_export)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _refuse(message: str, code: int) -> int:
    print(f"auditlog: {message}", file=sys.stderr)
    return code


def _failure_code(exc: Exception) -> int:
    if isinstance(exc, KeyFormatError):
        return EXIT_INVALID
    if isinstance(exc, KeyStoreError) and exc.refused:
        return EXIT_REFUSED
    return EXIT_KEY_FILES


def _time(ms: int | None) -> str:
    if ms is None:
        return "open"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _generate(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    store = KeyStore(settings.integrity_keys_dir)
    try:
        key = store.generate(args.name, _now_ms())
    except (KeyFormatError, KeyStoreError) as exc:
        return _refuse(str(exc), _failure_code(exc))
    print(f"generated {key.name} ({key.key_id:08x}), valid from {_time(key.not_before_ms)}")
    print(key.text())
    return 0


def _rotate(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    store = KeyStore(settings.integrity_keys_dir)
    try:
        key = store.rotate(args.name, _now_ms(), args.overlap_s * 1000)
    except (KeyFormatError, KeyStoreError) as exc:
        return _refuse(str(exc), _failure_code(exc))
    print(f"rotated to {key.name} ({key.key_id:08x}), valid from {_time(key.not_before_ms)}")
    for stored in store.listing():
        if stored.key.name != key.name and stored.key.not_after_ms is not None:
            print(f"  {stored.key.name} signs until {_time(stored.key.not_after_ms)}")
    print(key.text())
    return 0


def _list(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    try:
        listing = KeyStore(settings.integrity_keys_dir).listing()
    except KeyStoreError as exc:
        return _refuse(str(exc), _failure_code(exc))
    now_ms = _now_ms()
    for stored in listing:
        key = stored.key
        state = "active" if key.valid_at(now_ms) else "inactive"
        private = "private key present" if stored.private_present else "no private key"
        print(
            f"{key.name}\t{key.key_id:08x}\t{_time(key.not_before_ms)}"
            f"..{_time(key.not_after_ms)}\t{state}\t{private}"
        )
    return 0


def _export(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    try:
        keys = KeyStore(settings.integrity_keys_dir).public_keys()
    except KeyStoreError as exc:
        return _refuse(str(exc), _failure_code(exc))
    print(json.dumps(public_document(keys), indent=2))
    return 0
