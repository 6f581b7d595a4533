"""The fault tests' rig: the whole product running against the three-node Kafka cluster, and
a wave of events published through it while a test does something nasty.

:class:`Rig` holds, for one test module: topics on the cluster at replication factor 3 with
``min.insync.replicas=2``; a ClickHouse gateway and a MinIO server of its own (so a test may
stop them without touching the session stack's), each behind a
:class:`~tests.withholding_proxy.WithholdingProxy` that a test arms to hold the answer to the
next insert or upload; ``auditlog consume`` and ``auditlog sink`` as real processes; a
webhook receiver on a thread. Three tenants: ``busy`` (most of the events; an S3 and a
webhook destination), ``quiet`` (a webhook destination) and ``other`` (no destination).

:func:`run_wave` publishes events at a steady rate through the producer SDK on a thread,
runs the fault on the test's thread meanwhile, then awaits every acknowledged event in
ClickHouse and at each destination and checks: nothing lost, no duplicate row
(``count()`` against ``uniqExact(event_id)``, merges stopped), no event in two S3 objects,
an event twice at the webhook only under one idempotency key. A :class:`Monitor` samples
what each sink has delivered and reports the longest stall after the fault began: measured
and printed (and appended to ``$AUDITLOG_CHAOS_REPORT`` when set), never asserted.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import clickhouse_connect
from confluent_kafka.admin import AdminClient, NewTopic

from auditlog import wiring
from auditlog.settings import AuditlogSettings
from consumers.migrations import apply_pending
from deploy.stack import clickhouse as gateway
from deploy.stack import minio_binary, processes, s3, s3_admin
from deploy.stack.endpoints import S3Keys, StackEndpoints
from deploy.stack.kafka_cluster import KafkaCluster
from producers.producer import AuditProducer
from tests.cli_process import REPO
from tests.events import valid_event
from tests.stack.sink_support import (
    Receiver,
    put_destinations,
    s3_destination,
    s3_objects,
    secret_environment,
    webhook_destination,
    webhook_receiver,
)
from tests.stack.stored_rows import StoredRows, stop_background_merges, stored_rows
from tests.waiting import wait_until
from tests.withholding_proxy import Request, WithholdingProxy

PARTITIONS = 6
WAIT_S = 240.0  # a bound on hangs only; the machine is shared and loaded
BUCKET = "chaos"


def chaos_scale() -> bool:
    """True for the long versions (``make chaos``: ``AUDITLOG_CHAOS=long``)."""
    return os.environ.get("AUDITLOG_CHAOS", "") == "long"


class Trap:
    """A proxy's matcher that matches nothing until armed with a predicate."""

    def __init__(self) -> None:
        self.predicate: Callable[[Request], bool] | None = None

    def __call__(self, request: Request) -> bool:
        predicate = self.predicate
        return predicate is not None and predicate(request)


def batch_insert(request: Request) -> bool:
    """The writer's inserts of event batches: the only requests with a dedup token."""
    return "insert_deduplication_token=" in request.target


def object_upload(request: Request) -> bool:
    """A sink's upload of a batch object (not a listing, not a bucket check)."""
    return request.method == "PUT" and request.target.count("/") >= 2


@dataclass
class Held:
    """A proxy that stays in front of a server; :meth:`hold` arms it for one answer."""

    proxy: WithholdingProxy
    trap: Trap

    @contextlib.contextmanager
    def hold(self, predicate: Callable[[Request], bool]) -> Iterator[WithholdingProxy]:
        """Hold the answer to the next request ``predicate`` selects (after the upstream
        handled it) until the block ends."""
        self.proxy.rearm(0)
        self.trap.predicate = predicate
        try:
            yield self.proxy
        finally:
            self.trap.predicate = None
            self.proxy.release()


@dataclass
class Server:
    """A stoppable server of the rig: ClickHouse gateway or MinIO in its own directory."""

    name: str
    start: Callable[[], object]
    stop: Callable[[], object]


@dataclass
class Rig:
    cluster: KafkaCluster
    settings: AuditlogSettings
    database: str
    clickhouse_url: str  # the gateway itself (the writer goes through ``clickhouse``)
    clickhouse: Held
    s3_endpoint: str
    s3_keys: S3Keys
    s3: Held
    gateway_server: Server
    s3_server: Server
    receiver: Receiver
    tenants: dict[str, str]  # role -> tenant id
    webhook_paths: dict[str, str]  # role -> path of its webhook destination
    published: set[str] = field(default_factory=set)
    by_tenant: dict[str, set[str]] = field(default_factory=dict)
    sent: int = 0  # events handed to the producer so far (acknowledged or not yet)
    target: int = 0  # rows ClickHouse holds once the current wave is through
    writer: subprocess.Popen[bytes] | None = None
    sink: subprocess.Popen[bytes] | None = None

    @property
    def table(self) -> str:
        return f"{self.database}.events"

    def client(self) -> Any:
        return clickhouse_connect.get_client(dsn=self.clickhouse_url)

    def stored(self) -> StoredRows:
        return stored_rows(self.client(), self.table)

    def stored_ids(self) -> set[str]:
        rows = self.client().query(f"SELECT toString(event_id) FROM {self.table}").result_rows
        return {str(row[0]) for row in rows}

    def count(self) -> int:
        try:
            return int(self.client().command(f"SELECT count() FROM {self.table}"))
        except Exception:  # noqa: BLE001 - the gateway may be down on purpose
            return -1

    def s3_ids(self) -> list[str]:
        stack = StackEndpoints("-", "-", self.s3_endpoint, self.s3_keys)
        found = s3_objects(stack, BUCKET)
        return [event["event_id"] for events in found.values() for event in events]

    def s3_object_count(self) -> int:
        try:
            listed = s3.client(self.s3_endpoint, self.s3_keys).list_objects_v2(Bucket=BUCKET)
        except Exception:  # noqa: BLE001 - the server may be down on purpose
            return -1
        return int(listed.get("KeyCount", 0))

    def busy_partition(self) -> int:
        """The partition of the busiest tenant's events (the producer keys by tenant)."""
        with AuditProducer(
            wiring.producer_config(self.settings, client_id="chaos-probe"),
            validator=wiring.validator(self.settings),
        ) as producer:
            result = producer.publish_future(_event(self.tenants["busy"], 0)).result(timeout=60)
        assert result.partition is not None
        self._record(self.tenants["busy"], result.event_id)
        return result.partition

    def leader_of(self, partition: int) -> int:
        state = self.cluster.partitions(self.settings.events_topic).get(partition)
        assert state is not None, f"partition {partition} has no metadata"
        assert state.leader in self.cluster.nodes, state
        return state.leader

    def _record(self, tenant: str, event_id: str) -> None:
        self.published.add(event_id)
        self.by_tenant.setdefault(tenant, set()).add(event_id)

    def expect_alive(self) -> None:
        for name, process in (("writer", self.writer), ("sink", self.sink)):
            assert process is not None
            assert process.poll() is None, f"the {name} exited"


def _event(tenant: str, n: int) -> dict[str, Any]:
    return valid_event(
        tenant_id=tenant,
        occurred_at=(datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
        details={"n": str(n)},
    )


def _create_topics(cluster: KafkaCluster, settings: AuditlogSettings) -> None:
    rf, isr = cluster.replication_factor, {"min.insync.replicas": str(cluster.min_insync_replicas)}
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    topics = [
        NewTopic(settings.events_topic, PARTITIONS, rf, config=isr),
        NewTopic(settings.dead_letter_topic, 1, rf, config=isr),
        *(
            NewTopic(name, 1, rf, config={**isr, "cleanup.policy": "compact"})
            for name in (settings.destinations_topic, settings.sink_progress_topic)
        ),
    ]
    for future in admin.create_topics(topics).values():
        future.result(timeout=60)
    await_isr(cluster, [topic.topic for topic in topics])


def await_isr(cluster: KafkaCluster, topics: list[str]) -> None:
    """Until every partition of ``topics`` has all nodes in sync."""
    for topic in topics:
        wait_until(partial(cluster.fully_replicated, topic), WAIT_S, f"{topic} at full ISR")


@contextlib.contextmanager
def rig(cluster: KafkaCluster, work_dir: Path, cache_dir: Path) -> Iterator[Rig]:
    """The rig of the module docstring; every process and thread it started is stopped when
    the block ends, however it ends."""
    suffix = uuid.uuid4().hex[:8]
    with contextlib.ExitStack() as cleanup:
        gateway_port = processes.choose_port(0)
        s3_port = processes.choose_port(0, taken=[gateway_port])
        gateway_dir, s3_dir = work_dir / "clickhouse", work_dir / "s3"

        def start_gateway() -> None:
            gateway.start_clickhouse(data_dir=gateway_dir, port=gateway_port)

        cleanup.callback(gateway.stop_clickhouse, gateway_dir)
        start_gateway()
        clickhouse_url = f"http://127.0.0.1:{gateway_port}"

        minio = minio_binary.ensure_minio(cache_dir)
        root, user = s3.stack_keys(s3_dir)

        def start_minio() -> None:
            s3.start_s3(data_dir=s3_dir, binary=minio, port=s3_port, root=root)

        cleanup.callback(s3.stop_s3, s3_dir)
        start_minio()
        s3_endpoint = f"http://127.0.0.1:{s3_port}"
        s3_admin.ensure_user(s3_endpoint, root, user)
        s3.ensure_bucket(s3_endpoint, user, BUCKET)

        clickhouse_trap, s3_trap = Trap(), Trap()
        clickhouse_proxy = cleanup.enter_context(
            WithholdingProxy(clickhouse_url, clickhouse_trap, let_through=0)
        )
        s3_proxy = cleanup.enter_context(WithholdingProxy(s3_endpoint, s3_trap, let_through=0))

        settings = AuditlogSettings(
            kafka_bootstrap=cluster.bootstrap,
            clickhouse_url=clickhouse_proxy.url,
            clickhouse_database=f"chaos_{suffix}",
            events_topic=f"chaos.{suffix}",
            dead_letter_topic=f"chaos.{suffix}.dlq",
            destinations_topic=f"chaos.{suffix}.destinations",
            sink_progress_topic=f"chaos.{suffix}.progress",
            sink_group_id=f"chaos-sink-{suffix}",
            writer_group_id=f"chaos-writer-{suffix}",
            sink_allow_local=True,
            sink_retry_max_s=1.0,
            sink_park_after_s=5.0,
            sink_request_timeout_s=10.0,
            metrics_port=0,
        )
        _create_topics(cluster, settings)
        client = clickhouse_connect.get_client(dsn=clickhouse_url)
        apply_pending(client, database=settings.clickhouse_database)
        stop_background_merges(client, f"{settings.clickhouse_database}.events")

        receiver = Receiver()
        cleanup.enter_context(webhook_receiver(receiver))
        tenants = {role: f"{role}-{suffix}" for role in ("busy", "quiet", "other")}
        hooks = {role: f"/{role}" for role in ("busy", "quiet")}
        put_destinations(
            settings,
            s3_destination(tenants["busy"], BUCKET, s3_proxy.url),
            *(
                webhook_destination(tenants[role], receiver.url + path)
                for role, path in hooks.items()
            ),
        )
        the_rig = Rig(
            cluster=cluster,
            settings=settings,
            database=settings.clickhouse_database,
            clickhouse_url=clickhouse_url,
            clickhouse=Held(clickhouse_proxy, clickhouse_trap),
            s3_endpoint=s3_endpoint,
            s3_keys=user,
            s3=Held(s3_proxy, s3_trap),
            gateway_server=Server(
                "clickhouse", start_gateway, lambda: gateway.stop_clickhouse(gateway_dir)
            ),
            s3_server=Server("s3", start_minio, lambda: s3.stop_s3(s3_dir)),
            receiver=receiver,
            tenants=tenants,
            webhook_paths=hooks,
        )
        env = _environment(settings, user, work_dir)
        the_rig.writer = cleanup.enter_context(_process(["consume"], env, work_dir / "writer.log"))
        the_rig.sink = cleanup.enter_context(_process(["sink"], env, work_dir / "sink.log"))
        yield the_rig


def _environment(settings: AuditlogSettings, keys: S3Keys, work_dir: Path) -> dict[str, str]:
    names = (
        "kafka_bootstrap",
        "clickhouse_url",
        "clickhouse_database",
        "events_topic",
        "dead_letter_topic",
        "destinations_topic",
        "sink_progress_topic",
        "sink_group_id",
        "writer_group_id",
        "sink_allow_local",
        "sink_retry_max_s",
        "sink_park_after_s",
        "sink_request_timeout_s",
        "metrics_port",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITLOG_")}
    env.update({f"AUDITLOG_{name.upper()}": str(getattr(settings, name)) for name in names})
    env.update(
        {
            "AUDITLOG_WRITER_BATCH_MAX_RECORDS": "500",
            "AUDITLOG_WRITER_FLUSH_INTERVAL_S": "0.3",
            "AUDITLOG_STACK_DIR": str(work_dir / "no-stack"),
            **secret_environment(),
            "AUDITLOG_DEST_SECRET_SINK_TEST_S3_KEY": keys.access_key,
            "AUDITLOG_DEST_SECRET_SINK_TEST_S3_SECRET": keys.secret_key,
        }
    )
    return env


@contextlib.contextmanager
def _process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``auditlog *argv`` as a process of the test (output in ``log``); SIGTERM at the end of
    the block, SIGKILL if it does not exit."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "auditlog.cli", *argv],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


# -- a wave of events under a fault ------------------------------------------------------


@dataclass
class Monitor:
    """Samples what each sink has delivered (ClickHouse rows, webhook events, S3 objects)
    on a thread; :meth:`stall_after` is the longest time without progress from a moment on,
    while something was still to deliver."""

    rig: Rig
    samples: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _probes(self) -> dict[str, Callable[[], int]]:
        return {
            "clickhouse": self.rig.count,
            "webhook": lambda: len(self.rig.receiver.ids()),
            "s3": self.rig.s3_object_count,
        }

    def __enter__(self) -> Monitor:
        probes = self._probes()
        self.samples = {name: [] for name in probes}

        def run() -> None:
            while not self._stop.is_set():
                for name, probe in probes.items():
                    self.samples[name].append((time.monotonic(), probe()))
                self._stop.wait(0.25)

        self._thread = threading.Thread(target=run, name="chaos-monitor", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def stall_after(self, start: float, end: float) -> dict[str, float]:
        """Per sink: the longest interval in [start, end] during which its count did not
        grow (an unreachable sink counts as not growing)."""
        stalls = {}
        for name, series in self.samples.items():
            last_change, best, previous = start, 0.0, None
            for at, value in series:
                if at < start:
                    previous = value
                    continue
                if at > end:
                    break
                if previous is not None and value > previous >= 0:
                    best = max(best, at - last_change)
                    last_change = at
                if value >= 0:
                    previous = value if previous is None or value > previous else previous
            stalls[name] = round(best, 1)
        return stalls


@dataclass
class WaveResult:
    fault: str
    events: int
    stalls_s: dict[str, float]
    wall_s: float


def run_wave(
    rig: Rig, *, name: str, events: int, rate: float, fault: Callable[[], None]
) -> WaveResult:
    """Publish ``events`` at about ``rate`` per second on a thread while ``fault`` runs on
    this one; await everything everywhere; check (module docstring); report the stalls."""
    started = time.monotonic()
    rig.target = len(rig.published) + events
    roles = ["busy"] * 6 + ["quiet"] * 2 + ["other"] * 2
    failures: list[BaseException] = []
    done = threading.Event()

    def publish() -> None:
        try:
            with AuditProducer(
                wiring.producer_config(rig.settings, client_id=f"chaos-{name}"),
                validator=wiring.validator(rig.settings),
            ) as producer:
                pending = []
                begin = time.monotonic()
                for n in range(events):
                    tenant = rig.tenants[roles[n % len(roles)]]
                    pending.append((tenant, producer.publish_future(_event(tenant, n))))
                    rig.sent += 1
                    ahead = begin + (n + 1) / rate - time.monotonic()
                    if ahead > 0:
                        done.wait(ahead)  # pacing the load, not synchronising
                producer.flush(WAIT_S)
                for tenant, future in pending:
                    rig._record(tenant, future.result(timeout=WAIT_S).event_id)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the test's thread
            failures.append(exc)

    with Monitor(rig) as monitor:
        publisher = threading.Thread(target=publish, name="chaos-publisher")
        publisher.start()
        fault_began = time.monotonic()
        try:
            fault()
        finally:
            publisher.join(WAIT_S + 60)
        assert not publisher.is_alive(), "the publisher did not finish"
        assert not failures, f"publishing failed: {failures[0]!r}"
        rig.expect_alive()
        await_delivered(rig)
        caught_up = time.monotonic()
    check_exactly_once(rig)
    result = WaveResult(
        fault=name,
        events=events,
        stalls_s=monitor.stall_after(fault_began, caught_up),
        wall_s=round(time.monotonic() - started, 1),
    )
    report(result)
    return result


def await_delivered(rig: Rig) -> None:
    """Until ClickHouse holds every published event and each destination its tenant's."""
    wait_until(lambda: rig.count() >= len(rig.published), WAIT_S, "every event in ClickHouse")
    for role, path in rig.webhook_paths.items():
        rig.receiver.wait_for_ids(rig.by_tenant.get(rig.tenants[role], set()), path, WAIT_S)
    busy = rig.by_tenant.get(rig.tenants["busy"], set())
    wait_until(lambda: busy <= set(rig.s3_ids()), WAIT_S, "the busy tenant's events in S3")


def check_exactly_once(rig: Rig) -> None:
    """Nothing lost, nothing stored twice (see the module docstring)."""
    stored = rig.stored()
    assert stored.rows == stored.events, f"duplicate rows in ClickHouse: {stored}"
    assert rig.stored_ids() == rig.published, "ClickHouse holds exactly the published events"
    s3_ids = rig.s3_ids()
    assert len(s3_ids) == len(set(s3_ids)), "an event in two S3 objects"
    assert set(s3_ids) == rig.by_tenant[rig.tenants["busy"]], "S3 holds the busy tenant's"
    with rig.receiver.lock:
        requests = list(rig.receiver.requests)
    for role, path in rig.webhook_paths.items():
        by_key: dict[str, list[str]] = {}
        for request in (r for r in requests if r.path == path):
            first = by_key.setdefault(request.idempotency_key, request.event_ids)
            assert first == request.event_ids, "a repeated key carries the same events"
        once = [i for ids in by_key.values() for i in ids]
        assert len(once) == len(set(once)), f"{role}: an event under two idempotency keys"
        assert set(once) == rig.by_tenant.get(rig.tenants[role], set()), f"{role}: all, only"


def report(result: WaveResult) -> None:
    """Print the stall times (and append them to ``$AUDITLOG_CHAOS_REPORT`` when set)."""
    line = json.dumps(
        {
            "fault": result.fault,
            "scale": "long" if chaos_scale() else "short",
            "events": result.events,
            "stall_s": result.stalls_s,
            "wall_s": result.wall_s,
        }
    )
    print(f"chaos: {line}", flush=True)
    target = os.environ.get("AUDITLOG_CHAOS_REPORT")
    if target:
        with Path(target).open("a") as out:
            out.write(line + "\n")


# -- what the faults wait for ------------------------------------------------------------


def rows_grow(rig: Rig, by: int) -> None:
    """Until ClickHouse holds ``by`` more rows than now (or the whole wave, if that is
    fewer): the pipeline moves."""
    wanted = min(max(rig.count(), 0) + by, rig.target)
    wait_until(lambda: rig.count() >= wanted, WAIT_S, f"{wanted} rows in ClickHouse")


def out_of_isr(rig: Rig, node: int, partition: int | None = None) -> None:
    """Until ``node`` is in no ISR of the events topic (or of ``partition``)."""

    def gone() -> bool:
        found = rig.cluster.partitions(rig.settings.events_topic)
        chosen = [s for p, s in found.items() if partition in (None, p)]
        return bool(chosen) and all(node not in s.isr for s in chosen)

    wait_until(gone, WAIT_S, f"node {node} out of the ISR")


def restart_and_resync(rig: Rig, node: int) -> None:
    """Start ``node`` again and wait until every topic of the rig is at ISR 3 again."""
    rig.cluster.start(node)
    names = ("events_topic", "sink_progress_topic", "destinations_topic", "dead_letter_topic")
    await_isr(rig.cluster, [getattr(rig.settings, name) for name in names])


def outage(rig: Rig, seconds: float) -> None:
    """Keep a server down for ``seconds`` and until events arrived during it (the outage is
    the fault's length, measured from now; the events show it was under load)."""
    end, sent = time.monotonic() + seconds, rig.sent
    wait_until(
        lambda: time.monotonic() >= end and rig.sent > sent,
        seconds + WAIT_S,
        f"a {seconds:g} s outage under load",
        poll_s=0.2,
    )
