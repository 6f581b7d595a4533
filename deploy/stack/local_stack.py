"""``auditlog stack up | status | down``: the three local services as one unit.

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
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from deploy.stack import clickhouse, kafka, minio_binary, processes, s3, s3_admin
from deploy.stack.endpoints import S3Keys, StackEndpoints
from deploy.stack.errors import StackError
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


def _read_ports(layout: StackLayout) -> PreferredPorts | None:
    try:
        return PreferredPorts(**json.loads(layout.state_file.read_text())["ports"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _addresses(ports: PreferredPorts) -> dict[str, str]:
    """Where each service answers, by name."""
    return {
        "kafka": f"127.0.0.1:{ports.kafka}",
        "clickhouse": f"http://127.0.0.1:{ports.clickhouse}",
        "s3": f"http://127.0.0.1:{ports.s3}",
    }


def _endpoints(ports: PreferredPorts, root: S3Keys, user: S3Keys) -> StackEndpoints:
    addresses = _addresses(ports)
    return StackEndpoints(
        kafka_bootstrap=addresses["kafka"],
        clickhouse_url=addresses["clickhouse"],
        s3_endpoint=addresses["s3"],
        s3_keys=user,
        s3_admin=root,
    )


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


def _pid_files(layout: StackLayout) -> dict[str, Path]:
    return {
        "kafka": layout.kafka_dir / "kafka.pid",
        "clickhouse": layout.clickhouse_dir / "clickhouse.pid",
        "s3": layout.s3_dir / "s3.pid",
    }


def _choose_ports(layout: StackLayout, preferred: PreferredPorts) -> PreferredPorts:
    """Ports of services still running are kept; the others get the port they had last
    time (or the preferred one) when free, and a free port otherwise."""
    previous = _read_ports(layout) or preferred
    alive = {name: processes.running(pid) is not None for name, pid in _pid_files(layout).items()}
    taken: list[int] = []

    def pick(component: str, port_last: int) -> int:
        port = port_last if alive[component] else processes.choose_port(port_last, taken=taken)
        taken.append(port)
        return port

    return PreferredPorts(
        kafka=pick("kafka", previous.kafka),
        kafka_controller=pick("kafka", previous.kafka_controller),
        clickhouse=pick("clickhouse", previous.clickhouse),
        s3=pick("s3", previous.s3),
    )


def up(
    layout: StackLayout,
    preferred: PreferredPorts | None = None,
    *,
    on_progress: Callable[[str], None] = lambda _msg: None,
) -> StackEndpoints:
    """Start whatever is not running and block until all three services answer.

    Raises :class:`deploy.stack.errors.StackError`; on failure the services this call
    started are stopped again, so nothing is orphaned.
    """
    with _locked(layout):
        kafka.require_tools()
        pid_files = _pid_files(layout)
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
        ports = _choose_ports(layout, preferred or PreferredPorts())
        root, user = s3.stack_keys(layout.s3_dir)
        endpoints = _endpoints(ports, root, user)
        started: list[Callable[[], object]] = []
        try:
            if processes.running(pid_files["kafka"]) is None:
                on_progress(f"starting Kafka {kafka.KAFKA_VERSION} on {endpoints.kafka_bootstrap}")
                started.append(lambda: kafka.stop_kafka(layout.kafka_dir))
                kafka.start_kafka(
                    data_dir=layout.kafka_dir,
                    cache_dir=layout.cache_dir,
                    ports=kafka.KafkaPorts(broker=ports.kafka, controller=ports.kafka_controller),
                )
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
        layout.state_file.write_text(
            json.dumps({"ports": asdict(ports), "endpoints": _addresses(ports)}, indent=2)
        )
        return endpoints


def status(layout: StackLayout) -> list[ComponentStatus]:
    """What runs and whether it answers; never starts or stops anything."""
    ports = _read_ports(layout)
    addresses = _addresses(ports) if ports else {}
    probes: dict[str, Callable[[str], bool]] = {
        "kafka": kafka.kafka_ready,
        "clickhouse": clickhouse.clickhouse_ready,
        "s3": s3.s3_ready,
    }
    result = []
    for name, pid_file in _pid_files(layout).items():
        record = processes.running(pid_file)
        endpoint = addresses.get(name, "-")
        answering = record is not None and name in addresses and probes[name](endpoint)
        result.append(ComponentStatus(name, record.pid if record else None, endpoint, answering))
    return result


def running_endpoints(layout: StackLayout) -> StackEndpoints | None:
    """The endpoints of a fully running stack in ``layout``, or None."""
    ports = _read_ports(layout)
    if ports is None:
        return None
    if not all(processes.running(pid) is not None for pid in _pid_files(layout).values()):
        return None
    keys = s3.existing_keys(layout.s3_dir)  # read only: `up` writes them, under its lock
    return None if keys is None else _endpoints(ports, *keys)


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
        return stopped
