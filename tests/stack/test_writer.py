"""The ClickHouse writer against the real broker and engine: exactly once, through
crashes, rebalances, ClickHouse outages and poison."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from confluent_kafka import Consumer, TopicPartition

from consumers.dead_letter_budget import DeadLetterLimit, DeadLetterLimitExceeded
from deploy.stack import clickhouse as gateway
from deploy.stack import processes
from deploy.stack.endpoints import StackEndpoints
from runtime.kafka_connection import KafkaConnection
from schemas import headers as h
from schemas.validation import EventValidator
from schemas.versions import current
from schemas.wire import SingleObjectEncoder
from tests.events import valid_event
from tests.stack.fault_proxy import FaultProxy
from tests.stack.stored_rows import StoredRows
from tests.stack.threads import in_thread
from tests.stack.writer_support import Pipeline, create_pipeline, publish
from tests.waiting import wait_until
from tests.withholding_proxy import Request, WithholdingProxy

pytestmark = [pytest.mark.stack, pytest.mark.slow]

WAIT_S = 120.0


def test_100k_events_give_exactly_100k_rows(pipeline: Pipeline) -> None:
    published = publish(pipeline, 100_000)
    stats = pipeline.writer(exit_when_idle_s=3.0).run()
    assert pipeline.stored() == StoredRows(rows=100_000, events=100_000)
    assert set(pipeline.event_ids()) == published
    assert stats.rows == 100_000
    assert stats.dead_lettered == 0


def _batch_insert(request: Request) -> bool:
    """The writer's inserts of event batches: the only requests with a dedup token."""
    return "insert_deduplication_token=" in request.target


def test_sigkill_between_insert_and_commit_then_restart_gives_each_event_once(
    pipeline: Pipeline,
) -> None:
    """``auditlog consume`` killed with SIGKILL after ClickHouse stored a batch and before
    the writer heard so (so before it committed the batch's offsets); restarted, it forms
    that batch again and the insert deduplicates: each event once, none missing.

    A proxy in front of ClickHouse answers five batch inserts and holds the answer to the
    sixth, so the kill lands at that point whatever the machine's speed."""
    published = publish(pipeline, 60_000)
    command = [sys.executable, "-m", "auditlog.cli", "consume"]
    with WithholdingProxy(pipeline.clickhouse_url, _batch_insert, let_through=5) as proxy:
        env = {**os.environ, **pipeline.env(), "AUDITLOG_CLICKHOUSE_URL": proxy.url}
        first = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            proxy.wait_withheld(first, WAIT_S)  # the sixth batch insert landed
        finally:
            first.send_signal(signal.SIGKILL)
            first.communicate(timeout=30)
    landed_before = pipeline.stored()
    assert landed_before.rows == landed_before.events
    assert 0 < landed_before.rows < 60_000, "killed in the middle of the run"
    assert _committed_total(pipeline) < landed_before.rows, "a landed batch was not committed"

    second = subprocess.run(
        [*command, "--exit-when-idle", "3"],
        env={**os.environ, **pipeline.env()},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert second.returncode == 0, second.stderr
    assert pipeline.stored() == StoredRows(rows=60_000, events=60_000), "no duplicate"
    assert set(pipeline.event_ids()) == published, "no gap"


def test_two_writers_split_partitions_and_one_takes_over(pipeline: Pipeline) -> None:
    published = publish(pipeline, 20_000, seed=2)
    first, second = pipeline.writer(), pipeline.writer()
    first_thread, first_errors = in_thread(first.run, "first")
    second_thread, second_errors = in_thread(second.run, "second")
    try:
        wait_until(
            lambda: bool(first.assigned) and bool(second.assigned), WAIT_S, "both to get partitions"
        )
        assert not set(first.assigned) & set(second.assigned)
        wait_until(lambda: pipeline.count() >= 20_000, WAIT_S, "the first half")
        second.stop()
        second_thread.join(timeout=60)
        published |= publish(pipeline, 20_000, seed=3)
        wait_until(lambda: len(first.assigned) == 6, WAIT_S, "the survivor to take every partition")
        wait_until(lambda: pipeline.count() >= 40_000, WAIT_S, "the second half")
    finally:
        first.stop()
        second.stop()
        first_thread.join(timeout=60)
        second_thread.join(timeout=60)
    assert first_errors == []
    assert second_errors == []
    assert pipeline.stored() == StoredRows(rows=40_000, events=40_000)
    assert set(pipeline.event_ids()) == published


def test_clickhouse_unreachable_for_a_while_loses_nothing(
    pipeline: Pipeline, stack_endpoints: StackEndpoints, tmp_path: Path
) -> None:
    port = processes.choose_port(0)
    url = f"http://127.0.0.1:{port}"
    gateway.start_clickhouse(data_dir=tmp_path / "ch", port=port)
    try:
        private = create_pipeline(KafkaConnection(stack_endpoints.kafka_bootstrap), url)
        published = publish(private, 10_000, seed=4)
        writer = private.writer()
        thread, errors = in_thread(writer.run, "writer")
        try:
            # Acknowledged to the writer, not only stored: an insert whose answer the
            # outage cut off would be retried, and counted, after it.
            wait_until(lambda: writer.stats.rows >= 10_000, WAIT_S, "the first backlog")
            gateway.stop_clickhouse(tmp_path / "ch")
            published |= publish(private, 10_000, seed=5)
            wait_until(lambda: writer.stats.retries >= 2, WAIT_S, "the writer to retry")
            assert writer.stats.rows == 10_000
            gateway.start_clickhouse(data_dir=tmp_path / "ch", port=port)
            wait_until(lambda: private.count() >= 20_000, WAIT_S, "the backlog after the outage")
        finally:
            writer.stop()
            thread.join(timeout=60)
        assert errors == []
        assert private.stored() == StoredRows(rows=20_000, events=20_000)
        assert set(private.event_ids()) == published
    finally:
        gateway.stop_clickhouse(tmp_path / "ch")


def _dead_letters(pipeline: Pipeline, count: int) -> list[dict[str, bytes]]:
    consumer = Consumer(
        {
            "bootstrap.servers": pipeline.bootstrap,
            "group.id": f"{pipeline.group_id}-dlq-reader",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([pipeline.dead_letter_topic])
    found: list[dict[str, bytes]] = []

    def read_more() -> bool:
        for message in consumer.consume(100, timeout=0.5):
            if message.error() is None:
                found.append(h.header_map(message.headers()))
        return len(found) >= count

    try:
        wait_until(read_more, WAIT_S, "dead letters")
    finally:
        consumer.close()
    return found


def _publish_raw(
    pipeline: Pipeline,
    values: list[bytes],
    *,
    key: bytes = b"acme",
    headers: list[tuple[str, str | bytes | None]] | None = None,
) -> None:
    from confluent_kafka import Producer  # noqa: PLC0415

    producer = Producer({"bootstrap.servers": pipeline.bootstrap})
    for value in values:
        producer.produce(pipeline.topic, value=value, key=key, headers=headers)
    assert producer.flush(30) == 0


def test_a_record_naming_two_tenants_is_dead_lettered_not_stored(pipeline: Pipeline) -> None:
    """A producer that keys (or labels) an acme event as globex's: the row would be stored
    under acme while globex's consumers route it to globex; it goes to the dead-letter
    topic instead, with its own reason."""
    published = publish(pipeline, 300, seed=9)
    acme_event = SingleObjectEncoder().encode(
        EventValidator().validate(valid_event(tenant_id="acme")).to_avro()
    )
    _publish_raw(pipeline, [acme_event], key=b"globex")
    _publish_raw(pipeline, [acme_event], key=b"acme", headers=[(h.TENANT, b"globex")])
    stats = pipeline.writer(exit_when_idle_s=3.0).run()
    assert stats.dead_lettered == 2
    assert set(pipeline.event_ids()) == published
    letters = _dead_letters(pipeline, 2)
    assert [letter["auditlog-dlq-reason"] for letter in letters] == [b"tenant-mismatch"] * 2
    details = sorted(letter["auditlog-dlq-detail"].decode() for letter in letters)
    assert details == [
        "the key and body name tenant 'acme', the auditlog-tenant header 'globex'",
        "the key names tenant 'globex', the body's tenant_id 'acme'",
    ]


def test_poison_goes_to_the_dead_letter_topic_and_does_not_block(pipeline: Pipeline) -> None:
    published = publish(pipeline, 500, seed=6)
    good = SingleObjectEncoder().encode(EventValidator().validate(valid_event()).to_avro())
    poison = [
        b"not avro at all",
        b"\xc3\x01" + b"\x13" * 8 + good[10:],  # unknown fingerprint
        b"\xc3\x01" + current().fingerprint + good[10:40],  # truncated datum
    ]
    _publish_raw(pipeline, poison)
    published |= publish(pipeline, 500, seed=7)
    stats = pipeline.writer(exit_when_idle_s=3.0).run()
    assert stats.rows == 1000
    assert stats.dead_lettered == 3
    assert pipeline.stored() == StoredRows(rows=1000, events=1000)
    assert set(pipeline.event_ids()) == published
    letters = _dead_letters(pipeline, 3)
    assert sorted(letter["auditlog-dlq-reason"].decode() for letter in letters) == [
        "corrupt-datum",
        "not-framed",
        "unknown-schema",
    ]
    for letter in letters:
        assert letter["auditlog-dlq-source-topic"].decode() == pipeline.topic
        assert int(letter["auditlog-dlq-source-offset"]) >= 0


def test_a_writer_fed_only_garbage_stops_without_draining(pipeline: Pipeline) -> None:
    _publish_raw(pipeline, [b"garbage %d" % n for n in range(600)])
    writer = pipeline.writer(DeadLetterLimit(max_ratio=0.5, max_run=200), exit_when_idle_s=3.0)
    with pytest.raises(DeadLetterLimitExceeded, match="stopping instead of draining"):
        writer.run()
    assert pipeline.count() == 0
    assert writer.stats.dead_lettered == 0


def test_sigterm_commits_what_landed_and_exits_zero(pipeline: Pipeline) -> None:
    published = publish(pipeline, 30_000, seed=8)
    port = processes.choose_port(0)
    env = {**os.environ, **pipeline.env(), "AUDITLOG_METRICS_PORT": str(port)}
    command = [sys.executable, "-m", "auditlog.cli", "consume"]
    with _consume(command, env) as writer:
        wait_until(lambda: pipeline.count() >= 4_000, WAIT_S, "the first rows")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            health = json.load(response)
        assert health["status"] == "ok"
        assert health["member_id"]
        assert len(health["assigned"]) == 6
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert b"auditlog_writer_rows_inserted_total" in response.read()
        writer.send_signal(signal.SIGTERM)
        _out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    committed = _committed_total(pipeline)
    assert committed == pipeline.count(), "committed exactly what landed"

    rest = subprocess.run(
        [*command, "--exit-when-idle", "3"],
        env={**env, "AUDITLOG_METRICS_PORT": "0"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert rest.returncode == 0, rest.stderr
    assert pipeline.stored() == StoredRows(rows=30_000, events=30_000)
    assert set(pipeline.event_ids()) == published


def test_sigterm_while_the_startup_check_retries_exits_zero(pipeline: Pipeline) -> None:
    """ClickHouse fails the check of announced ranges that follows an assignment (a proxy
    cuts every progress-log query); SIGTERM then ends the writer cleanly, exit 0, not a
    traceback."""
    upstream = urlsplit(pipeline.clickhouse_url)
    assert upstream.hostname is not None
    assert upstream.port is not None
    with FaultProxy((upstream.hostname, upstream.port), cut_on=b"writer_progress") as proxy:
        env = {**os.environ, **pipeline.env(), "AUDITLOG_CLICKHOUSE_URL": proxy.url}
        command = [sys.executable, "-m", "auditlog.cli", "consume"]
        with _consume(command, env) as writer:
            wait_until(lambda: proxy.cuts >= 2, WAIT_S, "the writer to retry its startup check")
            writer.send_signal(signal.SIGTERM)
            out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert "Traceback" not in err
    assert "records: 0, rows: 0" in out


@contextlib.contextmanager
def _consume(command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """``auditlog consume`` as a process of the test; killed at the end of the block if it
    is still running (the test stops it itself, with the signal it tests)."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _committed_total(pipeline: Pipeline) -> int:
    consumer = Consumer({"bootstrap.servers": pipeline.bootstrap, "group.id": pipeline.group_id})
    try:
        partitions = [TopicPartition(pipeline.topic, p) for p in range(6)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(partitions, timeout=30))
    finally:
        consumer.close()
