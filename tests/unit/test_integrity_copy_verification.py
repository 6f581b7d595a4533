"""Verifying a streamed copy (integrity.copy_verification, integrity.copy_reading) over
copies generated as the appender and the sinks make them (real keys, real trees): each
kind of tampering found and named, the benign differences (a copy starting mid-log,
replays, filters, events not listed yet) accepted."""

from __future__ import annotations

import argparse
import gzip
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditlog.commands import verify
from auditlog.settings import AuditlogSettings
from integrity import merkle
from integrity.copy_reading import CopyReader, CopyReadError, gunzip, object_name, read_directory
from integrity.copy_records import LeavesRecord, encode, leaves_records, parse
from integrity.copy_verification import CopyReport, check_copy
from integrity.keys import SigningKey
from integrity.keystore import public_document
from integrity.leaf import event_leaf_hash
from sinks.encoding import event_json
from tests.integrity_copies import (
    KEY,
    RING,
    SIGNED_MS,
    GeneratedCopy,
    checkpoint_line,
    copy_event,
    generated_copy,
)

ACCOUNT = "acme"


def check(lines: list[bytes], *, filtered: bool = False, account: str = ACCOUNT) -> CopyReport:
    reader = CopyReader(account=account)
    reader.body("copy", b"\n".join(lines) + b"\n")
    return check_copy(reader.copies[account], RING, filtered=filtered)


def kinds(report: CopyReport) -> list[tuple[str, int | None]]:
    return [(f.kind, f.leaf_index) for f in report.findings]


def test_an_untouched_copy_verifies() -> None:
    made = generated_copy(events=20)
    report = check(made.lines())
    assert report.ok, [f.line() for f in report.findings]
    assert (report.events, report.leaves, report.proven, report.checkpoints) == (20, 20, 20, 2)
    assert (report.first_leaf, report.unproven_leaves, report.unlisted_events) == (0, 0, 0)


def test_records_split_at_the_size_limit_verify() -> None:
    made = generated_copy(events=23, batch=10, max_hashes=3)
    assert check(made.lines()).ok


def _replace_event(made: GeneratedCopy, number: int, line: bytes | None) -> list[bytes]:
    target = event_json(made.events[number])
    out = []
    for current in made.lines():
        if current == target:
            if line is not None:
                out.append(line)
        else:
            out.append(current)
    return out


def test_one_changed_field_is_named() -> None:
    made = generated_copy()
    changed = dict(made.events[7], actor={"type": "user", "id": "u-someone-else"})
    report = check(_replace_event(made, 7, event_json(changed)))
    assert kinds(report) == [("changed", 7)]
    assert report.findings[0].event_id == made.events[7]["event_id"]


def test_a_deleted_event_is_missing() -> None:
    made = generated_copy()
    report = check(_replace_event(made, 12, None))
    assert kinds(report) == [("missing", 12)]


def test_a_forged_event_is_inserted() -> None:
    made = generated_copy()
    forged = dict(made.events[3], event_id=str(uuid.uuid4()))
    lines = made.lines()
    lines.insert(lines.index(event_json(made.events[4])), event_json(forged))
    report = check(lines)
    assert [(f.kind, f.event_id) for f in report.findings] == [("inserted", forged["event_id"])]
    assert "after the event of leaf 3" in report.findings[0].message


def test_two_swapped_events_are_moved() -> None:
    made = generated_copy()
    lines = made.lines()
    a, b = (lines.index(event_json(made.events[n])) for n in (5, 6))
    lines[a], lines[b] = lines[b], lines[a]
    report = check(lines)
    assert kinds(report) == [("moved", 5)]


def test_two_swapped_leaf_hashes_are_rewritten() -> None:
    made = generated_copy(batch=5)
    lines = made.lines()
    record_line = next(line for line in lines if b'"first":5,' in line)
    record = parse(record_line)
    assert isinstance(record, LeavesRecord)
    hashes = list(record.hashes)
    hashes[0], hashes[1] = hashes[1], hashes[0]
    swapped = LeavesRecord(ACCOUNT, record.first, record.frontier, tuple(hashes))
    lines[lines.index(record_line)] = encode(swapped)
    assert kinds(check(lines)) == [
        ("rewritten", 10),  # the next record's frontier is not the tree of these leaves
        ("rewritten", None),  # nor is the root signed at size 10
        ("rewritten", None),  # nor at 20
        ("moved", 5),  # and the copy receives the event of leaf 6 before leaf 5's
    ]


def test_a_dropped_leaves_record_is_a_gap() -> None:
    made = generated_copy(batch=5, checkpoint_every=3)
    lines = made.lines()
    lines.remove(next(line for line in lines if b'"first":5,' in line))
    report = check(lines)
    assert kinds(report) == [("gap", 5)]
    assert "leaves 5..9 were never received" in report.findings[0].message
    assert report.unlisted_events == 5  # the events of the gap: nothing to check them against


def test_a_checkpoint_beyond_the_leaves_is_a_gap() -> None:
    made = generated_copy(events=10)
    lines = [line for line in made.lines() if b'"first":5,' not in line]
    report = check(lines)
    assert [(f.kind, f.leaf_index) for f in report.findings] == [("gap", 5)]
    assert "a checkpoint signed size 10" in report.findings[0].message


def test_a_checkpoint_forged_with_another_key_is_named() -> None:
    made = generated_copy()
    other = SigningKey(KEY.name, Ed25519PrivateKey.generate())
    lines = [*made.lines(), checkpoint_line(ACCOUNT, made.hashes, 20, SIGNED_MS + 99, other)]
    report = check(lines)
    assert [f.kind for f in report.findings] == ["bad-checkpoint"]


def test_a_checkpoint_of_a_rewritten_log_is_named() -> None:
    """A forger who rewrites an event and its listed hash alike: no checkpoint agrees."""
    made = generated_copy(events=10, checkpoint_every=1)
    lines = [line for line in made.lines() if b"auditlog.checkpoint" not in line]
    lines.append(checkpoint_line(ACCOUNT, made.hashes, 10, SIGNED_MS))
    wrong = list(made.hashes)
    wrong[2] = bytes(32)
    lines.append(checkpoint_line(ACCOUNT, wrong, 10, SIGNED_MS + 1))
    found = kinds(check(lines))
    assert found == [("rewritten", None), ("rewritten", None)]  # forked, and not the tree's


def test_a_forged_frontier_is_rewritten() -> None:
    made = generated_copy(events=10, checkpoint_every=5)
    lines = made.lines()
    record_line = next(line for line in lines if b'"first":5,' in line)
    record = parse(record_line)
    assert isinstance(record, LeavesRecord)
    forged = LeavesRecord(ACCOUNT, 5, (bytes(32), bytes(32)), record.hashes)
    lines[lines.index(record_line)] = encode(forged)
    assert ("rewritten", 5) in kinds(check(lines))


def test_two_records_disagreeing_on_a_leaf_are_rewritten() -> None:
    made = generated_copy(events=10)
    record = parse(next(line for line in made.lines() if b'"first":5,' in line))
    assert isinstance(record, LeavesRecord)
    other = LeavesRecord(ACCOUNT, 5, record.frontier, (record.hashes[0], bytes(32)))
    report = check([*made.lines(), encode(other)])
    assert ("rewritten", 6) in kinds(report)


def test_a_copy_that_starts_mid_log_verifies() -> None:
    made = generated_copy(events=30, batch=5, checkpoint_every=2)
    lines = [line for batch in made.batches[3:] for line in batch.lines()]
    report = check(lines)
    assert report.ok, [f.line() for f in report.findings]
    assert report.first_leaf == 15
    assert report.proven == 15


def test_a_copy_that_starts_mid_batch_verifies() -> None:
    made = generated_copy(events=20, batch=10)
    lines = made.lines()[4:]  # the destination began with the batch's fifth event
    report = check(lines)
    assert report.ok, [f.line() for f in report.findings]
    assert report.before_copy == 4


def test_duplicates_from_a_replay_are_accepted() -> None:
    made = generated_copy(events=20)
    lines = [*made.lines(), *made.batches[1].lines(), *made.batches[2].lines()]
    report = check(lines)
    assert report.ok, [f.line() for f in report.findings]
    assert report.duplicates == 10


def test_a_published_duplicate_is_two_leaves() -> None:
    """A producer retry: the same event twice in the stream, two leaves of one hash."""
    made = generated_copy(events=10, batch=10)
    twice = [made.events[0], *made.events]
    hashes = [event_leaf_hash(e) for e in twice]
    lines = [event_json(e) for e in twice]
    lines += [encode(r) for r in leaves_records(ACCOUNT, merkle.Frontier.empty(), hashes)]
    lines.append(checkpoint_line(ACCOUNT, hashes, 11, SIGNED_MS))
    report = check(lines)
    assert report.ok, [f.line() for f in report.findings]
    assert report.proven == 11


def test_a_filtered_copy_verifies_with_filtered_and_is_missing_without() -> None:
    made = generated_copy(events=20)
    kept = [
        line
        for line in made.lines()
        if b"auditlog." in line or json.loads(line)["actor"]["id"] not in {"u-3", "u-11"}
    ]
    assert kinds(check(kept)) == [("missing", 3), ("missing", 11)]
    report = check(kept, filtered=True)
    assert report.ok
    assert report.filtered == 2


def test_events_not_listed_yet_are_not_a_failure() -> None:
    made = generated_copy(events=20)
    later = [event_json(copy_event(ACCOUNT, n)) for n in (20, 21)]
    report = check([*made.lines(), *later])
    assert report.ok
    assert report.unlisted_events == 2


def test_leaves_after_the_newest_checkpoint_are_not_yet_proven() -> None:
    made = generated_copy(events=20)
    lines = made.lines()
    lines.remove(made.batches[-1].integrity[-1])  # the last checkpoint
    report = check(lines)
    assert report.ok
    assert (report.proven, report.unproven_leaves) == (10, 10)


@pytest.mark.parametrize(
    "line",
    [
        b'{"type":"auditlog.leaves","version":1,"tenant_id":"acme","first":0}',
        b'{"type":"auditlog.leaves","version":2,"tenant_id":"acme","first":0,'
        b'"frontier":[],"hashes":[]}',
        b'{"type":"auditlog.checkpoint","version":1,"tenant_id":"acme","note":"x","note":"y"}',
    ],
)
def test_a_malformed_integrity_record_is_a_bad_record(line: bytes) -> None:
    made = generated_copy()
    report = check([*made.lines(), line])
    assert [f.kind for f in report.findings] == ["bad-record"]


def test_a_line_that_is_not_json_is_a_bad_record() -> None:
    reader = CopyReader(account=ACCOUNT)
    made = generated_copy()
    reader.body("copy", made.ndjson() + b"{not json\n[1]\n")
    assert len(reader.unattributed) == 2
    assert check_copy(reader.copies[ACCOUNT], RING).ok  # the command reports them


def test_json_array_and_gzip_bodies_read_alike() -> None:
    made = generated_copy()
    reader = CopyReader(account=ACCOUNT)
    for number, batch in enumerate(made.batches):
        body = b"[" + b",".join(batch.lines()) + b"]"
        reader.body(f"post-{number}", gzip.compress(body) if number % 2 else body)
    assert check_copy(reader.copies[ACCOUNT], RING).ok


def test_a_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(bytes(10_000))
    with pytest.raises(CopyReadError, match="more than 1000 bytes"):
        gunzip(bomb, "bomb", limit=1000)
    assert gunzip(bomb, "fine", limit=10_000) == bytes(10_000)


def test_accounts_are_checked_apart() -> None:
    reader = CopyReader()
    for account in ("acme", "globex"):
        reader.body(account, generated_copy(account).ndjson())
    assert sorted(reader.copies) == ["acme", "globex"]
    assert all(check_copy(copy, RING).ok for copy in reader.copies.values())
    only = CopyReader(account="globex")
    only.body("acme", generated_copy("acme").ndjson())
    assert not only.copies
    assert only.other_accounts == {"acme"}


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            "p/2026/12/01/08/acme_d-1_3_00000000000000000010-00000000000000000019.ndjson.gz",
            (3, 10, 19, "", False),
        ),
        (
            "p/acme_d-1_3_00000000000000000010-00000000000000000019.integrity.ndjson.gz",
            (3, 10, 19, "", True),
        ),
        (
            "acme_d_1_3_00000000000000000010-00000000000000000019_replay-r1.json",
            (3, 10, 19, "r1", False),
        ),
        ("acme_d-1_3_00000000000000000010.ndjson", (3, 10, 10, "", False)),
        ("acme_d-1_3_10-19.ndjson", None),
        ("notes.txt", None),
        ("acme_d-1_3_00000000000000000010-00000000000000000019.ndjson/../x", None),
    ],
)
def test_object_names_are_read_strictly(
    key: str, expected: tuple[int, int, int, str, bool] | None
) -> None:
    name = object_name(key)
    got = (
        None
        if name is None
        else (name.partition, name.first, name.last, name.replay, name.companion)
    )
    assert got == expected


def test_the_command_verifies_a_directory_and_names_tampering(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(public_document([KEY.verifier()])))
    made = generated_copy()
    copy = tmp_path / "payloads"
    copy.mkdir()
    for number, batch in enumerate(made.batches):
        (copy / f"{number:04d}.ndjson.gz").write_bytes(
            gzip.compress(b"".join(line + b"\n" for line in batch.lines()))
        )
    (copy / "link").symlink_to(keys)  # not followed
    args = _parse("--webhook-dir", str(copy), "--keys", str(keys))
    assert args.run(args, AuditlogSettings()) == verify.VERIFIED, capsys.readouterr().err
    assert "acme in " in capsys.readouterr().out
    changed = dict(made.events[2], action="recipe.started")
    lines = [
        event_json(changed) if n == 2 else line for n, line in enumerate(made.batches[0].lines())
    ]
    (copy / "0000.ndjson.gz").write_bytes(gzip.compress(b"\n".join(lines)))
    assert args.run(args, AuditlogSettings()) == verify.TAMPERED
    err = capsys.readouterr().err
    assert f"changed: leaf 2, event {made.events[2]['event_id']}" in err


def test_the_command_refuses_a_copy_without_the_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(public_document([KEY.verifier()])))
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "a.ndjson").write_bytes(generated_copy().ndjson())
    args = _parse("--webhook-dir", str(tmp_path / "copy"), "--keys", str(keys), "--account", "x")
    assert args.run(args, AuditlogSettings()) == verify.REFUSED
    assert "no event nor integrity record of account x" in capsys.readouterr().err


def test_a_directory_is_read_in_path_order(tmp_path: Path) -> None:
    made = generated_copy()
    for number, batch in enumerate(made.batches):
        folder = tmp_path / f"day-{number // 2}"
        folder.mkdir(exist_ok=True)
        (folder / f"{number:03d}.json").write_bytes(b"[" + b",".join(batch.lines()) + b"]")
    reader = CopyReader(account=ACCOUNT)
    assert read_directory(reader, tmp_path) == len(made.batches)
    assert check_copy(reader.copies[ACCOUNT], RING).ok


def _parse(*argv: str) -> Any:
    parser = argparse.ArgumentParser()
    verify.register(parser.add_subparsers())
    return parser.parse_args(["verify", *argv])
