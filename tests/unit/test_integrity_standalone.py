"""The customer's one-file verifier: its JCS subset agrees with rfc8785, its leaves with
integrity.leaf, and run as a separate process on files it verifies or refuses."""

from __future__ import annotations

import ast
import gzip
import json
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from integrity import verify_standalone
from integrity.checkpoint import Checkpoint, origin_for, sign
from integrity.copy_reading import CopyReader, read_directory
from integrity.copy_verification import check_copy
from integrity.keys import SigningKey
from integrity.keystore import KeyStore, public_document
from integrity.leaf import canonical_event, event_leaf_hash
from integrity.merkle import root
from integrity.prune_statement import PruneStatement, prune_origin_for, sign_statement
from sinks.encoding import event_json
from tests.integrity_copies import KEY as COPY_KEY
from tests.integrity_copies import RING as COPY_RING
from tests.integrity_copies import SIGNED_MS, checkpoint_line, generated_copy

SOURCE = Path(verify_standalone.__file__)
NOW = 1_764_000_000_000

# Any code point but lone surrogates: non-BMP characters and control characters included.
_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=10)
_json_values = st.recursive(
    _text, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3)
)


@settings(max_examples=300, deadline=None)
@given(value=st.dictionaries(_text, _json_values, max_size=5))
def test_its_jcs_agrees_with_rfc8785(value: dict[str, Any]) -> None:
    assert verify_standalone.jcs(value).encode() == rfc8785.dumps(value)


def _event(number: int, **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.UUID(int=number)),
        "tenant_id": "acme",
        "occurred_at": datetime(2026, 11, 25, 9, 30, tzinfo=UTC) + timedelta(milliseconds=number),
        "action": "recipe.stopped",
        "category": "recipe",
        "actor": {"type": "user", "id": f"u-{number}", "name": None, "email": None},
        "resource": {"type": "recipe", "id": "r-42", "name": 'Ünïcode \U0001f600 \u0007\n"'},
        "workspace": {"id": None, "name": None, "environment": None},
        "request": {"ip": None, "user_agent": "<b>hostile</b>\\", "request_id": None},
        "outcome": {"status": "success", "reason": None},
        "details": {},
        "changes": [{"field": "state", "before": "running", "after": None}],
        "source": None,
    }
    event.update(overrides)
    return event


@settings(max_examples=200, deadline=None)
@given(
    name=_text,
    details=st.dictionaries(_text, _text, max_size=4),
    before=st.none() | _text,
)
def test_its_leaves_agree_with_the_service(
    name: str, details: dict[str, str], before: str | None
) -> None:
    event = _event(
        1,
        resource={"type": "r", "id": "1", "name": name},
        details=details,
        changes=[{"field": "f", "before": before, "after": None}],
    )
    as_json = orjson.loads(event_json(event))
    assert verify_standalone.canonical_event(as_json) == canonical_event(event)


def test_it_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(SOURCE.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}


class Files:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.store = KeyStore(directory / "store")
        self.store.generate("auditlog-2026", NOW - 1000)
        self.keys = directory / "keys.json"
        self.keys.write_text(json.dumps(public_document(self.store.public_keys())))
        self.events = [_event(i) for i in range(25)]

    def write_events(self, events: list[dict[str, Any]], name: str = "events.ndjson") -> Path:
        path = self.directory / name
        path.write_bytes(b"".join(event_json(e) + b"\n" for e in events))
        return path

    def note(self, events: list[dict[str, Any]], time_ms: int = NOW, name: str = "note") -> Path:
        leaves = [event_leaf_hash(e) for e in events]
        checkpoint = Checkpoint(origin_for("acme"), len(leaves), root(leaves), time_ms)
        path = self.directory / f"{name}.txt"
        path.write_text(sign(checkpoint, self.store.active_signers(time_ms)))
        return path


def _run(files: Files, *argv: str | Path) -> subprocess.CompletedProcess[str]:
    """Runs a copy of the file, isolated (-I: no PYTHONPATH, no user site): as a customer."""
    copy = files.directory / "verify_standalone.py"
    shutil.copy(SOURCE, copy)
    return subprocess.run(
        [sys.executable, "-I", str(copy), "--keys", str(files.keys), *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def test_it_verifies_a_checkpoint_and_an_older_one(files: Files) -> None:
    events = files.write_events(files.events)
    note = files.note(files.events)
    old = files.note(files.events[:10], NOW - 500, name="old")
    result = _run(files, "--checkpoint", note, "--events", events, "--old-checkpoint", old)
    assert result.returncode == 0, result.stderr
    assert "verified: auditlog/acme, 25 events" in result.stdout
    assert "old checkpoint of 10 events is a prefix" in result.stdout
    # later events than the checkpoint covers are said to be uncovered, not an error
    partial = _run(files, "--checkpoint", old, "--events", events)
    assert partial.returncode == 0
    assert "15 later events are not covered" in partial.stdout


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda ev: [*ev[:3], {**ev[3], "action": "recipe.started"}, *ev[4:]], "root"),
        (lambda ev: ev[:3] + ev[4:], "the file holds 24"),
        (lambda ev: [ev[1], ev[0], *ev[2:]], "root"),
        (lambda ev: [*ev[:5], _event(99), *ev[5:]], "root"),
    ],
)
def test_it_detects_changed_missing_moved_and_inserted_events(
    files: Files, tamper: Any, reason: str
) -> None:
    note = files.note(files.events)
    result = _run(files, "--checkpoint", note, "--events", files.write_events(tamper(files.events)))
    assert result.returncode == 1
    assert reason in result.stderr


def test_it_detects_a_rewritten_history_against_an_older_checkpoint(files: Files) -> None:
    old = files.note(files.events[:10], NOW - 500, name="old")
    rewritten = [*files.events[:4], _event(4, action="recipe.deleted"), *files.events[5:]]
    note = files.note(rewritten)  # the rewriter signs a fresh checkpoint of the new history
    events = files.write_events(rewritten)
    assert _run(files, "--checkpoint", note, "--events", events).returncode == 0
    result = _run(files, "--checkpoint", note, "--events", events, "--old-checkpoint", old)
    assert result.returncode == 1
    assert "not a prefix" in result.stderr


def test_it_refuses_a_forged_or_unknown_signature(files: Files, tmp_path: Path) -> None:
    events = files.write_events(files.events)
    note = files.note(files.events)
    forged = tmp_path / "forged.txt"
    forged.write_text(note.read_text().replace("\n25\n", "\n24\n"))
    result = _run(files, "--checkpoint", forged, "--events", events)
    assert (result.returncode, "bad signature" in result.stderr) == (1, True)
    other = Files(tmp_path / "other")
    stranger = other.note(files.events)
    result = _run(files, "--checkpoint", stranger, "--events", events)
    assert (result.returncode, "unknown key" in result.stderr) == (1, True)
    [key] = files.store.active_signers(NOW)
    unbounded = SigningKey(key.name, key.private_key)  # as if its window started earlier
    leaves = [event_leaf_hash(e) for e in files.events]
    early = tmp_path / "early.txt"
    early.write_text(
        sign(Checkpoint(origin_for("acme"), 25, root(leaves), NOW - 2000), [unbounded])
    )
    result = _run(files, "--checkpoint", early, "--events", events)
    assert (result.returncode, "not valid at time" in result.stderr) == (1, True)


def test_unusable_input_exits_2(files: Files, tmp_path: Path) -> None:
    note = files.note(files.events)
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"event_id": 1}\n')
    result = _run(files, "--checkpoint", note, "--events", bad)
    assert (result.returncode, "bad.ndjson:1" in result.stderr) == (2, True)
    result = _run(files, "--checkpoint", tmp_path / "absent.txt", "--events", bad)
    assert result.returncode == 2


def _statement(files: Files, account: str, below: int, name: str = "statement") -> Path:
    statement = PruneStatement(prune_origin_for(account), below, 30, NOW)
    path = files.directory / f"{name}.txt"
    path.write_text(sign_statement(statement, files.store.active_signers(NOW)))
    return path


def test_it_checks_prune_statements(files: Files) -> None:
    events = files.write_events(files.events)
    note = files.note(files.events)
    good = _statement(files, "acme", 10)
    result = _run(files, "--checkpoint", note, "--events", events, "--prune-statement", good)
    assert result.returncode == 0, result.stderr
    assert "the events of leaves below 10 are expired (retention 30 days)" in result.stdout
    elsewhere = _statement(files, "globex", 10, name="elsewhere")
    result = _run(files, "--checkpoint", note, "--events", events, "--prune-statement", elsewhere)
    assert result.returncode == 1
    assert "for globex, not auditlog/acme" in result.stderr
    beyond = _statement(files, "acme", 26, name="beyond")
    result = _run(files, "--checkpoint", note, "--events", events, "--prune-statement", beyond)
    assert result.returncode == 1
    assert "names 26 leaves, the checkpoint 25" in result.stderr
    forged = files.directory / "forged.txt"
    forged.write_text(good.read_text().replace("below 10", "below 20"))
    result = _run(files, "--checkpoint", note, "--events", events, "--prune-statement", forged)
    assert result.returncode == 1
    assert "bad signature" in result.stderr
    # A checkpoint given as a statement is unusable input, not a statement.
    result = _run(files, "--checkpoint", note, "--events", events, "--prune-statement", note)
    assert result.returncode == 2
    assert "prune statement: expected 'below <number>'" in result.stderr


def _copy_dir(directory: Path, lines: list[bytes]) -> Path:
    """A copy as a bucket download: two files, one gzip, one a JSON array."""
    directory.mkdir()
    half = len(lines) // 2
    (directory / "a-0001.ndjson.gz").write_bytes(gzip.compress(b"\n".join(lines[:half]) + b"\n"))
    (directory / "a-0002.json").write_bytes(b"[" + b",".join(lines[half:]) + b"]")
    return directory


def _copy_cases() -> dict[str, tuple[list[bytes], bool]]:
    """Copies (lines) and whether each must verify, for both verifiers."""
    made = generated_copy(events=20)
    lines = made.lines()
    target = event_json(made.events[7])
    changed = event_json(dict(made.events[7], action="recipe.started"))
    forged = event_json(dict(made.events[3], event_id=str(uuid.uuid4())))
    other = SigningKey(COPY_KEY.name, Ed25519PrivateKey.generate())
    return {
        "untouched": (lines, True),
        "mid-log": ([line for b in made.batches[2:] for line in b.lines()], True),
        "replayed": ([*lines, *made.batches[1].lines()], True),
        "changed": ([changed if line == target else line for line in lines], False),
        "deleted": ([line for line in lines if line != target], False),
        "inserted": ([*lines[:3], forged, *lines[3:]], False),
        "dropped-leaves": ([line for line in lines if b'"first":5,' not in line], False),
        "forged-checkpoint": (
            [*lines, checkpoint_line("acme", made.hashes, 20, SIGNED_MS + 9, other)],
            False,
        ),
    }


@pytest.mark.parametrize("case", list(_copy_cases()))
def test_it_agrees_with_the_package_on_a_streamed_copy(
    files: Files, tmp_path: Path, case: str
) -> None:
    lines, verifies = _copy_cases()[case]
    keys = tmp_path / "copy-keys.json"
    keys.write_text(json.dumps(public_document([COPY_KEY.verifier()])))
    directory = _copy_dir(tmp_path / "copy", lines)
    reader = CopyReader(account="acme")
    read_directory(reader, directory)
    package_ok = check_copy(reader.copies["acme"], COPY_RING).ok
    copy = tmp_path / "verify_standalone.py"
    shutil.copy(SOURCE, copy)
    result = subprocess.run(
        [sys.executable, "-I", str(copy), "--keys", str(keys), "--copy", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (package_ok, result.returncode == 0) == (verifies, verifies), result.stderr
    if verifies:
        assert "verified: auditlog/acme" in result.stdout
    else:
        assert result.returncode == 1, result.stderr
