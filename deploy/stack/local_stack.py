"""``auditlog stack up | status | down``: the three local services as one unit.

``up`` is idempotent: services already running are kept (never a second broker), missing
ones are started, and a start that fails half way stops what this call started before
raising. The chosen ports are kept in ``state.json`` so a restart reuses them when free.
Concurrent ``up``/``down`` calls on one stack directory are serialised by a file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from deploy.stack import clickhouse, kafka, processes, s3
from deploy.stack.endpoints import StackEndpoints
from deploy.stack.layout import PreferredPorts, StackLayout

DEFAULT_BUCKET = "auditlog-dev"


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


def _endpoints(ports: PreferredPorts) -> StackEndpoints:
    return StackEndpoints(
        kafka_bootstrap=f"127.0.0.1:{ports.kafka}",
        clickhouse_url=f"http://127.0.0.1:{ports.clickhouse}",
        s3_endpoint=f"http://127.0.0.1:{ports.s3}",
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
        ports = _choose_ports(layout, preferred or PreferredPorts())
        endpoints = _endpoints(ports)
        started: list[Callable[[], object]] = []
        pid_files = _pid_files(layout)
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
            if processes.running(pid_files["s3"]) is None:
                on_progress(f"starting the S3 server on {endpoints.s3_endpoint}")
                started.append(lambda: s3.stop_s3(layout.s3_dir))
                s3.start_s3(data_dir=layout.s3_dir, port=ports.s3)
            s3.ensure_bucket(endpoints.s3_endpoint, DEFAULT_BUCKET)
        except BaseException:
            for stop in reversed(started):
                stop()
            raise
        layout.state_file.write_text(
            json.dumps({"ports": asdict(ports), "endpoints": asdict(endpoints)}, indent=2)
        )
        return endpoints


def status(layout: StackLayout) -> list[ComponentStatus]:
    """What runs and whether it answers; never starts or stops anything."""
    ports = _read_ports(layout)
    endpoints = _endpoints(ports) if ports else None
    probes: dict[str, tuple[str, Callable[[str], bool]]] = {
        "kafka": (endpoints.kafka_bootstrap if endpoints else "-", kafka.kafka_ready),
        "clickhouse": (endpoints.clickhouse_url if endpoints else "-", clickhouse.clickhouse_ready),
        "s3": (endpoints.s3_endpoint if endpoints else "-", s3.s3_ready),
    }
    result = []
    for name, pid_file in _pid_files(layout).items():
        record = processes.running(pid_file)
        endpoint, probe = probes[name]
        answering = record is not None and endpoints is not None and probe(endpoint)
        result.append(ComponentStatus(name, record.pid if record else None, endpoint, answering))
    return result


def running_endpoints(layout: StackLayout) -> StackEndpoints | None:
    """The endpoints of a fully running stack in ``layout``, or None."""
    ports = _read_ports(layout)
    if ports is None:
        return None
    if all(processes.running(pid) is not None for pid in _pid_files(layout).values()):
        return _endpoints(ports)
    return None


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
