"""The writer's metrics, health endpoint and JSON logs, without a broker or an engine."""

from __future__ import annotations

import http.client
import io
import json
import logging
import random
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from fractions import Fraction

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from auditlog.logging_setup import configure_json_logging
from consumers.metrics import (
    FRESHNESS_BUCKETS_S,
    forget_partition,
    observe_freshness,
    record_lag,
    writer_metrics,
)
from runtime.health import HealthServer, HealthState

TABLE = "audit.events"
TOPIC = "audit.events"
FRESHNESS = "auditlog_writer_freshness_seconds"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


# --- metrics -------------------------------------------------------------------------------


def test_metrics_are_registered_once_per_registry(registry: CollectorRegistry) -> None:
    assert writer_metrics(registry) is writer_metrics(registry)
    assert writer_metrics(CollectorRegistry()) is not writer_metrics(registry)


def test_metrics_are_labelled(registry: CollectorRegistry) -> None:
    metrics = writer_metrics(registry)
    metrics.records_consumed.labels(topic=TOPIC).inc(500)
    metrics.rows_inserted.labels(table=TABLE).inc(498)
    metrics.batches.labels(table=TABLE, outcome="inserted").inc()
    metrics.batches.labels(table=TABLE, outcome="deduplicated").inc()
    metrics.insert_seconds.labels(table=TABLE).observe(0.3)
    metrics.insert_retries.labels(table=TABLE).inc()
    metrics.dead_lettered.labels(topic=TOPIC, reason="unknown_fingerprint").inc(2)
    metrics.paused_partitions.set(1)
    metrics.assigned_partitions.set(6)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("auditlog_writer_records_consumed_total", topic=TOPIC) == 500
    assert value("auditlog_writer_rows_inserted_total", table=TABLE) == 498
    assert value("auditlog_writer_batches_total", table=TABLE, outcome="deduplicated") == 1
    assert value("auditlog_writer_insert_seconds_bucket", table=TABLE, le="0.5") == 1
    assert value("auditlog_writer_insert_seconds_bucket", table=TABLE, le="0.25") == 0
    assert value("auditlog_writer_insert_seconds_bucket", table=TABLE, le="60.0") == 1
    assert value("auditlog_writer_insert_retries_total", table=TABLE) == 1
    assert (
        value("auditlog_writer_dead_lettered_total", topic=TOPIC, reason="unknown_fingerprint") == 2
    )
    assert value("auditlog_writer_paused_partitions") == 1
    assert value("auditlog_writer_assigned_partitions") == 6


def test_lag_is_high_watermark_minus_committed_and_forgotten_on_revoke(
    registry: CollectorRegistry,
) -> None:
    metrics = writer_metrics(registry)
    record_lag(metrics, TOPIC, 3, high_watermark=1_000, committed=750)
    labels = {"topic": TOPIC, "partition": "3"}
    assert registry.get_sample_value("auditlog_writer_consumer_lag", labels) == 250
    record_lag(metrics, TOPIC, 3, high_watermark=1_000, committed=1_200)  # stale watermark
    assert registry.get_sample_value("auditlog_writer_consumer_lag", labels) == 0
    forget_partition(metrics, TOPIC, 3)
    forget_partition(metrics, TOPIC, 4)  # never recorded: no error
    assert registry.get_sample_value("auditlog_writer_consumer_lag", labels) is None


def _freshness(registry: CollectorRegistry, le: str) -> float | None:
    return registry.get_sample_value(f"{FRESHNESS}_bucket", {"le": le})


def test_freshness_counts_every_record_in_its_bucket(registry: CollectorRegistry) -> None:
    metrics = writer_metrics(registry)
    now_s = 1_700_000_000.0
    now_ms = int(now_s * 1000)
    stamps = [
        now_ms - 5,  # 5 ms
        now_ms - 200,  # 0.2 s
        now_ms - 2_000,  # 2 s
        now_ms - 4_000_000,  # beyond an hour
        now_ms + 1_500,  # producer clock ahead: counted as 0
        -1,  # no timestamp: skipped
    ]
    observe_freshness(metrics, now_s, stamps)

    assert registry.get_sample_value(f"{FRESHNESS}_count") == 5
    assert registry.get_sample_value(f"{FRESHNESS}_sum") == pytest.approx(
        0.005 + 0.2 + 2.0 + 4_000.0
    )
    assert _freshness(registry, "0.01") == 2
    assert _freshness(registry, "0.1") == 2
    assert _freshness(registry, "0.25") == 3
    assert _freshness(registry, "2.5") == 4
    assert _freshness(registry, "3600.0") == 4
    assert _freshness(registry, "+Inf") == 5


def test_freshness_of_no_records_changes_nothing(registry: CollectorRegistry) -> None:
    metrics = writer_metrics(registry)
    observe_freshness(metrics, 1_700_000_000.0, [])
    observe_freshness(metrics, 1_700_000_000.0, [-1, 0])
    assert registry.get_sample_value(f"{FRESHNESS}_count") == 0
    assert b"auditlog_writer_freshness_seconds_bucket" in generate_latest(registry)


def test_freshness_matches_one_observation_per_record(registry: CollectorRegistry) -> None:
    """Bulk counting agrees with Histogram.observe per record, whatever the order."""
    metrics = writer_metrics(registry)
    reference = Histogram("reference_seconds", "", buckets=FRESHNESS_BUCKETS_S, registry=registry)
    rng = random.Random(7)
    now_s = 1_700_000_000.123_4
    exact_sum = Fraction(0)
    for _batch in range(20):
        stamps = [int(now_s * 1000) - int(rng.expovariate(1 / 3_000)) for _ in range(2_000)]
        stamps += [int(now_s * 1000) + 50]  # a little clock skew
        rng.shuffle(stamps)
        observe_freshness(metrics, now_s, stamps)
        for stamp in stamps:
            reference.observe(max(0.0, now_s - stamp / 1000))
            exact_sum += max(Fraction(0), Fraction(now_s) - Fraction(stamp, 1000))

    for bound in [*(str(b) for b in FRESHNESS_BUCKETS_S), "+Inf"]:
        expected = registry.get_sample_value("reference_seconds_bucket", {"le": bound})
        assert _freshness(registry, bound) == expected, bound
    # Exact, where summing per-record floats near 1.7e9 drifts by milliseconds.
    assert registry.get_sample_value(f"{FRESHNESS}_sum") == pytest.approx(
        float(exact_sum), rel=1e-12
    )


# --- health endpoint -----------------------------------------------------------------------


@pytest.fixture
def state() -> HealthState:
    return HealthState("clickhouse-writer", degraded_after_failures=2)


@pytest.fixture
def server(state: HealthState, registry: CollectorRegistry) -> Iterator[tuple[HealthServer, int]]:
    health = HealthServer(state, registry)
    port = health.start("127.0.0.1", 0)
    try:
        yield health, port
    finally:
        health.stop()


def _get(port: int, path: str) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        connection.close()


def test_health_reports_the_state_as_json(
    state: HealthState, server: tuple[HealthServer, int]
) -> None:
    _, port = server
    state.set_member_id("rdkafka-1234")
    state.assign([(TOPIC, 2), (TOPIC, 0), (TOPIC, 1)])
    state.pause([(TOPIC, 1)])
    state.insert_succeeded(datetime(2026, 11, 25, 10, 0, 0, 123_000, tzinfo=UTC))

    status, content_type, body = _get(port, "/health")

    assert status == 200
    assert content_type == "application/json"
    assert json.loads(body) == {
        "status": "ok",
        "group": "clickhouse-writer",
        "member_id": "rdkafka-1234",
        "assigned": [[TOPIC, 0], [TOPIC, 1], [TOPIC, 2]],
        "paused": [[TOPIC, 1]],
        "last_insert_at": "2026-11-25T10:00:00.123000+00:00",
        "last_error": None,
        "consecutive_insert_failures": 0,
    }


def test_health_is_503_while_degraded_and_while_stopping(
    state: HealthState, server: tuple[HealthServer, int]
) -> None:
    _, port = server
    state.assign([(TOPIC, 0)])
    state.insert_failed(ConnectionRefusedError("clickhouse down"))
    assert _get(port, "/health")[0] == 200  # one failure is not yet degraded
    state.insert_failed(ConnectionRefusedError("clickhouse down"))

    status, _, body = _get(port, "/health")
    report = json.loads(body)
    assert status == 503
    assert report["status"] == "degraded"
    assert report["consecutive_insert_failures"] == 2
    assert report["last_error"] == "ConnectionRefusedError: clickhouse down"

    state.insert_succeeded()
    status, _, body = _get(port, "/health")
    assert (status, json.loads(body)["consecutive_insert_failures"]) == (200, 0)

    state.revoke([(TOPIC, 0)])
    state.stopping()
    status, _, body = _get(port, "/health")
    assert status == 503
    assert json.loads(body)["status"] == "stopping"
    assert json.loads(body)["assigned"] == []


def test_metrics_path_serves_the_registry(
    registry: CollectorRegistry, server: tuple[HealthServer, int]
) -> None:
    _, port = server
    writer_metrics(registry).rows_inserted.labels(table=TABLE).inc(42)

    status, content_type, body = _get(port, "/metrics")

    assert status == 200
    assert content_type.startswith("text/plain")
    assert b'auditlog_writer_rows_inserted_total{table="audit.events"} 42.0' in body


def test_other_paths_are_not_found(server: tuple[HealthServer, int]) -> None:
    _, port = server
    assert _get(port, "/")[0] == 404
    assert _get(port, "/healthz")[0] == 404


def test_stop_releases_the_port_and_the_threads(
    state: HealthState, registry: CollectorRegistry
) -> None:
    threads_before = set(threading.enumerate())
    health = HealthServer(state, registry)
    port = health.start("127.0.0.1", 0)
    assert _get(port, "/health")[0] == 200
    assert _get(port, "/metrics")[0] == 200

    health.stop()
    health.stop()  # idempotent

    # Threads of other tests may end meanwhile: only those started here must be gone.
    assert set(threading.enumerate()) - threads_before == set()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))  # fails while anything still listens there
        probe.listen()
    with pytest.raises(RuntimeError):
        health.start("127.0.0.1", 0)


# --- JSON logs -----------------------------------------------------------------------------


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logger")
def test_json_log_lines_carry_extras() -> None:
    stream = io.StringIO()
    configure_json_logging("INFO", stream=stream)
    log = logging.getLogger("auditlog.writer")
    log.debug("not shown")
    log.info(
        "inserted %d rows",
        5_000,
        extra={"partition": 3, "first_offset": 100, "last_offset": 5_099, "seconds": 0.25},
    )

    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "INFO"
    assert entry["logger"] == "auditlog.writer"
    assert entry["message"] == "inserted 5000 rows"
    assert (entry["partition"], entry["first_offset"], entry["last_offset"]) == (3, 100, 5_099)
    assert entry["seconds"] == 0.25
    stamp = datetime.fromisoformat(entry["time"])
    assert stamp.utcoffset() is not None
    assert stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert entry["time"].endswith("Z")
    assert len(entry["time"]) == len("2026-11-25T10:00:00.123Z")


@pytest.mark.usefixtures("restore_root_logger")
def test_json_log_lines_carry_exceptions_and_odd_extras() -> None:
    stream = io.StringIO()
    configure_json_logging("DEBUG", stream=stream)
    log = logging.getLogger("auditlog.writer")
    try:
        raise ValueError("bad block")
    except ValueError:
        log.exception("insert rejected", extra={"level": "mine", "where": object()})

    entry = json.loads(stream.getvalue())
    assert entry["level"] == "ERROR"
    assert entry["extra_level"] == "mine"
    assert entry["where"].startswith("<object object")
    assert entry["exc_info"].startswith("Traceback (most recent call last):")
    assert "ValueError: bad block" in entry["exc_info"]


@pytest.mark.usefixtures("restore_root_logger")
def test_configuring_twice_installs_one_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    handler = configure_json_logging("INFO", stream=first)
    assert configure_json_logging("WARNING", stream=second) is handler
    assert logging.getLogger().handlers.count(handler) == 1
    logging.getLogger("auditlog.writer").warning("once")
    logging.getLogger("auditlog.writer").info("filtered")
    assert first.getvalue() == ""
    assert [json.loads(line)["message"] for line in second.getvalue().splitlines()] == ["once"]
    with pytest.raises(ValueError):
        configure_json_logging("LOUD")
