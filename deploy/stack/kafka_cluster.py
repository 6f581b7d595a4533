"""A local Apache Kafka cluster: N KRaft nodes, each a combined broker+controller JVM from the
same jars as the single broker (:mod:`deploy.stack.kafka`), together a controller quorum of N
voters; internal topics and new topics at replication factor N with
``min.insync.replicas`` :func:`deploy.stack.kafka.cluster_min_insync_replicas` (2 for three
nodes).

Node ``n`` (1-based) lives in ``root/kafka-<n>/`` (the layout of a single broker's directory),
with ports of its own; all share the cluster id in each node's ``cluster.id``. A node is stopped
and started on its own (:meth:`KafkaCluster.stop`, :meth:`KafkaCluster.start`), which is what
fault tests and a rolling restart need.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from deploy.stack import kafka, processes
from deploy.stack.errors import StackError
from deploy.stack.kafka import ClusterMembership, KafkaPorts
from deploy.stack.processes import ProcessRecord

DEFAULT_HEAP_MB = 384  # three JVMs on a two-core laptop
_START_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class PartitionState:
    """One partition as the cluster's metadata describes it (``leader`` -1: none)."""

    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True)
class KafkaCluster:
    """``ports[n - 1]`` are node ``n``'s; see the module docstring."""

    root: Path
    cache_dir: Path
    ports: tuple[KafkaPorts, ...]
    heap_mb: int = DEFAULT_HEAP_MB

    @property
    def nodes(self) -> range:
        """The node ids, 1..N."""
        return range(1, len(self.ports) + 1)

    @property
    def bootstrap(self) -> str:
        """Every node's client listener: ``bootstrap.servers`` for clients."""
        return ",".join(p.bootstrap for p in self.ports)

    @property
    def replication_factor(self) -> int:
        return len(self.ports)

    @property
    def min_insync_replicas(self) -> int:
        return kafka.cluster_min_insync_replicas(len(self.ports))

    def node_dir(self, node: int) -> Path:
        self._check(node)
        return self.root / f"kafka-{node}"

    def pid_file(self, node: int) -> Path:
        return self.node_dir(node) / "kafka.pid"

    def running(self, node: int) -> ProcessRecord | None:
        return processes.running(self.pid_file(node))

    def start_all(self, timeout_s: float = _START_TIMEOUT_S) -> None:
        """Start every node that is not running and block until all of them are brokers of
        the cluster. Nodes are launched together (a node answers only once a majority of
        the quorum runs); on failure every node this call launched is stopped again."""
        self._ensure_cluster_id()
        launched: list[int] = []
        try:
            records = {}
            for node in self.nodes:
                if self.running(node) is None:
                    records[node] = self._launch(node)
                    launched.append(node)
            for node, record in records.items():
                self._await(node, record, timeout_s)
        except BaseException:
            for node in launched:
                self.stop(node, signal.SIGTERM)
            raise

    def start(self, node: int, timeout_s: float = _START_TIMEOUT_S) -> ProcessRecord:
        """Start one node (a no-op when it runs) and block until the cluster lists it."""
        record = self.running(node)
        if record is not None:
            return record
        self._ensure_cluster_id()
        record = self._launch(node)
        self._await(node, record, timeout_s)
        return record

    def stop(self, node: int, sig: signal.Signals = signal.SIGKILL) -> bool:
        """Stop one node: SIGKILL (a crash: no controlled shutdown) or SIGTERM (a controlled
        shutdown, leadership moved first). Blocks until its process is gone; True if it ran."""
        return kafka.stop_kafka(self.node_dir(node), sig)

    def stop_all(self, sig: signal.Signals = signal.SIGTERM) -> list[int]:
        """Stop every node; the nodes that were running. The signal goes to all of them at
        once (one by one, the last node's controlled shutdown would wait for a controller
        quorum that is gone), then each is awaited."""
        signalled = [node for node in self.nodes if processes.send(self.pid_file(node), sig)]
        for node in signalled:
            self.stop(node, sig)
        return signalled

    def broker_ids(self, timeout_s: float = 5.0) -> set[int]:
        """The brokers the cluster's metadata lists now (empty when no node answers)."""
        admin = _admin(self.bootstrap, timeout_s)
        try:
            return set(admin.list_topics(timeout=timeout_s).brokers)
        except KafkaException:
            return set()

    def partitions(self, topic: str, timeout_s: float = 5.0) -> dict[int, PartitionState]:
        """Leader, replicas and in-sync replicas of each partition of ``topic`` (empty when no
        node answers or the topic does not exist)."""
        admin = _admin(self.bootstrap, timeout_s)
        try:
            found = admin.list_topics(topic, timeout=timeout_s).topics.get(topic)
        except KafkaException:
            return {}
        if found is None or found.error is not None:
            return {}
        return {
            p.id: PartitionState(p.leader, tuple(p.replicas), tuple(sorted(p.isrs)))
            for p in found.partitions.values()
        }

    def fully_replicated(self, topic: str) -> bool:
        """True when every partition of ``topic`` has all N nodes in sync and a leader."""
        found = self.partitions(topic)
        everyone = tuple(self.nodes)
        return bool(found) and all(
            s.isr == everyone and s.leader in everyone for s in found.values()
        )

    def _membership(self, node: int) -> ClusterMembership:
        return ClusterMembership(node_id=node, voters=self.ports)

    def _launch(self, node: int) -> ProcessRecord:
        return kafka.launch_kafka(
            data_dir=self.node_dir(node),
            cache_dir=self.cache_dir,
            ports=self.ports[node - 1],
            heap_mb=self.heap_mb,
            membership=self._membership(node),
        )

    def _await(self, node: int, record: ProcessRecord, timeout_s: float) -> None:
        kafka.await_kafka(
            data_dir=self.node_dir(node),
            ports=self.ports[node - 1],
            record=record,
            timeout_s=timeout_s,
            ready=lambda: node in self.broker_ids(),
        )

    def _ensure_cluster_id(self) -> None:
        """One cluster id in every node's directory (the first one found, or a new one)."""
        files = [self.node_dir(n) / "cluster.id" for n in self.nodes]
        known = {f.read_text().strip() for f in files if f.exists()} - {""}
        if len(known) > 1:
            raise StackError(
                f"the Kafka nodes under {self.root} were formatted for different clusters "
                f"({sorted(known)}): stop the stack and delete {self.root}/kafka-* to start afresh"
            )
        cluster_id = known.pop() if known else kafka.new_cluster_id()
        for file in files:
            file.parent.mkdir(parents=True, exist_ok=True)
            if not file.exists():
                file.write_text(cluster_id + "\n")

    def _check(self, node: int) -> None:
        if node not in self.nodes:
            raise StackError(f"no Kafka node {node}: the cluster has nodes 1..{len(self.ports)}")


def _admin(bootstrap: str, timeout_s: float) -> AdminClient:
    return AdminClient(
        {
            "bootstrap.servers": bootstrap,
            "log_level": 0,  # a stopped node refuses connections: expected here
            "socket.connection.setup.timeout.ms": max(1000, int(timeout_s * 1000)),
        }
    )
