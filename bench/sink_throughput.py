"""Benchmark: one sink worker replicating a Kafka backlog to S3 and to a webhook, beside
the ceilings, and its delivery latency under a steady live load.

Starts a broker and a MinIO S3 server of its own (temporary directories, stopped at the
end), creates an events topic of 12 partitions and publishes a backlog of ``--events``
generated events of ``--tenants`` tenants (Zipf-sized; a pool of at most 50k generated and
validated events published round after round with fresh event ids through
``publish_datum``; timed, not part of any result). Destinations are created a minute in the
past (a destination does not receive events published before it existed). Then, each in a
consumer group, destination topic and progress topic of its own, so each reads the whole
backlog:

- ``read_discard``: a consumer with the worker's consumer settings, ``consume(500)``, that
  drops every record (the ceiling of reading);
- ``decode_encode``: per record, in memory on the pool's values: ``Decoder.decode`` +
  ``event_json`` (the plain way), reading the datum without logical types by fastavro
  and by the generated reader (``read_plain_*``), ``EventTranscoder.to_json`` (what the
  worker does per record on its loop) and gzip of the NDJSON (done on the delivery threads);
  ``ceiling_events_per_s`` is reading plus transcoding;
- ``s3``: one destination per tenant, all in one bucket, default batch limits
  (``BatchLimits()``), NDJSON gzip; one :class:`sinks.worker.SinkWorker` built by
  ``auditlog.sink_wiring.sink_worker`` on a thread of this process; timed from ``run()`` until
  ``stats.delivered_records`` reaches the backlog, then stopped; the objects are read back
  and their lines counted;
- ``webhook``: the same with one webhook destination per tenant (signed, gzip) to a
  receiver in a process of its own (so it does not take the worker's GIL) that checks
  each signature, counts the NDJSON lines and answers 200.

With the default ``max_age_s`` of 30 s a backlog of a few hundred thousand events leaves
most lanes (destination x partition) below ``max_records`` (10k), and every lane's last
batch opens at the latest when the last record is routed: the run cannot end before
``routed_s + max_age_s``, so ``events_per_s`` (first record to last delivery) is mostly
that wait. Each scenario therefore also reports ``routed_per_s`` (first record to the last
one taken into the lanes: the worker loop's rate, deliveries running beside it),
``tail_beyond_age_s`` (time after ``routed + max_age_s`` until the last delivery:
deliveries falling behind), ``events_per_s_excluding_final_age_wait`` (events /
max(routed_s, seconds - max_age_s)) and the CPU per event of the process and of the
worker loop's thread.

Latency: a producer process publishes at ``--live-rate`` events/s for ``--live-seconds``
into a fresh topic, every event stamped (``occurred_at``) with the time it is sent, while a
worker (default batch settings) delivers each tenant's events to a webhook destination and
to an S3 destination. Webhook: the receiver's clock at arrival minus ``occurred_at``, per
event. S3: the object's ``LastModified`` (whole seconds) plus 1 s minus
``occurred_at`` (an upper bound). Target: p99 under ``max_age_s`` + 5 s.

Prints one JSON object.

    python -m bench.sink_throughput [--events 300000] [--tenants 200] [--live-rate 2000]
    python -m bench.sink_throughput --events 50000 --live-seconds 20 --max-age-s 5
    python -m bench.sink_throughput --profile-worker sink.prof  # the loop and deliveries
    python -m bench.sink_throughput --timeline  # the runs' progress, once a second
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gzip
import io
import json
import math
import multiprocessing
import multiprocessing.synchronize
import os
import pstats
import re
import resource
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from fastavro import parse_schema, schemaless_reader
from prometheus_client import CollectorRegistry

from auditlog import sink_wiring, wiring
from auditlog.settings import AuditlogSettings
from bench.common import machine, private_kafka, private_s3, publish_at_rate, publish_backlog
from deploy.stack import s3
from deploy.stack.endpoints import S3Keys
from producers.config import ProducerConfig
from producers.generator import GeneratorConfig, generate
from producers.metrics import producer_metrics
from producers.producer import AuditProducer
from runtime.health import HealthState
from runtime.kafka_connection import KafkaConnection
from schemas.avro_decoder import generate_reader, without_logical_types
from schemas.validation import EventValidator
from schemas.wire import Decoder, SingleObjectEncoder, parse_frame
from sinks import dispatch as dispatch_module
from sinks.destinations.model import (
    BatchLimits,
    Destination,
    S3Target,
    SecretValue,
    WebhookTarget,
)
from sinks.encoding import assemble, event_json
from sinks.signing import SignatureError, verify
from sinks.transcode import EventTranscoder
from sinks.worker import SinkConfig, SinkWorker

PARTITIONS = 12
POOL = 50_000
TARGET_EVENTS_PER_S = 100_000  # per worker, to S3 and to webhooks (issue 17)
LIVE_POOL = 20_000
GAP_MS = 1.0
POLL_S = 0.05
READ_BATCH = 500  # what the worker asks consume() for
CODEC_SAMPLE = 20_000
GZIP_CHUNK = 1_000

# Secrets by reference (env:NAME), as an operator would keep them out of the store, under
# the default reference prefix (AUDITLOG_SINK_SECRET_REF_PREFIX).
WEBHOOK_SECRET_ENV = "AUDITLOG_DEST_SECRET_BENCH_SINK_WEBHOOK"
S3_KEY_ENV = "AUDITLOG_DEST_SECRET_BENCH_SINK_S3_ACCESS_KEY"
S3_SECRET_ENV = "AUDITLOG_DEST_SECRET_BENCH_SINK_S3_SECRET_KEY"
WEBHOOK_SECRET = "bench-sink-webhook-secret"
_OCCURRED_AT = re.compile(rb'"occurred_at":"([^"]+)"')


# -- services ----------------------------------------------------------------------------


def _create_topics(
    bootstrap: str, topics: Sequence[str] = (), compacted: Sequence[str] = ()
) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(name, PARTITIONS) for name in topics]
    new += [NewTopic(name, 1, config={"cleanup.policy": "compact"}) for name in compacted]
    for future in admin.create_topics(new).values():
        future.result(timeout=30)


def _delete_topics(bootstrap: str, topics: Sequence[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(list(topics)).values():
        with contextlib.suppress(KafkaException):
            future.result(timeout=30)


def _settings(bootstrap: str, s3_endpoint: str, events_topic: str, name: str) -> AuditlogSettings:
    """Settings of one scenario: the events topic, and a destination topic, progress topic
    and consumer group of its own (the two topics are created)."""
    suffix = f"{name}.{uuid.uuid4().hex[:8]}"
    settings = AuditlogSettings(
        kafka_bootstrap=bootstrap,
        s3_endpoint=s3_endpoint,
        events_topic=events_topic,
        destinations_topic=f"bench.sink.{suffix}.destinations",
        sink_progress_topic=f"bench.sink.{suffix}.progress",
        sink_group_id=f"bench-sink-{suffix}",
        sink_allow_local=True,
        metrics_port=0,
    )
    _create_topics(bootstrap, compacted=(settings.destinations_topic, settings.sink_progress_topic))
    return settings


def _scenario_topics(settings: AuditlogSettings) -> list[str]:
    return [settings.destinations_topic, settings.sink_progress_topic]


# -- events ------------------------------------------------------------------------------


def _pool(count: int, tenants: int, seed: int) -> list[dict[str, Any]]:
    """``count`` generated events, validated, as Avro datums."""
    start = datetime.now(UTC) - timedelta(milliseconds=1.2 * GAP_MS * count + 3_600_000)
    config = GeneratorConfig(
        events=count, tenants=tenants, seed=seed, start=start, mean_gap_ms=GAP_MS, diurnal=False
    )
    validator = EventValidator()
    return [validator.validate(event).to_avro() for event in generate(config)]


def _fresh_ids(pool: list[dict[str, Any]], events: int) -> Iterator[dict[str, Any]]:
    """``events`` datums: the pool round after round, each with a fresh event id."""
    for i in range(events):
        datum = pool[i % len(pool)]
        datum["event_id"] = str(uuid.uuid4())
        yield datum


# -- destinations ------------------------------------------------------------------------


def _s3_destination(
    index: int,
    tenant: str,
    bucket: str,
    endpoint: str,
    created: datetime,
    batch: BatchLimits,
    *,
    own_credentials: bool = False,
) -> Destination:
    """``own_credentials``: secret references of the destination's own (the same keys
    under other names), so the worker cannot share one S3 client between destinations,
    as with customers' own buckets and credentials."""
    suffix = f"_{index}" if own_credentials else ""
    if own_credentials:
        os.environ[S3_KEY_ENV + suffix] = os.environ[S3_KEY_ENV]
        os.environ[S3_SECRET_ENV + suffix] = os.environ[S3_SECRET_ENV]
    return Destination(
        id=f"s3-{index:04d}-{uuid.uuid4().hex[:6]}",
        tenant_id=tenant,
        target=S3Target(
            bucket=bucket,
            endpoint_url=endpoint,
            access_key_id=SecretValue(ref=f"env:{S3_KEY_ENV}{suffix}"),
            secret_access_key=SecretValue(ref=f"env:{S3_SECRET_ENV}{suffix}"),
        ),
        batch=batch,
        created_at=created,
        updated_at=created,
    )


def _webhook_destination(
    index: int, tenant: str, url: str, created: datetime, batch: BatchLimits
) -> Destination:
    return Destination(
        id=f"wh-{index:04d}-{uuid.uuid4().hex[:6]}",
        tenant_id=tenant,
        target=WebhookTarget(
            url=f"{url}/t/{index}", signing_secret=SecretValue(ref=f"env:{WEBHOOK_SECRET_ENV}")
        ),
        batch=batch,
        created_at=created,
        updated_at=created,
    )


def _put(settings: AuditlogSettings, destinations: Sequence[Destination]) -> float:
    began = time.perf_counter()
    store = wiring.destination_store(settings)
    try:
        for destination in destinations:
            store.put(destination)
    finally:
        store.close()
    return time.perf_counter() - began


def _tenants(pool: Sequence[dict[str, Any]]) -> list[str]:
    return sorted({str(datum["tenant_id"]) for datum in pool})


# -- the webhook receiver (a process of its own) -----------------------------------------


@dataclass
class _Received:
    requests: int = 0
    events: int = 0
    bytes: int = 0
    bad_signatures: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0  # the receiver process's own user + system time


def _receiver_process(
    ports: multiprocessing.Queue[Any],
    stop: multiprocessing.synchronize.Event,
    out: multiprocessing.Queue[Any],
    events: Synchronized[int],
    measure_latency: bool,
) -> None:
    """(A process of its own.) Answer every POST at once: 200 when its signature checks,
    else 401; count the NDJSON lines in ``events``; with ``measure_latency``, keep arrival
    time minus each event's ``occurred_at``. Put the port on ``ports``, then, once ``stop``
    is set, the :class:`_Received` on ``out``."""
    state = _Received()
    lock = threading.Lock()
    secret = WEBHOOK_SECRET.encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real endpoint would

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            now_ms = time.time() * 1000.0
            signed = True
            try:
                verify(body, dict(self.headers.items()), secret)
            except SignatureError:
                signed = False
            raw = gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
            lines = raw.count(b"\n")
            latencies = []
            if measure_latency:
                for match in _OCCURRED_AT.finditer(raw):
                    at = datetime.fromisoformat(match.group(1).decode())
                    latencies.append(now_ms - at.timestamp() * 1000.0)
            with lock:
                state.requests += 1
                state.bytes += len(body)
                state.bad_signatures += 0 if signed else 1
                state.latencies_ms.extend(latencies)
            with events.get_lock():
                events.value += lines
            self.send_response(200 if signed else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    ports.put(server.server_address[1])
    stop.wait()
    server.shutdown()
    thread.join()
    server.server_close()
    with lock:
        state.events = events.value
        usage = resource.getrusage(resource.RUSAGE_SELF)
        state.cpu_s = usage.ru_utime + usage.ru_stime
        out.put(state)


@dataclass
class _Receiver:
    url: str
    events: Synchronized[int]
    stop: multiprocessing.synchronize.Event
    out: multiprocessing.Queue[Any]
    received: _Received | None = None


@contextlib.contextmanager
def _receiver(*, measure_latency: bool) -> Iterator[_Receiver]:
    """The receiver process, stopped on exit; ``received`` is set then."""
    context = multiprocessing.get_context("spawn")
    ports: multiprocessing.Queue[Any] = context.Queue()
    out: multiprocessing.Queue[Any] = context.Queue()
    stop = context.Event()
    events: Synchronized[int] = context.Value("q", 0)
    process = context.Process(
        target=_receiver_process,
        args=(ports, stop, out, events, measure_latency),
        name="bench-webhook-receiver",
        daemon=True,
    )
    process.start()
    try:
        port = ports.get(timeout=60)
        handle = _Receiver(f"http://127.0.0.1:{port}", events, stop, out)
        yield handle
        stop.set()
        handle.received = out.get(timeout=60)
    finally:
        stop.set()
        process.join(timeout=30)
        if process.is_alive():
            process.terminate()
            process.join(timeout=10)


# -- a worker on a thread ----------------------------------------------------------------


@dataclass
class _Run:
    """A worker running on a thread of this process (its loop profiled when ``profile``)."""

    worker: SinkWorker
    health: HealthState
    registry: CollectorRegistry
    profile: cProfile.Profile | None
    began: float = 0.0
    cpu_began: float = 0.0
    loop_cpu_s: float = 0.0
    failure: list[BaseException] = field(default_factory=list)
    thread: threading.Thread | None = None
    timeline: list[list[float]] | None = None
    next_sample: float = 0.0

    def start(self) -> None:
        def run() -> None:
            try:
                if self.profile is not None:
                    self.profile.enable()
                self.worker.run()
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                self.failure.append(exc)
            finally:
                if self.profile is not None:
                    self.profile.disable()
                self.loop_cpu_s = time.thread_time()

        self.thread = threading.Thread(target=run, name="sink-worker")
        self.began = time.perf_counter()
        self.cpu_began = time.process_time()
        self.thread.start()

    def assigned(self) -> bool:
        return len(self.health.snapshot().assigned) >= PARTITIONS

    def wait(
        self, condition: Callable[[], bool], what: str, timeout_s: float, *, required: bool = True
    ) -> bool:
        """Poll until ``condition``; after ``timeout_s`` raise (``required``) or say so on
        stderr and return False."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            self.poll()
            if time.monotonic() > deadline:
                message = f"timed out waiting for {what}: {self.worker.stats}"
                if required:
                    raise RuntimeError(message)
                print(message, file=sys.stderr)
                return False
            time.sleep(POLL_S)
        return True

    def poll(self) -> None:
        """Sample the timeline (once a second, if kept); raise if the worker failed."""
        now = time.perf_counter()
        if self.timeline is not None and now >= self.next_sample:
            self.next_sample = now + 1.0
            stats = self.worker.stats
            self.timeline.append(
                [
                    round(now - self.began, 1),
                    stats.records,
                    stats.delivered_records,
                    stats.batches,
                    round(time.process_time() - self.cpu_began, 1),
                ]
            )
        if self.failure:
            raise self.failure[0]
        if self.thread is not None and not self.thread.is_alive():
            raise RuntimeError(f"the worker stopped early: {self.worker.stats}")

    def finish(self) -> None:
        self.worker.stop()
        if self.thread is not None:
            self.thread.join(timeout=120)
            if self.thread.is_alive():
                raise RuntimeError("the worker did not stop")
        if self.failure:
            raise self.failure[0]

    def delivery_seconds(self, kind: str) -> float:
        value = self.registry.get_sample_value("auditlog_sink_delivery_seconds_sum", {"kind": kind})
        return float(value or 0.0)


@dataclass
class _DeliveryProfile:
    """Profiles of the delivery threads (wall clock: GIL and network waits included) and
    the CPU time the deliveries took."""

    profiles: list[cProfile.Profile] = field(default_factory=list)
    cpu_s: float = 0.0
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextlib.contextmanager
def _profiled_deliveries(enabled: bool) -> Iterator[_DeliveryProfile]:
    """With ``enabled``, every call of :func:`sinks.delivery.deliver` the worker makes (on
    its delivery threads) runs under a profiler of its thread, by wrapping the name
    :mod:`sinks.dispatch` calls (restored on exit)."""
    found = _DeliveryProfile()
    if not enabled:
        yield found
        return
    local = threading.local()
    namespace = vars(dispatch_module)
    original = namespace["deliver"]

    def profiled(*args: Any, **kwargs: Any) -> Any:
        profile = getattr(local, "profile", None)
        if profile is None:
            profile = local.profile = cProfile.Profile()
            with found.lock:
                found.profiles.append(profile)
        cpu = time.thread_time()
        profile.enable()
        try:
            return original(*args, **kwargs)
        finally:
            profile.disable()
            with found.lock:
                found.cpu_s += time.thread_time() - cpu
                found.calls += 1

    namespace["deliver"] = profiled
    try:
        yield found
    finally:
        namespace["deliver"] = original


@contextlib.contextmanager
def _worker(
    settings: AuditlogSettings, *, idle_s: float | None, profile: bool, timeline: bool
) -> Iterator[_Run]:
    health = HealthState(settings.sink_group_id)
    registry = CollectorRegistry()
    with sink_wiring.sink_worker(settings, health, exit_when_idle_s=idle_s, registry=registry) as w:
        run = _Run(w, health, registry, cProfile.Profile() if profile else None)
        run.timeline = [] if timeline else None
        try:
            yield run
        finally:
            w.stop()
            if run.thread is not None and run.thread.is_alive():
                run.thread.join(timeout=120)


def _timeline(run: _Run) -> dict[str, Any]:
    columns = ["t_s", "consumed", "delivered", "batches", "process_cpu_s"]
    return {"columns": columns, "rows": run.timeline}


def _rss_mib() -> float:
    """This process's resident size now (the worker runs in it)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def _process_cpu_s(pid: int | None) -> float | None:
    """User + system seconds of another process (None: unknown)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _minio_pid(endpoint: str) -> int | None:
    """The MinIO server listening on ``endpoint``'s port, when it runs on this machine."""
    port = endpoint.rsplit(":", 1)[-1].strip("/")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"minio") and any(port.encode() in a for a in argv):
            return int(entry.name)
    return None


def _drain_backlog(
    run: _Run,
    events: int,
    *,
    max_age_s: float,
    timeout_s: float,
    destination_pid: int | None = None,
) -> dict[str, Any]:
    """Follow ``run`` until it delivered ``events`` records; the times it took, this
    process's resident size (sampled at every poll: the peak, at each tenth of the events
    delivered, at the end) and the CPU of the destination's process (``destination_pid``,
    MinIO, when it runs here)."""
    first_record = routed = done = 0.0
    delivered_when_routed = 0
    deadline = time.monotonic() + timeout_s
    stats = run.worker.stats
    rss_start = rss_peak = _rss_mib()
    rss_at: dict[str, float] = {}
    destination_cpu = _process_cpu_s(destination_pid)
    while True:
        now = time.perf_counter()
        records, delivered = stats.records, stats.delivered_records
        rss = _rss_mib()
        rss_peak = max(rss_peak, rss)
        tenth = min(10, delivered * 10 // max(events, 1))
        if tenth and f"{tenth * 10}%" not in rss_at:
            rss_at[f"{tenth * 10}%"] = round(rss, 1)
        if not first_record and records:
            first_record = now
        if not routed and records >= events:
            routed, delivered_when_routed = now, delivered
        if delivered >= events:
            done = now
            break
        run.poll()
        if time.monotonic() > deadline:
            break
        time.sleep(POLL_S)
    run.finish()
    cpu_s = time.process_time() - run.cpu_began
    destination_after = _process_cpu_s(destination_pid)
    complete = bool(done)
    if not complete:
        print(f"not all events delivered within {timeout_s} s: {stats}", file=sys.stderr)
        done = time.perf_counter()
    routed = routed or done
    seconds = done - first_record
    routed_s = routed - first_record
    # A lane's last batch of the backlog opens at the latest when the last record is
    # routed, and closes by age max_age_s later unless it fills up: the run cannot end
    # before routed + max_age_s. What it took beyond that is delivery falling behind.
    beyond_s = max(0.0, done - (routed + max_age_s))
    result: dict[str, Any] = {
        "events": events,
        "complete": complete,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds),
        "startup_s": round(first_record - run.began, 3),
        "routed_s": round(routed_s, 3),
        "routed_per_s": round(events / routed_s) if routed_s > 0 else None,
        "delivered_when_routed": delivered_when_routed,
        "tail_s": round(done - routed, 3),
        "tail_beyond_age_s": round(beyond_s, 3),
        "events_per_s_excluding_final_age_wait": round(events / max(routed_s, seconds - max_age_s)),
        "batches": stats.batches,
        "failed_attempts": stats.failed_attempts,
        "parked": stats.parked,
        "records_consumed": stats.records,
        "delivered_records": stats.delivered_records,
        "process_cpu_s": round(cpu_s, 2),
        "process_cpu_us_per_event": round(cpu_s / events * 1e6, 1),
        "loop_thread_cpu_s": round(run.loop_cpu_s, 2),
        "loop_thread_cpu_us_per_event": round(run.loop_cpu_s / events * 1e6, 1),
        "closed_early": stats.closed_early,
        "group_holds": stats.group_holds,
        "rss_mib": {
            "at_start": round(rss_start, 1),
            "peak": round(rss_peak, 1),
            "by_delivered": rss_at,
            "end": round(_rss_mib(), 1),
        },
    }
    if destination_cpu is not None and destination_after is not None:
        result["destination_cpu_s"] = round(destination_after - destination_cpu, 2)
        result["destination_cpu_us_per_event"] = round(
            (destination_after - destination_cpu) / events * 1e6, 1
        )
    if run.timeline is not None:
        result["timeline"] = _timeline(run)
    return result


def _profile_top(
    profiles: Sequence[cProfile.Profile], events: int, path: str, rows: int = 20
) -> dict[str, Any]:
    """Save the merged profiles; their functions by own time, in us per event."""
    if not profiles:
        return {}
    stats = pstats.Stats(*profiles)
    stats.dump_stats(path)
    entries: list[tuple[float, float, int, str]] = []
    for (filename, line, name), value in stats.stats.items():  # type: ignore[attr-defined]
        _, calls, tottime, cumtime, _ = value
        where = f"{Path(filename).name}:{line}({name})" if line else name
        entries.append((tottime, cumtime, calls, where))
    entries.sort(reverse=True)
    return {
        "file": path,
        "profiled_s": round(sum(entry[0] for entry in entries), 2),
        "top_own_cpu": [
            {
                "function": where,
                "calls": calls,
                "own_us_per_event": round(tottime / events * 1e6, 2),
                "cum_us_per_event": round(cumtime / events * 1e6, 2),
            }
            for tottime, cumtime, calls, where in entries[:rows]
        ],
    }


# -- the scenarios -----------------------------------------------------------------------


def _read_discard(bootstrap: str, topic: str, events: int) -> dict[str, Any]:
    """Every record of ``topic`` read with the worker's consumer settings, then dropped."""
    config = SinkConfig(
        KafkaConnection(bootstrap), topic=topic, group_id=f"bench-discard-{uuid.uuid4()}"
    )
    consumer = Consumer(config.consumer_properties())
    read = 0
    first_record = 0.0
    began = time.perf_counter()
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 300
        while read < events and time.monotonic() < deadline:
            messages = consumer.consume(READ_BATCH, 0.2)
            if messages and not first_record:
                first_record = time.perf_counter()
            for message in messages:
                error = message.error()
                if error is None:
                    read += 1
                elif error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
        done = time.perf_counter()
    finally:
        consumer.close()
    seconds = done - first_record
    return {
        "events": read,
        "seconds": round(seconds, 3),
        "events_per_s": round(read / seconds),
        "startup_s": round(first_record - began, 3),
        "us_per_event": round(seconds / read * 1e6, 2),
    }


def _per_event_us(action: Callable[[Any], object], items: Sequence[Any]) -> float:
    began = time.perf_counter()
    for item in items:
        action(item)
    return round((time.perf_counter() - began) / len(items) * 1e6, 2)


def _decode_encode(pool: Sequence[dict[str, Any]], read_us: float) -> dict[str, Any]:
    """What the worker must do per record, measured alone in memory."""
    encoder = SingleObjectEncoder()
    values = [encoder.encode(datum) for datum in pool[:CODEC_SAMPLE]]
    decoder = Decoder()
    decode_us = _per_event_us(decoder.decode, values)
    datums = [decoder.decode(value) for value in values]
    json_us = _per_event_us(event_json, datums)
    schema = parse_schema(without_logical_types(decoder.reader.parsed))
    generated = generate_reader(schema)
    offset = parse_frame(values[0]).offset
    read_fastavro_us = _per_event_us(
        lambda value: schemaless_reader(io.BytesIO(value[offset:]), schema, None), values
    )
    read_generated_us = _per_event_us(lambda value: generated(value, offset), values)
    transcoder = EventTranscoder(decoder)
    transcode_us = _per_event_us(transcoder.to_json, values)
    lines = [transcoder.to_json(value)[0] for value in values]
    chunks = [lines[i : i + GZIP_CHUNK] for i in range(0, len(lines), GZIP_CHUNK)]
    began = time.perf_counter()
    bodies = [assemble(chunk, "ndjson", "gzip").body for chunk in chunks]
    gzip_us = (time.perf_counter() - began) / len(lines) * 1e6
    loop_us = read_us + transcode_us
    return {
        "events": len(values),
        "decode_us": decode_us,
        "event_json_us": json_us,
        "read_plain_fastavro_us": read_fastavro_us,
        "read_plain_generated_us": read_generated_us,
        "transcode_us": transcode_us,
        "gzip_ndjson_us": round(gzip_us, 2),
        "json_bytes_mean": round(sum(map(len, lines)) / len(lines)),
        "gzip_bytes_mean": round(sum(map(len, bodies)) / len(lines), 1),
        "ceiling_events_per_s": round(1e6 / loop_us),
        "ceiling": "1 / (read_discard us + transcode): one thread, no delivery",
    }


def _s3_keys() -> S3Keys:
    """The S3 server's keys, as ``run`` put them in the worker's environment."""
    return S3Keys(os.environ[S3_KEY_ENV], os.environ[S3_SECRET_ENV])


def _s3_client(endpoint: str) -> Any:
    return s3.client(endpoint, _s3_keys())


def _s3_objects(endpoint: str, bucket: str) -> Iterator[tuple[datetime, bytes]]:
    """Every object of ``bucket``: its LastModified and its NDJSON (gunzipped)."""
    client = _s3_client(endpoint)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            if item["Key"].endswith(".gz"):
                body = gzip.decompress(body)
            yield item["LastModified"], body


def _measure_backlog(
    kind: str,
    bootstrap: str,
    s3_endpoint: str,
    topic: str,
    tenants: Sequence[str],
    created: datetime,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One worker drains the backlog to one destination of ``kind`` per tenant."""
    settings = _settings(bootstrap, s3_endpoint, topic, kind)
    batch = BatchLimits() if args.max_age_s is None else BatchLimits(max_age_s=args.max_age_s)
    bucket = f"bench-sink-{uuid.uuid4().hex[:12]}"
    profile_path = f"{args.profile_worker}.{kind}" if args.profile_worker else None
    profile = profile_path is not None
    with contextlib.ExitStack() as stack:
        receiver = None
        if kind == "s3":
            s3.ensure_bucket(s3_endpoint, _s3_keys(), bucket)
            destinations = [
                _s3_destination(
                    i,
                    tenant,
                    bucket,
                    s3_endpoint,
                    created,
                    batch,
                    own_credentials=args.s3_credentials == "per-destination",
                )
                for i, tenant in enumerate(tenants)
            ]
        else:
            receiver = stack.enter_context(_receiver(measure_latency=False))
            destinations = [
                _webhook_destination(i, tenant, receiver.url, created, batch)
                for i, tenant in enumerate(tenants)
            ]
        put_s = _put(settings, destinations)
        with (
            _profiled_deliveries(profile) as delivery_profiles,
            _worker(settings, idle_s=args.idle_s, profile=profile, timeline=args.timeline) as run,
        ):
            run.start()
            result = _drain_backlog(
                run,
                args.events,
                max_age_s=batch.max_age_s,
                timeout_s=args.timeout_s,
                destination_pid=_minio_pid(s3_endpoint) if kind == "s3" else None,
            )
            # Encode + progress flush + request, per delivery, waits for the GIL included.
            deliveries_s = run.delivery_seconds(kind)
            result["deliveries_wall_s_sum"] = round(deliveries_s, 2)
            result["deliveries_wall_ms_mean"] = round(
                deliveries_s / max(result["batches"], 1) * 1000, 1
            )
        if run.profile is not None and profile_path is not None:
            result["profile"] = {
                "timer": "wall clock of each thread (waits for the GIL included)",
                "loop": _profile_top([run.profile], args.events, f"{profile_path}.loop"),
                "deliveries": _profile_top(
                    delivery_profiles.profiles, args.events, f"{profile_path}.deliveries"
                )
                | {
                    "calls": delivery_profiles.calls,
                    "cpu_s": round(delivery_profiles.cpu_s, 2),
                    "cpu_ms_per_call": round(
                        delivery_profiles.cpu_s / max(delivery_profiles.calls, 1) * 1000, 2
                    ),
                },
            }
        result["destinations"] = len(destinations)
        result["put_destinations_s"] = round(put_s, 2)
    if receiver is not None:
        assert receiver.received is not None
        received = receiver.received
        result["received"] = {
            "events": received.events,
            "requests": received.requests,
            "bytes": received.bytes,
            "bad_signatures": received.bad_signatures,
        }
        # The receiver's whole life (it idles before and after the run).
        result["destination_cpu_s"] = round(received.cpu_s, 2)
        result["destination_cpu_us_per_event"] = round(received.cpu_s / args.events * 1e6, 1)
    elif args.skip_readback:
        result["received"] = {"events": None, "objects": None, "read_back": False}
    else:
        objects = lines = 0
        for _, body in _s3_objects(s3_endpoint, bucket):
            objects += 1
            lines += body.count(b"\n")
        result["received"] = {"events": lines, "objects": objects}
    _delete_topics(bootstrap, _scenario_topics(settings))
    return result


# -- latency -----------------------------------------------------------------------------


def _live_producer(
    bootstrap: str,
    topic: str,
    tenants: int,
    rate: float,
    duration_s: float,
    go: multiprocessing.synchronize.Event,
    out: multiprocessing.Queue[Any],
) -> None:
    """(A process of its own.) Put the pool's tenants on ``out``; once ``go`` is set,
    publish at ``rate`` for ``duration_s``, every event stamped with the time it is sent;
    put the outcome on ``out``."""
    pool = _pool(LIVE_POOL, tenants, seed=5)
    producer = AuditProducer(
        ProducerConfig(KafkaConnection(bootstrap), topic=topic, client_id="bench-sink-live"),
        metrics=producer_metrics(CollectorRegistry()),
    )
    out.put(_tenants(pool))
    go.wait()
    sent, seconds = publish_at_rate(producer, pool, rate, duration_s)
    report = producer.close()
    out.put({"sent": sent, "seconds": seconds, "delivered": report.delivered})


def _quantiles(values: list[float], expected: int, target_ms: float) -> dict[str, Any]:
    """p50/p99/max of ``values``; events never received count as infinitely late (a
    quantile among them is None)."""
    missing = max(0, expected - len(values))
    ordered = sorted(values) + [math.inf] * missing
    if not ordered:
        return {"events": 0}

    def at(q: float) -> int | None:
        value = ordered[min(len(ordered) - 1, int(q * len(ordered)))]
        return None if math.isinf(value) else round(value)

    p99 = at(0.99)
    return {
        "events": len(values),
        "not_received": missing,
        "p50_ms": at(0.5),
        "p99_ms": p99,
        "max_ms": at(1.0),
        "target_ms": round(target_ms),
        "met": p99 is not None and p99 < target_ms,
    }


def _measure_latency(
    bootstrap: str, s3_endpoint: str, created: datetime, args: argparse.Namespace
) -> dict[str, Any]:
    topic = f"bench.sink.live.{uuid.uuid4().hex[:8]}"
    _create_topics(bootstrap, topics=[topic])
    settings = _settings(bootstrap, s3_endpoint, topic, "live")
    batch = BatchLimits() if args.max_age_s is None else BatchLimits(max_age_s=args.max_age_s)
    target_ms = (batch.max_age_s + 5.0) * 1000.0
    bucket = f"bench-sink-live-{uuid.uuid4().hex[:8]}"
    s3.ensure_bucket(s3_endpoint, _s3_keys(), bucket)
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    out: multiprocessing.Queue[Any] = context.Queue()
    producer = context.Process(
        target=_live_producer,
        args=(bootstrap, topic, args.tenants, args.live_rate, args.live_seconds, go, out),
        name="bench-live-producer",
        daemon=True,
    )
    producer.start()
    try:
        with _receiver(measure_latency=True) as receiver:
            tenants: list[str] = out.get(timeout=300)
            destinations = [
                d
                for i, tenant in enumerate(tenants)
                for d in (
                    _webhook_destination(i, tenant, receiver.url, created, batch),
                    _s3_destination(
                        i,
                        tenant,
                        bucket,
                        s3_endpoint,
                        created,
                        batch,
                        own_credentials=args.s3_credentials == "per-destination",
                    ),
                )
            ]
            _put(settings, destinations)
            with _worker(settings, idle_s=None, profile=False, timeline=args.timeline) as run:
                run.start()
                run.wait(run.assigned, "the assignment", timeout_s=120)
                go.set()
                run.wait(lambda: not out.empty(), "the producer", args.live_seconds + 120)
                outcome: dict[str, Any] = out.get(timeout=30)
                expected = 2 * outcome["sent"]
                stats = run.worker.stats
                complete = run.wait(
                    lambda: stats.delivered_records >= expected,
                    "the live events",
                    batch.max_age_s + 120,
                    required=False,
                )
                run.finish()
                cpu_s = time.process_time() - run.cpu_began
                worker: dict[str, Any] = {
                    "complete": complete,
                    "batches": stats.batches,
                    "delivered_records": stats.delivered_records,
                    "failed_attempts": stats.failed_attempts,
                    "parked": stats.parked,
                    "process_cpu_s": round(cpu_s, 2),
                    "loop_thread_cpu_s": round(run.loop_cpu_s, 2),
                }
                if run.timeline is not None:
                    worker["timeline"] = _timeline(run)
    finally:
        if producer.is_alive():
            producer.terminate()
        producer.join(timeout=30)
    assert receiver.received is not None
    s3_latencies: list[float] = []
    objects = 0
    for modified, body in _s3_objects(s3_endpoint, bucket):
        objects += 1
        # LastModified is truncated to the second: + 1 s makes an upper bound.
        received_ms = modified.timestamp() * 1000.0 + 1000.0
        for match in _OCCURRED_AT.finditer(body):
            at = datetime.fromisoformat(match.group(1).decode())
            s3_latencies.append(received_ms - at.timestamp() * 1000.0)
    _delete_topics(bootstrap, [topic, *_scenario_topics(settings)])
    return {
        "target_rate": args.live_rate,
        "achieved_rate": round(outcome["sent"] / outcome["seconds"]),
        "sent": outcome["sent"],
        "seconds": round(outcome["seconds"], 1),
        "tenants": len(tenants),
        "destinations": len(destinations),
        "batch": batch.model_dump(),
        "webhook": _quantiles(receiver.received.latencies_ms, outcome["sent"], target_ms)
        | {"requests": receiver.received.requests},
        "s3": _quantiles(s3_latencies, outcome["sent"], target_ms)
        | {"objects": objects, "resolution": "LastModified (whole s) + 1 s: an upper bound"},
        "worker": worker,
        "measure": "arrival at the destination - occurred_at (stamped at send)",
    }


# -- the run -----------------------------------------------------------------------------


def run(
    bootstrap: str, s3_endpoint: str, s3_keys: S3Keys, args: argparse.Namespace
) -> dict[str, Any]:
    os.environ[WEBHOOK_SECRET_ENV] = WEBHOOK_SECRET
    os.environ[S3_KEY_ENV] = s3_keys.access_key
    os.environ[S3_SECRET_ENV] = s3_keys.secret_key
    # Destinations that existed before any event was published (newer ones skip older
    # events).
    created = datetime.now(UTC) - timedelta(minutes=1)
    topic = f"bench.sink.{uuid.uuid4().hex[:8]}"
    _create_topics(bootstrap, topics=[topic])
    began = time.perf_counter()
    pool = _pool(min(args.events, POOL), args.tenants, seed=11)
    tenants = _tenants(pool)
    defaults = BatchLimits()
    sink_defaults = SinkConfig(KafkaConnection(bootstrap))
    result: dict[str, Any] = {
        "events": args.events,
        "tenants": len(tenants),
        "topic_partitions": PARTITIONS,
        "settings": {
            "batch": (
                defaults if args.max_age_s is None else BatchLimits(max_age_s=args.max_age_s)
            ).model_dump(),
            "batch_is_default": args.max_age_s is None,
            "format": "ndjson",
            "compression": "gzip",
            "delivery_threads": sink_defaults.delivery_threads,
            "checkpoint_interval_s": sink_defaults.checkpoint_interval_s,
            "exit_when_idle_s": args.idle_s,
            "s3": "MinIO server (a process of its own)",
            "s3_credentials": args.s3_credentials,
            "webhook_receiver": "ThreadingHTTPServer, a process of its own, HTTP/1.1",
        },
        "pool_s": round(time.perf_counter() - began, 1),
    }
    result["backlog"] = publish_backlog(
        bootstrap,
        topic,
        _fresh_ids(pool, args.events),
        events=args.events,
        client_id="bench-sink-backlog",
        path=f"a pool of {len(pool)} validated events, publish_datum, fresh event ids",
    )
    result["read_discard"] = _read_discard(bootstrap, topic, args.events)
    result["decode_encode"] = _decode_encode(pool, result["read_discard"]["us_per_event"])
    ceiling = result["decode_encode"]["ceiling_events_per_s"]
    for kind in args.kinds:
        measured = _measure_backlog(kind, bootstrap, s3_endpoint, topic, tenants, created, args)
        rate = measured["events_per_s"]
        measured["ratios"] = {
            "over_read_discard": round(rate / result["read_discard"]["events_per_s"], 3),
            "over_decode_encode_ceiling": round(rate / ceiling, 3),
            "routed_over_decode_encode_ceiling": round(
                (measured["routed_per_s"] or 0) / ceiling, 3
            ),
        }
        result[kind] = measured
    if "s3" in result:
        result["throughput_target"] = {
            "events_per_s": TARGET_EVENTS_PER_S,
            "met": result["s3"]["events_per_s"] >= TARGET_EVENTS_PER_S,
            "met_excluding_final_age_wait": (
                result["s3"]["events_per_s_excluding_final_age_wait"] >= TARGET_EVENTS_PER_S
            ),
            "routing_rate_met": (result["s3"]["routed_per_s"] or 0) >= TARGET_EVENTS_PER_S,
        }
    if args.live_seconds > 0:
        result["latency"] = _measure_latency(bootstrap, s3_endpoint, created, args)
    _delete_topics(bootstrap, [topic])
    return result


def _kinds(value: str) -> list[str]:
    kinds = [kind.strip() for kind in value.split(",") if kind.strip()]
    unknown = set(kinds) - {"s3", "webhook"}
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown destination kinds: {sorted(unknown)}")
    return kinds


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=300_000, help="backlog size")
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument(
        "--kinds", type=_kinds, default=["s3", "webhook"], help="backlog runs: s3,webhook"
    )
    parser.add_argument(
        "--max-age-s",
        type=float,
        default=None,
        help="override the destinations' batch max_age_s (default: BatchLimits' default)",
    )
    parser.add_argument(
        "--s3-credentials",
        choices=("shared", "per-destination"),
        default="shared",
        help="S3 keys: the same references for every destination, or references of its own",
    )
    parser.add_argument("--idle-s", type=float, default=10.0, help="worker exit_when_idle_s")
    parser.add_argument(
        "--skip-readback",
        action="store_true",
        help="do not read the S3 objects back to count their events (a soak of millions)",
    )
    parser.add_argument("--timeout-s", type=float, default=300.0, help="per backlog run")
    parser.add_argument("--live-rate", type=float, default=2_000.0)
    parser.add_argument("--live-seconds", type=float, default=60.0, help="0: no latency run")
    parser.add_argument("--bootstrap", help="an existing broker (default: start one)")
    parser.add_argument(
        "--s3-endpoint",
        help="an existing S3 endpoint, its keys in the variables `auditlog stack up` exports "
        "(default: start MinIO)",
    )
    parser.add_argument(
        "--profile-worker",
        metavar="FILE",
        help="profile the backlog runs' worker loop and deliveries (FILE.s3.loop, ...)",
    )
    parser.add_argument(
        "--timeline", action="store_true", help="sample the backlog runs once a second"
    )
    args = parser.parse_args(argv)
    # A SIGTERM unwinds like Ctrl-C, so the broker and the S3 server are stopped.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    began = time.perf_counter()
    load_before = os.getloadavg()
    with (
        private_kafka(args.bootstrap) as bootstrap,
        private_s3(args.s3_endpoint) as (endpoint, keys),
    ):
        result = run(bootstrap, endpoint, keys, args)
    result["total_s"] = round(time.perf_counter() - began, 1)
    # Others' processes on the machine skew every number: the load before and after.
    result["machine"] = machine() | {
        "loadavg_1m_before": round(load_before[0], 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
