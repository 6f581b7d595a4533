"""The integrity log delivered beside the events, end to end against the real broker, engine
and S3 server: events published through the SDK, ``auditlog integrity run`` (publishing the
streamed copy), ``auditlog consume`` (which must store no row and dead-letter nothing for
the copy's records), ``auditlog sink`` to an S3 destination and to a webhook. Each
destination receives leaves records that list the leaf hash of every event it received, in
order, and checkpoint records that verify against those hashes."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from auditlog.settings import AuditlogSettings
from deploy.stack import s3
from deploy.stack.endpoints import StackEndpoints
from integrity import checkpoint, merkle
from integrity.copy_records import CheckpointRecord, LeavesRecord, parse
from integrity.keystore import KeyStore
from integrity.leaf import event_leaf_hash
from tests.stack import integrity_support as support
from tests.stack.sink_support import (
    new_bucket,
    publish,
    put_destinations,
    s3_destination,
    secret_environment,
    sink_env,
    sink_until_idle,
    tenant_events,
    webhook_destination,
    webhook_receiver,
)
from tests.stack.writer_support import Pipeline

pytestmark = [pytest.mark.stack, pytest.mark.slow]


def _cli(env: dict[str, str], *args: str) -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "auditlog.cli", *args, "--exit-when-idle", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]


def _check_copy(
    tenant: str, items: Iterator[tuple[str, dict[str, Any] | bytes]], keys: KeyStore
) -> int:
    """The events and integrity records a destination received, in stream order: the
    leaves records chain, list exactly the received events' leaf hashes in order, and every
    checkpoint verifies with a root recomputed from the listed hashes. Returns the number
    of checkpoints checked."""
    events: list[bytes] = []
    listed: dict[int, bytes] = {}
    notes: list[CheckpointRecord] = []
    for kind, item in items:
        if kind == "event":
            assert isinstance(item, dict)
            events.append(event_leaf_hash(item))
            continue
        assert isinstance(item, bytes)
        record = parse(item)
        assert record.tenant_id == tenant
        if isinstance(record, CheckpointRecord):
            notes.append(record)
            continue
        assert isinstance(record, LeavesRecord)
        tree = merkle.Frontier.empty()
        for index in range(record.first):
            tree.append(listed[index])
        assert record.frontier == tree.hashes
        for index, leaf_hash in enumerate(record.hashes, record.first):
            assert listed.setdefault(index, leaf_hash) == leaf_hash
    hashes = [listed[i] for i in range(len(listed))]
    assert hashes == events, "the listed leaves are the received events, in order"
    assert notes
    for note in notes:
        signed = checkpoint.verify(note.note, keys.ring(), checkpoint.origin_for(tenant))
        assert signed.root == merkle.root(hashes[: signed.size])
    assert max(checkpoint.verify(n.note, keys.ring()).size for n in notes) == len(hashes)
    return len(notes)


def _line_items(body: bytes, companion: bool) -> Iterator[tuple[str, dict[str, Any] | bytes]]:
    for line in body.splitlines():
        if companion:
            yield "copy", line
        else:
            yield "event", json.loads(line)


def _dead_letters(settings: AuditlogSettings) -> int:
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex}"}
    )
    try:
        _low, high = consumer.get_watermark_offsets(
            TopicPartition(settings.dead_letter_topic, 0), 10
        )
    finally:
        consumer.close()
    return int(high)


def test_every_destination_gets_a_verifiable_copy_of_the_log(
    sink: AuditlogSettings, pipeline: Pipeline, stack_endpoints: StackEndpoints, tmp_path: Path
) -> None:
    keys = support.key_store(tmp_path / "keys")
    bucket = new_bucket(stack_endpoints)
    env = {
        **os.environ,
        **sink_env(sink),
        **secret_environment(stack_endpoints),
        "AUDITLOG_CLICKHOUSE_URL": pipeline.clickhouse_url,
        "AUDITLOG_CLICKHOUSE_DATABASE": pipeline.database,
        "AUDITLOG_WRITER_GROUP_ID": pipeline.group_id,
        "AUDITLOG_INTEGRITY_GROUP_ID": f"{pipeline.group_id}-integrity",
        "AUDITLOG_INTEGRITY_BATCH_MAX_RECORDS": "100",
        "AUDITLOG_INTEGRITY_FLUSH_INTERVAL_S": "0.3",
        "AUDITLOG_INTEGRITY_CHECKPOINT_INTERVAL_S": "1",
        "AUDITLOG_INTEGRITY_KEYS_DIR": str(keys.directory),
        "AUDITLOG_LOG_LEVEL": "WARNING",
    }
    with webhook_receiver() as receiver:
        hook = webhook_destination("acme", receiver.url + "/acme", max_records=50)
        in_s3 = s3_destination("acme", bucket, stack_endpoints.s3_endpoint, max_records=70)
        put_destinations(sink, hook, in_s3)
        acme = publish(sink, tenant_events("acme", 400))
        others = publish(sink, tenant_events("globex", 100))

        _cli(env, "integrity", "run")  # publishes the copy into the events topic
        _cli(env, "consume")  # must not take the copy's records for events
        assert sorted(pipeline.event_ids()) == sorted(acme + others)
        assert _dead_letters(sink) == 0
        sink_ran = sink_until_idle(env, idle_s=3, timeout_s=240)
        assert sink_ran.returncode == 0, sink_ran.stderr[-3000:]

    # The webhook: integrity records as items of the batches, in stream order (one batch
    # of a lane at a time: requests arrive in stream order; a redelivery is dropped by key).
    assert sorted(receiver.ids("/acme")) == sorted(acme)
    seen: set[str] = set()
    webhook_items: list[tuple[str, dict[str, Any] | bytes]] = []
    for request in receiver.requests:
        if request.path != "/acme" or request.idempotency_key in seen:
            continue
        seen.add(request.idempotency_key)
        for item in request.items:
            if "type" in item:
                webhook_items.append(("copy", json.dumps(item, separators=(",", ":")).encode()))
            else:
                webhook_items.append(("event", item))
    assert _check_copy("acme", iter(webhook_items), keys) >= 1

    # S3: each batch's companion object beside its events object.
    client = s3.client(stack_endpoints.s3_endpoint, stack_endpoints.s3_keys)
    keys_in_bucket = sorted(
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    )
    companions = [k for k in keys_in_bucket if k.endswith(".integrity.ndjson.gz")]
    assert companions
    # Events and integrity records are checked as two sequences (each in stream order),
    # so each batch's events object and its companion can be read one after the other.
    s3_items: list[tuple[str, dict[str, Any] | bytes]] = []
    for key in sorted(keys_in_bucket, key=_range_start):
        body = gzip.decompress(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        s3_items += _line_items(body, key.endswith(".integrity.ndjson.gz"))
    assert _check_copy("acme", iter(s3_items), keys) >= 1

    # What the customer runs on what it received: `auditlog verify` on the bucket and on the
    # webhook payloads as a receiver saved them (in arrival order), with only the public keys.
    s3_env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": stack_endpoints.s3_keys.access_key,
        "AWS_SECRET_ACCESS_KEY": stack_endpoints.s3_keys.secret_key,
        "AUDITLOG_LOG_LEVEL": "WARNING",
    }
    public_keys = keys.directory / "keys.json"
    on_s3 = ["--s3", f"s3://{bucket}/", "--s3-endpoint", stack_endpoints.s3_endpoint]
    verified = _verify(s3_env, *on_s3, "--keys", str(public_keys))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.rstrip().endswith("verified")
    saved = tmp_path / "webhook"
    saved.mkdir()
    kept = {r.idempotency_key: r for r in receiver.requests if r.path == "/acme"}
    for n, request in enumerate(kept.values()):
        (saved / f"{n:06d}.json").write_bytes(request.body)
    verified = _verify(s3_env, "--webhook-dir", str(saved), "--keys", str(public_keys))
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # One field of one delivered event changed in the bucket: named, exit 1.
    first_events = next(k for k in keys_in_bucket if not k.endswith(".integrity.ndjson.gz"))
    lines = gzip.decompress(client.get_object(Bucket=bucket, Key=first_events)["Body"].read())
    event = json.loads(lines.splitlines()[0])
    event["action"] = "user.logout"
    forged = json.dumps(event, separators=(",", ":")).encode()
    body = b"\n".join([forged, *lines.splitlines()[1:]]) + b"\n"
    client.put_object(Bucket=bucket, Key=first_events, Body=gzip.compress(body))
    tampered = _verify(s3_env, *on_s3, "--keys", str(public_keys))
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    named = [x for x in tampered.stderr.splitlines() if x.strip().startswith("changed: leaf ")]
    assert [f"event {event['event_id']}:" in line for line in named] == [True], tampered.stderr


def _verify(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auditlog.cli", "verify", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _range_start(key: str) -> int:
    """The first offset in an object's name (``..._<first>-<last>.<ext>``)."""
    return int(key.rsplit("/", 1)[-1].rsplit("_", maxsplit=1)[-1].split("-", maxsplit=1)[0])
