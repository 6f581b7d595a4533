"""``auditlog verify --s3`` against the stack's real S3 server (issue 14's tamper tests on a
streamed copy): copies generated as the appender and the sinks make them (real keys, real
trees), put as the S3 sender names them (events objects and their
``.integrity.ndjson.gz`` companions), then tampered with as someone with write access to
the customer's bucket would, and verified as the customer would: a separate process with
the exported public keys and S3 credentials from the environment."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deploy.stack import s3 as stack_s3
from deploy.stack.endpoints import StackEndpoints
from integrity.copy_records import LeavesRecord, parse
from integrity.keys import SigningKey
from integrity.keystore import public_document
from sinks.destinations.model import S3Target
from sinks.encoding import event_json
from sinks.senders.base import Payload
from sinks.senders.s3_objects import object_key
from tests.integrity_copies import KEY, SIGNED_MS, Batch, GeneratedCopy, checkpoint_line
from tests.integrity_copies import generated_copy as make_copy

pytestmark = pytest.mark.stack

ACCOUNT = "acme"
BATCH = 5
FIRST_OFFSET = 100  # leaf i is offset 100 + i of partition 3


@dataclass
class Bucket:
    name: str
    endpoint: str
    client: Any
    keys_file: Path
    environment: dict[str, str]

    def put(self, prefix: str, batches: list[Batch], *, replay: str | None = None) -> None:
        """Each batch as the S3 sender names it: the events object, then its companion."""
        target = S3Target(bucket=self.name, prefix_template=prefix)
        for number, batch in enumerate(batches):
            first = FIRST_OFFSET + number * BATCH
            events = json.loads(batch.events[0]) if batch.events else {}
            at = events.get("occurred_at", "2026-12-01T08:00:00.000Z")
            payload = Payload(
                tenant_id=ACCOUNT,
                destination_id="d-1",
                topic="audit.events",
                partition=3,
                first_offset=first,
                last_offset=first + BATCH - 1,
                record_count=BATCH,
                first_event_at=_time(at),
                body=b"",
                content_type="application/x-ndjson",
                content_encoding="gzip",
                file_extension="ndjson.gz",
                replay_id=replay,
            )
            key = object_key(target, payload)
            companion = key.removesuffix("ndjson.gz") + "integrity.ndjson.gz"
            for name, lines in ((key, batch.events), (companion, batch.integrity)):
                if lines:
                    body = gzip.compress(b"".join(line + b"\n" for line in lines), mtime=0)
                    self.client.put_object(Bucket=self.name, Key=name, Body=body)

    def verify(self, prefix: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "auditlog.cli",
                "verify",
                "--s3",
                f"s3://{self.name}/{prefix}",
                "--s3-endpoint",
                self.endpoint,
                "--keys",
                str(self.keys_file),
                *extra,
            ],
            env={**os.environ, **self.environment},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def bucket(
    stack_endpoints: StackEndpoints, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bucket]:
    name = f"test-copy-{uuid.uuid4().hex[:12]}"
    endpoint, keys = stack_endpoints.s3_endpoint, stack_endpoints.s3_keys
    stack_s3.ensure_bucket(endpoint, keys, name)
    client = stack_s3.client(endpoint, keys)
    keys_file = tmp_path_factory.mktemp("copy-keys") / "keys.json"
    keys_file.write_text(json.dumps(public_document([KEY.verifier()])))
    environment = {
        "AWS_ACCESS_KEY_ID": keys.access_key,
        "AWS_SECRET_ACCESS_KEY": keys.secret_key,
        "AUDITLOG_LOG_LEVEL": "WARNING",
    }
    try:
        yield Bucket(name, endpoint, client, keys_file, environment)
    finally:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=name, Key=item["Key"])
        client.delete_bucket(Bucket=name)
        client.close()


def _copy() -> GeneratedCopy:
    return make_copy(ACCOUNT, 20, batch=BATCH, checkpoint_every=2)


def _edit_event(copy: GeneratedCopy, number: int, line: bytes | None) -> list[Batch]:
    target = event_json(copy.events[number])
    batches = []
    for batch in copy.batches:
        events = [line if current == target else current for current in batch.events]
        batches.append(Batch([e for e in events if e is not None], batch.integrity))
    return batches


def _changed(copy: GeneratedCopy) -> list[Batch]:
    actor = {"type": "user", "id": "u-someone-else"}
    return _edit_event(copy, 7, event_json(dict(copy.events[7], actor=actor)))


def _deleted(copy: GeneratedCopy) -> list[Batch]:
    return _edit_event(copy, 12, None)


def _inserted(copy: GeneratedCopy) -> list[Batch]:
    forged = event_json(dict(copy.events[3], event_id=str(uuid.uuid4())))
    batches = list(copy.batches)
    first = batches[0]
    batches[0] = Batch([*first.events[:4], forged, *first.events[4:]], first.integrity)
    return batches


def _swapped(copy: GeneratedCopy) -> list[Batch]:
    batches = list(copy.batches)
    events = list(batches[1].events)
    events[0], events[1] = events[1], events[0]
    batches[1] = Batch(events, batches[1].integrity)
    return batches


def _dropped_leaves(copy: GeneratedCopy) -> list[Batch]:
    batches = list(copy.batches)
    kept = [line for line in batches[1].integrity if not isinstance(parse(line), LeavesRecord)]
    batches[1] = Batch(batches[1].events, kept)
    return batches


def _forged_checkpoint(copy: GeneratedCopy) -> list[Batch]:
    other = SigningKey(KEY.name, Ed25519PrivateKey.generate())
    batches = list(copy.batches)
    last = batches[-1]
    forged = checkpoint_line(ACCOUNT, copy.hashes, 20, SIGNED_MS + 99, other)
    batches[-1] = Batch(last.events, [*last.integrity, forged])
    return batches


TAMPERED: dict[str, tuple[Callable[[GeneratedCopy], list[Batch]], str]] = {
    "changed": (_changed, "changed: leaf 7, event "),
    "deleted": (_deleted, "missing: leaf 12: "),
    "inserted": (_inserted, "inserted: event "),
    "swapped": (_swapped, "moved: leaf 5, event "),
    "dropped-leaves": (_dropped_leaves, "gap: leaf 5: "),
    "forged-checkpoint": (_forged_checkpoint, "bad-checkpoint: "),
}


def _findings(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.strip() for line in result.stderr.splitlines() if line.startswith("  ")]


def test_an_untouched_copy_verifies(bucket: Bucket) -> None:
    prefix = "untouched/{tenant_id}/{destination_id}"
    bucket.put(prefix, _copy().batches)
    bucket.client.put_object(Bucket=bucket.name, Key="untouched/acme/notes.txt", Body=b"hi")
    result = bucket.verify("untouched/")
    assert result.returncode == 0, result.stderr
    assert "acme in s3://" in result.stdout
    assert "20 events, 20 leaves listed, 2 checkpoints" in result.stdout
    assert result.stdout.rstrip().endswith("verified")
    assert "not an object name the S3 sender gives" in result.stderr  # notes.txt, not read


@pytest.mark.parametrize("case", list(TAMPERED))
def test_tampering_with_the_bucket_is_named(bucket: Bucket, case: str) -> None:
    tamper, expected = TAMPERED[case]
    bucket.put(f"{case}/{{tenant_id}}", tamper(_copy()))
    result = bucket.verify(f"{case}/")
    assert result.returncode == 1, result.stdout + result.stderr
    found = _findings(result)
    assert any(line.startswith(expected) for line in found), found


def test_a_copy_that_starts_mid_log_verifies(bucket: Bucket) -> None:
    copy = _copy()
    bucket.put(
        "mid", [Batch(), Batch(), *copy.batches[2:]]
    )  # the first two batches never delivered
    result = bucket.verify("mid/")
    assert result.returncode == 0, result.stderr
    assert "from leaf 10 (mid-log)" in result.stdout


def test_duplicates_from_a_replay_are_accepted(bucket: Bucket) -> None:
    copy = _copy()
    bucket.put("replayed", copy.batches)
    bucket.put("replayed", copy.batches[:2], replay="r-1")
    result = bucket.verify("replayed/", "--account", ACCOUNT)
    assert result.returncode == 0, result.stderr
    assert "10 duplicate events" in result.stdout


def test_a_filtered_copy_verifies_with_filtered(bucket: Bucket) -> None:
    bucket.put("filtered", _deleted(_copy()))
    assert bucket.verify("filtered/").returncode == 1
    result = bucket.verify("filtered/", "--filtered")
    assert result.returncode == 0, result.stderr
    assert "1 leaves left out by the filter" in result.stdout


def test_an_empty_prefix_is_refused(bucket: Bucket) -> None:
    result = bucket.verify("nothing-here/")
    assert result.returncode == 2
    assert "no event nor integrity record of any account" in result.stderr
