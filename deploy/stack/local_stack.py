"""``auditlog stack up | status | down``: the three local services as one unit (Kafka as
one broker, or as a cluster of N KRaft nodes with ``up(..., brokers=N)``).

``up`` is idempotent: services already running are kept (never a second broker), missing
ones are started, and a start that fails half way stops what this call started before
raising. The MinIO binary is built (first use only) before anything starts, so a missing Go
toolchain stops ``up`` with nothing started. The chosen ports are kept in ``state.json`` so
a restart reuses them when free (the S3 keys are not in it: ``s3/keys.json``, mode 0600).
Concurrent ``up``/``down`` calls on one stack directory are serialised by a file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import signal
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from deploy.stack import clickhouse, kafka, kafka_jars, minio_binary, processes, s3, s3_admin
from deploy.stack.endpoints import S3Keys, StackEndpoints
from deploy.stack.errors import StackError
from deploy.stack.kafka_cluster import KafkaCluster
from deploy.stack.layout import PreferredPorts, StackLayout

DEFAULT_BUCKET = "auditlog-dev"
# Object Lock on (COMPLIANCE, this many days for every object version): for checkpoints.
CHECKPOINT_BUCKET = "auditlog-checkpoints"
CHECKPOINT_LOCK_DAYS = 1


@dataclass(frozen=True)
class ComponentStatus:
    """One service as ``status`` reports it."""

    name: str
    pid: int | None
    endpoint: str
    answering: bool


@contextlib.contextmanager
def _locked(layout: StackLayout) -> Iterator[None]:
    layout.root.mkdir(parents=True, exist_ok=True)
    with layout.lock_file.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(frozen=True)
class _State:
    """What ``state.json`` keeps: the ports, and for a cluster (``brokers`` > 1) every
    node's ports (node 1's are ``ports.kafka`` and ``ports.kafka_controller``)."""

    ports: PreferredPorts
    kafka_nodes: tuple[kafka.KafkaPorts, ...]

    @property
    def brokers(self) -> int:
        return len(self.kafka_nodes)


def _read_state(layout: StackLayout) -> _State | None:
    try:
        raw = json.loads(layout.state_file.read_text())
        ports = PreferredPorts(**raw["ports"])
        nodes = tuple(kafka.KafkaPorts(int(b), int(c)) for b, c in raw.get("kafka_nodes", []))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    return _State(ports, nodes or (kafka.KafkaPorts(ports.kafka, ports.kafka_controller),))


def _write_state(layout: StackLayout, state: _State) -> None:
    layout.state_file.write_text(
        json.dumps(
            {
                "ports": asdict(state.ports),
                "kafka_nodes": [[p.broker, p.controller] for p in state.kafka_nodes],
                "endpoints": _addresses(state),
            },
            indent=2,
        )
    )


def _kafka_names(brokers: int) -> list[str]:
    """How ``status`` names the Kafka node(s): ``kafka``, or ``kafka-1`` .. ``kafka-N``."""
    return ["kafka"] if brokers == 1 else [f"kafka-{n}" for n in range(1, brokers + 1)]


def _addresses(state: _State) -> dict[str, str]:
    """Where each service answers, by name (each Kafka node by its own)."""
    names = _kafka_names(state.brokers)
    return {
        **{name: ports.bootstrap for name, ports in zip(names, state.kafka_nodes, strict=True)},
        "clickhouse": f"http://127.0.0.1:{state.ports.clickhouse}",
        "s3": f"http://127.0.0.1:{state.ports.s3}",
    }


def _endpoints(state: _State, root: S3Keys, user: S3Keys) -> StackEndpoints:
    addresses = _addresses(state)
    clustered = state.brokers > 1
    return StackEndpoints(
        kafka_bootstrap=",".join(p.bootstrap for p in state.kafka_nodes),
        clickhouse_url=addresses["clickhouse"],
        s3_endpoint=addresses["s3"],
        s3_keys=user,
        s3_admin=root,
        topic_replication_factor=state.brokers if clustered else None,
        topic_min_insync_replicas=(
            kafka.cluster_min_insync_replicas(state.brokers) if clustered else None
        ),
    )


def kafka_cluster(
    layout: StackLayout, brokers: int, nodes: tuple[kafka.KafkaPorts, ...] = ()
) -> KafkaCluster:
    """The stack's Kafka cluster (``brokers`` > 1) with ``nodes``' ports, or those of the
    state file."""
    if not nodes:
        state = _read_state(layout)
        if state is None or state.brokers != brokers:
            raise StackError(f"the stack in {layout.root} has no {brokers}-node Kafka cluster")
        nodes = state.kafka_nodes
    return KafkaCluster(root=layout.root, cache_dir=layout.cache_dir, ports=nodes)


def prepare_s3(endpoints: StackEndpoints) -> None:
    """The development user (with ``endpoints.s3_keys``, read and write on every bucket,
    when the administrator's keys are known) and the stack's buckets: ``DEFAULT_BUCKET``
    and ``CHECKPOINT_BUCKET`` with Object Lock. Idempotent."""
    if endpoints.s3_admin is not None:
        s3_admin.ensure_user(endpoints.s3_endpoint, endpoints.s3_admin, endpoints.s3_keys)
    s3.ensure_bucket(endpoints.s3_endpoint, endpoints.s3_keys, DEFAULT_BUCKET)
    s3.ensure_bucket(
        endpoints.s3_endpoint,
        endpoints.s3_keys,
        CHECKPOINT_BUCKET,
        lock_days=CHECKPOINT_LOCK_DAYS,
    )


def _kafka_dirs(layout: StackLayout, brokers: int) -> list[Path]:
    """The Kafka node directories: ``kafka/`` for one broker, ``kafka-<n>/`` for a cluster."""
    if brokers == 1:
        return [layout.kafka_dir]
    return [layout.root / f"kafka-{n}" for n in range(1, brokers + 1)]


def _pid_files(layout: StackLayout, brokers: int = 1) -> dict[str, Path]:
    kafka_pids = {
        name: directory / "kafka.pid"
        for name, directory in zip(_kafka_names(brokers), _kafka_dirs(layout, brokers), strict=True)
    }
    return {
        **kafka_pids,
        "clickhouse": layout.clickhouse_dir / "clickhouse.pid",
        "s3": layout.s3_dir / "s3.pid",
    }


def _running_kafka_layouts(layout: StackLayout) -> list[int]:
    """The broker counts (1, or a cluster's N) of which some Kafka node runs now."""
    found = []
    if processes.running(layout.kafka_dir / "kafka.pid") is not None:
        found.append(1)
    nodes = [d for d in layout.root.glob("kafka-*") if d.is_dir()] if layout.root.exists() else []
    if any(processes.running(d / "kafka.pid") is not None for d in nodes):
        found.append(len(nodes))
    return found


def _choose_ports(layout: StackLayout, preferred: PreferredPorts, brokers: int) -> _State:
    """Ports of services still running are kept; the others get the port they had last
    time (or the preferred one) when free, and a free port otherwise. Node ``n`` of a
    cluster prefers node 1's ports plus ``2 * (n - 1)``."""
    last = _read_state(layout)
    previous = last.ports if last is not None else preferred
    pid_files = _pid_files(layout, brokers)
    alive = {name: processes.running(pid) is not None for name, pid in pid_files.items()}
    taken: list[int] = []

    def pick(component: str, port_last: int) -> int:
        port = port_last if alive[component] else processes.choose_port(port_last, taken=taken)
        taken.append(port)
        return port

    names = _kafka_names(brokers)
    nodes = []
    for n, name in enumerate(names, start=1):
        if last is not None and last.brokers == brokers:
            wanted = last.kafka_nodes[n - 1]
        else:
            step = 2 * (n - 1)
            wanted = kafka.KafkaPorts(
                previous.kafka + step if previous.kafka else 0,
                previous.kafka_controller + step if previous.kafka_controller else 0,
            )
        nodes.append(kafka.KafkaPorts(pick(name, wanted.broker), pick(name, wanted.controller)))
    ports = PreferredPorts(
        kafka=nodes[0].broker,
        kafka_controller=nodes[0].controller,
        clickhouse=pick("clickhouse", previous.clickhouse),
        s3=pick("s3", previous.s3),
    )
    return _State(ports, tuple(nodes))


def up(
    layout: StackLayout,
    preferred: PreferredPorts | None = None,
    *,
    brokers: int = 1,
    on_progress: Callable[[str], None] = lambda _msg: None,
) -> StackEndpoints:
    """Start whatever is not running and block until all three services answer.

    ``brokers`` > 1: Kafka is a cluster of that many nodes (:mod:`deploy.stack.kafka_cluster`)
    and the endpoints carry the topics' replication factor and ``min.insync.replicas``. A
    stack running with another number of brokers is refused (``down`` it first).

    Raises :class:`deploy.stack.errors.StackError`; on failure the services this call
    started are stopped again, so nothing is orphaned.
    """
    if brokers < 1:
        raise StackError(f"--brokers must be at least 1, got {brokers}")
    with _locked(layout):
        kafka_jars.require_tools()
        other = [n for n in _running_kafka_layouts(layout) if n != brokers]
        if other:
            raise StackError(
                f"the stack in {layout.root} runs Kafka with {other[0]} broker(s), not "
                f"{brokers}: stop it with `auditlog stack down` first"
            )
        pid_files = _pid_files(layout, brokers)
        minio = None
        running_s3 = processes.running(pid_files["s3"])
        if running_s3 is None:
            minio = minio_binary.ensure_minio(layout.cache_dir, on_progress=on_progress)
        elif Path(running_s3.argv[0]).name != "minio":
            raise StackError(
                f"the S3 server running from {layout.s3_dir} is not MinIO (it is "
                f"{' '.join(running_s3.argv[:3])}, from before the stack moved to MinIO): "
                "stop the stack with `auditlog stack down`, then start it again"
            )
        state = _choose_ports(layout, preferred or PreferredPorts(), brokers)
        ports = state.ports
        root, user = s3.stack_keys(layout.s3_dir)
        endpoints = _endpoints(state, root, user)
        started: list[Callable[[], object]] = []
        try:
            if brokers == 1 and processes.running(pid_files["kafka"]) is None:
                on_progress(
                    f"starting Kafka {kafka_jars.KAFKA_VERSION} on {endpoints.kafka_bootstrap}"
                )
                started.append(lambda: kafka.stop_kafka(layout.kafka_dir))
                kafka.start_kafka(
                    data_dir=layout.kafka_dir,
                    cache_dir=layout.cache_dir,
                    ports=kafka.KafkaPorts(broker=ports.kafka, controller=ports.kafka_controller),
                )
            elif brokers > 1:
                cluster = kafka_cluster(layout, brokers, state.kafka_nodes)
                down_nodes = [n for n in cluster.nodes if cluster.running(n) is None]
                if down_nodes:
                    on_progress(
                        f"starting a {brokers}-node Kafka {kafka_jars.KAFKA_VERSION} cluster on "
                        f"{endpoints.kafka_bootstrap}"
                    )
                    started.append(lambda: [cluster.stop(n, signal.SIGTERM) for n in down_nodes])
                    cluster.start_all()
            if processes.running(pid_files["clickhouse"]) is None:
                on_progress(f"starting the ClickHouse gateway on {endpoints.clickhouse_url}")
                started.append(lambda: clickhouse.stop_clickhouse(layout.clickhouse_dir))
                clickhouse.start_clickhouse(data_dir=layout.clickhouse_dir, port=ports.clickhouse)
            if minio is not None:
                on_progress(f"starting the S3 server (MinIO) on {endpoints.s3_endpoint}")
                started.append(lambda: s3.stop_s3(layout.s3_dir))
                s3.start_s3(data_dir=layout.s3_dir, binary=minio, port=ports.s3, root=root)
            prepare_s3(endpoints)
        except BaseException:
            for stop in reversed(started):
                stop()
            raise
        _write_state(layout, state)
        return endpoints


def status(layout: StackLayout) -> list[ComponentStatus]:
    """What runs and whether it answers; never starts or stops anything."""
    state = _read_state(layout)
    brokers = state.brokers if state is not None else 1
    addresses = _addresses(state) if state is not None else {}
    probes: dict[str, Callable[[str], bool]] = {
        **dict.fromkeys(_kafka_names(brokers), kafka.kafka_ready),
        "clickhouse": clickhouse.clickhouse_ready,
        "s3": s3.s3_ready,
    }
    result = []
    for name, pid_file in _pid_files(layout, brokers).items():
        record = processes.running(pid_file)
        endpoint = addresses.get(name, "-")
        answering = record is not None and name in addresses and probes[name](endpoint)
        result.append(ComponentStatus(name, record.pid if record else None, endpoint, answering))
    return result


def running_endpoints(layout: StackLayout) -> StackEndpoints | None:
    """The endpoints of a fully running stack in ``layout``, or None."""
    state = _read_state(layout)
    if state is None:
        return None
    pid_files = _pid_files(layout, state.brokers).values()
    if not all(processes.running(pid) is not None for pid in pid_files):
        return None
    keys = s3.existing_keys(layout.s3_dir)  # read only: `up` writes them, under its lock
    return None if keys is None else _endpoints(state, *keys)


def down(layout: StackLayout) -> list[str]:
    """Stop every service of the stack; idempotent. Returns the names that were running.
    Data stays in ``layout.root`` (delete the directory to start afresh)."""
    if not layout.root.exists():
        return []
    with _locked(layout):
        stopped = []
        if s3.stop_s3(layout.s3_dir):
            stopped.append("s3")
        if clickhouse.stop_clickhouse(layout.clickhouse_dir):
            stopped.append("clickhouse")
        if kafka.stop_kafka(layout.kafka_dir):
            stopped.append("kafka")
        # A cluster's nodes are signalled together: see KafkaCluster.stop_all.
        node_dirs = [d for d in sorted(layout.root.glob("kafka-*")) if d.is_dir()]
        signalled = [d for d in node_dirs if processes.send(d / "kafka.pid", signal.SIGTERM)]
        for node_dir in signalled:
            kafka.stop_kafka(node_dir)
            stopped.append(node_dir.name)
        return stopped
