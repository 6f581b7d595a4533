"""Faults against the product on a three-node Kafka cluster (see :mod:`chaos_support`): a
broker killed mid-stream, a rolling restart, the busiest tenant's partition leader killed
while a writer insert and while a sink upload are in flight, the ClickHouse gateway and the
S3 server stopped under load. Each: nothing lost in ClickHouse or at a destination, no
duplicate row, repeats at the webhook only under one idempotency key; the stall is measured
and printed, not asserted.

`make test` runs the short versions (few events, outages of seconds); `make chaos`
(``AUDITLOG_CHAOS=long``) the long ones (more events, outages of a minute)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import pytest

from auditlog.settings import AuditlogSettings
from deploy.stack.kafka_cluster import KafkaCluster
from tests.stack.cluster import chaos_support as chaos
from tests.stack.cluster.chaos_support import Rig

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.chaos]

LONG = chaos.chaos_scale()
EVENTS = 12_000 if LONG else 1_500
RATE = 150.0 if LONG else 300.0  # events per second, while the fault runs
OUTAGE_S = 60.0 if LONG else 3.0
MID_STREAM_ROWS = 2_000 if LONG else 200


@pytest.fixture(scope="module")
def rig(
    kafka_cluster_session: KafkaCluster,
    settings: AuditlogSettings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Rig]:
    with chaos.rig(
        kafka_cluster_session, tmp_path_factory.mktemp("chaos"), settings.cache_dir.resolve()
    ) as created:
        yield created


@pytest.fixture
def ready_rig(rig: Rig, kafka_cluster: KafkaCluster) -> Rig:
    """The rig with every node up (``kafka_cluster`` restarts what a failed test left down)."""
    rig.expect_alive()
    return rig


def test_a_broker_killed_mid_stream_and_brought_back(ready_rig: Rig) -> None:
    rig = ready_rig

    def fault() -> None:
        chaos.rows_grow(rig, MID_STREAM_ROWS)
        victim = rig.leader_of(0)
        rig.cluster.stop(victim, signal.SIGKILL)
        chaos.out_of_isr(rig, victim)
        chaos.rows_grow(rig, MID_STREAM_ROWS)  # the pipeline goes on with two nodes
        chaos.restart_and_resync(rig, victim)

    chaos.run_wave(rig, name="sigkill-one-broker", events=EVENTS, rate=RATE, fault=fault)


def test_a_rolling_restart_of_all_three(ready_rig: Rig) -> None:
    rig = ready_rig

    def fault() -> None:
        for node in rig.cluster.nodes:
            chaos.rows_grow(rig, MID_STREAM_ROWS // 2)
            rig.cluster.stop(node, signal.SIGTERM)
            chaos.out_of_isr(rig, node)
            chaos.restart_and_resync(rig, node)

    chaos.run_wave(rig, name="rolling-restart", events=EVENTS, rate=RATE, fault=fault)


# The short versions hold an insert and an upload at once, and stop both servers at once:
# each fault still happens in `make test`, in half the time; `make chaos` runs them apart.
HELD = [("insert",), ("upload",)] if LONG else [("insert", "upload")]
STOPPED = [("clickhouse",), ("s3",)] if LONG else [("clickhouse", "s3")]


@pytest.mark.parametrize("held", HELD, ids="+".join)
def test_the_busy_leader_killed_during_a_writer_insert_or_a_sink_upload(
    ready_rig: Rig, held: tuple[str, ...]
) -> None:
    """The answer to a writer insert (the rows landed) and/or to a sink's S3 upload (the
    object is written) is held; the partition leader of the busiest tenant is killed; then
    the answers are given."""
    rig = ready_rig
    partition = rig.busy_partition()
    holds = {
        "insert": (rig.clickhouse, chaos.batch_insert, rig.writer),
        "upload": (rig.s3, chaos.object_upload, rig.sink),
    }

    def fault() -> None:
        chaos.rows_grow(rig, MID_STREAM_ROWS)
        with contextlib.ExitStack() as holding:
            for name in held:
                proxy, request, client = holds[name]
                holding.enter_context(proxy.hold(request)).wait_withheld(client, chaos.WAIT_S)
            victim = rig.leader_of(partition)
            rig.cluster.stop(victim, signal.SIGKILL)
            chaos.out_of_isr(rig, victim, partition)
        chaos.rows_grow(rig, MID_STREAM_ROWS)
        chaos.restart_and_resync(rig, victim)

    name = "leader-killed-during-" + "+".join(held)
    chaos.run_wave(rig, name=name, events=EVENTS, rate=RATE, fault=fault)


@pytest.mark.parametrize("servers", STOPPED, ids="+".join)
def test_a_server_stopped_under_load(ready_rig: Rig, servers: tuple[str, ...]) -> None:
    rig = ready_rig
    known = {"clickhouse": rig.gateway_server, "s3": rig.s3_server}
    stopped = [known[name] for name in servers]

    def fault() -> None:
        chaos.rows_grow(rig, MID_STREAM_ROWS)
        try:
            for server in stopped:
                server.stop()
            chaos.outage(rig, OUTAGE_S)
        finally:
            for server in stopped:
                server.start()

    chaos.run_wave(rig, name="+".join(servers) + "-stopped", events=EVENTS, rate=RATE, fault=fault)
