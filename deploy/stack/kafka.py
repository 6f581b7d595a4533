"""A single-node Apache Kafka broker (KRaft, broker and controller in one JVM) for development.

The jars come from Maven Central through the pinned pom in ``deploy/kafka/pom.xml`` and are
cached per Kafka version; the broker runs as ``java -cp '<lib>/*' kafka.Kafka server.properties``
under :mod:`deploy.stack.processes`, so it is always recorded in a pid file and can be stopped.

Layout of a broker's own directory (``data_dir``)::

    server.properties   rewritten on every start (ports may change)
    cluster.id          the cluster id the storage was formatted with
    data/               log.dirs: topic partitions and the KRaft metadata log
    logs/server.log     the broker's log4j2 log (rolled, size-capped)
    logs/kafka.out      the JVM's stdout/stderr: WARN and above only
    kafka.pid           the running broker

:class:`SecureListeners` adds, on request, a SASL_SSL listener (SCRAM-SHA-512, SCRAM-SHA-256
and PLAIN users) and an SSL listener that requires a client certificate, beside the
PLAINTEXT one; the stack of ``auditlog stack up`` and of the tests stays PLAINTEXT, and the
Kafka security tests start a broker of their own with them.

Every failure is a :class:`StackError` whose message says what to do.
"""

from __future__ import annotations

import base64
import re
import secrets
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from deploy.stack import processes
from deploy.stack.certificates import write_private
from deploy.stack.errors import StackError
from deploy.stack.kafka_jars import last_lines, require, resolve_jars
from deploy.stack.processes import ProcessRecord

LOG4J2_CONFIG = Path(__file__).resolve().parent.parent / "kafka" / "log4j2.xml"

_FORMAT_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 30.0
_HOST = "127.0.0.1"


@dataclass(frozen=True)
class KafkaPorts:
    """TCP ports on 127.0.0.1: ``broker`` for clients (PLAINTEXT), ``controller`` for KRaft."""

    broker: int
    controller: int

    @property
    def bootstrap(self) -> str:
        """The ``bootstrap.servers`` value clients use."""
        return f"{_HOST}:{self.broker}"


@dataclass(frozen=True)
class SaslUser:
    """A user of the SASL_SSL listener; both parts are letters, digits and ``._~-``."""

    name: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class SecureListeners:
    """Listeners on 127.0.0.1 besides PLAINTEXT, sharing one broker certificate.

    ``sasl_ssl_port``: SASL_SSL with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN for ``users``
    (their SCRAM credentials are written when the storage is first formatted: users added
    to a broker that already has data get PLAIN only). ``mtls_port``: SSL that requires a
    client certificate signed by ``ca_file``. ``keystore_file``: PEM, the broker's
    unencrypted PKCS#8 key then its certificate chain
    (:func:`deploy.stack.certificates.pem_keystore`); ``ca_file``: PEM, the CA(s) whose
    client certificates the SSL listener accepts.
    """

    sasl_ssl_port: int
    mtls_port: int
    keystore_file: Path
    ca_file: Path
    users: tuple[SaslUser, ...]

    def check(self) -> None:
        """Raise :class:`StackError` for a user name or password that the broker's
        configuration syntax cannot carry."""
        for user in self.users:
            if not (_PLAIN_TOKEN.fullmatch(user.name) and _PLAIN_TOKEN.fullmatch(user.password)):
                raise StackError(
                    f"SASL user {user.name!r}: its name and password must be letters, digits "
                    "and ._~- only"
                )


_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9._~-]+")
_SCRAM_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
_SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


def new_cluster_id() -> str:
    """A Kafka-style cluster id: 16 random bytes, URL-safe base64 without padding.

    Like Kafka's ``Uuid.randomUuid``, never starts with ``-`` (command lines would take it
    for an option).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass(frozen=True)
class ClusterMembership:
    """Where a node stands in a cluster of combined broker+controller nodes: its
    ``node_id`` (1-based) and every node's ports in node-id order (``voters[0]`` is node 1),
    which form the KRaft controller quorum."""

    node_id: int
    voters: tuple[KafkaPorts, ...]

    @property
    def replication_factor(self) -> int:
        """Every topic, internal ones included, on every node."""
        return len(self.voters)

    @property
    def min_insync_replicas(self) -> int:
        return cluster_min_insync_replicas(len(self.voters))


SINGLE_NODE = ClusterMembership(node_id=1, voters=())


def cluster_min_insync_replicas(brokers: int) -> int:
    """``min.insync.replicas`` for a cluster of ``brokers`` nodes: 2 from three nodes on
    (an acks=all write survives the loss of any one node), else 1."""
    return 2 if brokers >= 3 else 1


def render_server_properties(
    *,
    data_dir: Path,
    ports: KafkaPorts,
    secure: SecureListeners | None = None,
    membership: ClusterMembership = SINGLE_NODE,
) -> str:
    """The ``server.properties`` of the broker+controller rooted at ``data_dir`` (with the
    ``secure`` listeners too, when given): a single node, or node ``membership.node_id`` of a
    cluster whose internal topics are replicated to every node with min ISR
    :func:`cluster_min_insync_replicas`."""
    if ports.broker == ports.controller:
        raise StackError(f"Kafka broker and controller need two ports, got {ports.broker} twice")
    voters = membership.voters or (ports,)
    if not 1 <= membership.node_id <= len(voters) or voters[membership.node_id - 1] != ports:
        raise StackError(
            f"Kafka node {membership.node_id} must be one of the {len(voters)} voters with "
            f"its own ports {ports}"
        )
    every_port = [port for voter in voters for port in (voter.broker, voter.controller)]
    if len(set(every_port)) != len(every_port):
        raise StackError(f"the Kafka nodes need different ports each, got {every_port}")
    rf = str(len(voters))
    min_isr = str(cluster_min_insync_replicas(len(voters)))
    log_dirs = _escape(str(data_dir / "data"))
    listeners = [f"PLAINTEXT://{_HOST}:{ports.broker}"]
    protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
    if secure is not None:
        listeners += [
            f"SASL_SSL://{_HOST}:{secure.sasl_ssl_port}",
            f"MTLS://{_HOST}:{secure.mtls_port}",
        ]
        protocols += ["SASL_SSL:SASL_SSL", "MTLS:SSL"]
        used = [ports.broker, ports.controller, secure.sasl_ssl_port, secure.mtls_port]
        if len(set(used)) != len(used):
            raise StackError(f"Kafka listeners need four different ports, got {used}")
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(membership.node_id),
        "controller.quorum.voters": ",".join(
            f"{n}@{_HOST}:{voter.controller}" for n, voter in enumerate(voters, start=1)
        ),
        "listeners": ",".join([*listeners, f"CONTROLLER://{_HOST}:{ports.controller}"]),
        "advertised.listeners": ",".join(listeners),
        "listener.security.protocol.map": ",".join(protocols),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": log_dirs,
        "num.partitions": "1",
        "default.replication.factor": rf,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": rf,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        "log.segment.bytes": str(64 * 1024 * 1024),
        "log.retention.hours": "72",
        "log.retention.check.interval.ms": str(5 * 60 * 1000),
        # Topics are created on purpose (`auditlog topics ensure`, tests), never by a typo.
        "auto.create.topics.enable": "false",
        **(_secure_settings(secure) if secure is not None else {}),
    }
    lines = ["# Written by deploy/stack/kafka.py on every start; edits are lost."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _secure_settings(secure: SecureListeners) -> dict[str, str]:
    """SASL and TLS settings of the SASL_SSL and MTLS listeners."""
    secure.check()
    plain_users = " ".join(f'user_{u.name}="{u.password}"' for u in secure.users)
    return {
        "sasl.enabled.mechanisms": ",".join((*_SCRAM_MECHANISMS, "PLAIN")),
        **{
            f"listener.name.sasl_ssl.{m.lower()}.sasl.jaas.config": _SCRAM_LOGIN
            for m in _SCRAM_MECHANISMS
        },
        "listener.name.sasl_ssl.plain.sasl.jaas.config": (
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
        ),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": _escape(str(secure.keystore_file)),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": _escape(str(secure.ca_file)),
        "listener.name.mtls.ssl.client.auth": "required",
    }


def _escape(value: str) -> str:
    """Escape a value for a Java properties file (backslash is its escape character)."""
    return value.replace("\\", "\\\\")


def start_kafka(
    *,
    data_dir: Path,
    cache_dir: Path,
    ports: KafkaPorts,
    heap_mb: int = 512,
    timeout_s: float = 90.0,
    secure: SecureListeners | None = None,
    membership: ClusterMembership = SINGLE_NODE,
) -> ProcessRecord:
    """Start the broker in ``data_dir`` and block until it answers a metadata request (on
    its PLAINTEXT listener; ``secure`` adds the listeners of :class:`SecureListeners`).

    If the pid file names a live broker, returns its record at once without checking its
    ports. Otherwise resolves the jars (see :func:`resolve_jars`), writes ``server.properties``,
    formats the storage if it has never been formatted, spawns the JVM and waits up to
    ``timeout_s``. Raises :class:`StackError` when a tool is missing, the jars cannot be
    resolved, formatting fails, or the broker exits or does not answer in time; in the last two
    cases the process is stopped first, so nothing is left running.

    A node of a cluster (``membership``) answers only once a majority of the controller
    quorum runs: start the others with :func:`launch_kafka` first, or use
    :mod:`deploy.stack.kafka_cluster`.
    """
    pid_file = data_dir / "kafka.pid"
    record = processes.running(pid_file)
    if record is not None:
        return record
    record = launch_kafka(
        data_dir=data_dir,
        cache_dir=cache_dir,
        ports=ports,
        heap_mb=heap_mb,
        secure=secure,
        membership=membership,
    )
    await_kafka(data_dir=data_dir, ports=ports, record=record, timeout_s=timeout_s)
    return record


def launch_kafka(
    *,
    data_dir: Path,
    cache_dir: Path,
    ports: KafkaPorts,
    heap_mb: int = 512,
    secure: SecureListeners | None = None,
    membership: ClusterMembership = SINGLE_NODE,
) -> ProcessRecord:
    """The first half of :func:`start_kafka`: write the configuration, format the storage
    once, spawn the JVM (or return the live one's record); does not wait for it to answer.
    A cluster's nodes share one cluster id: write it to ``data_dir/cluster.id`` before."""
    pid_file = data_dir / "kafka.pid"
    record = processes.running(pid_file)
    if record is not None:
        return record

    java = require("java")
    lib_dir = resolve_jars(cache_dir)
    logs_dir = data_dir / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "server.properties"
    # It holds the secure listeners' test passwords: readable by this user only.
    write_private(
        config,
        render_server_properties(
            data_dir=data_dir, ports=ports, secure=secure, membership=membership
        ).encode(),
    )
    users = secure.users if secure is not None else ()
    _format_storage_once(java, lib_dir=lib_dir, data_dir=data_dir, config=config, users=users)

    argv = [
        java,
        f"-Xms{heap_mb}m",
        f"-Xmx{heap_mb}m",
        "-XX:+UseG1GC",
        "-XX:+ExitOnOutOfMemoryError",
        *_jvm_common_flags(logs_dir),
        "-cp",
        f"{lib_dir}/*",
        "kafka.Kafka",
        str(config),
    ]
    return processes.spawn(argv, pid_file=pid_file, log_file=logs_dir / "kafka.out", cwd=data_dir)


def await_kafka(
    *,
    data_dir: Path,
    ports: KafkaPorts,
    record: ProcessRecord,
    timeout_s: float = 90.0,
    ready: Callable[[], bool] | None = None,
) -> None:
    """Block until the broker launched by :func:`launch_kafka` answers a metadata request
    (and ``ready``, when given, holds); on failure or interruption stop it and raise."""
    pid_file = data_dir / "kafka.pid"
    logs_dir = data_dir / "logs"
    log_file = logs_dir / "kafka.out"
    try:
        processes.wait_until(
            lambda: (
                processes.tcp_answers(_HOST, ports.broker)
                and kafka_ready(ports.bootstrap)
                and (ready is None or ready())
            ),
            what=f"Kafka broker on {ports.bootstrap}",
            timeout_s=timeout_s,
            alive=record.alive,
            log_file=log_file,
            interval_s=0.5,
        )
    except StackError as exc:
        processes.stop(pid_file, timeout_s=_STOP_TIMEOUT_S)
        raise StackError(f"{exc}\nFull broker log: {logs_dir / 'server.log'}") from exc
    except BaseException:  # interrupted while waiting: leave nothing running
        processes.stop(pid_file, timeout_s=_STOP_TIMEOUT_S)
        raise


def _jvm_common_flags(logs_dir: Path) -> list[str]:
    return [
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={logs_dir}",
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
    ]


def _format_storage_once(
    java: str, *, lib_dir: Path, data_dir: Path, config: Path, users: tuple[SaslUser, ...] = ()
) -> None:
    """Run ``kafka.tools.StorageTool format`` unless ``data/meta.properties`` exists; the
    SCRAM credentials of ``users`` are part of the formatted metadata.

    The cluster id is kept in ``data_dir/cluster.id`` so a re-format after a lost data
    directory keeps it. Blocks a few seconds (a JVM start); raises :class:`StackError` on failure.
    """
    if (data_dir / "data" / "meta.properties").exists():
        return
    id_file = data_dir / "cluster.id"
    cluster_id = id_file.read_text().strip() if id_file.exists() else ""
    if not cluster_id:
        cluster_id = new_cluster_id()
        id_file.write_text(cluster_id + "\n")
    argv = [
        java,
        "-Xmx256m",
        *_jvm_common_flags(data_dir / "logs"),
        "-cp",
        f"{lib_dir}/*",
        "kafka.tools.StorageTool",
        "format",
        "--ignore-formatted",
        f"--cluster-id={cluster_id}",
        f"--config={config}",
        *(
            f"--add-scram={mechanism}=[name={user.name},password={user.password}]"
            for user in users
            for mechanism in _SCRAM_MECHANISMS
        ),
    ]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=_FORMAT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(
            f"formatting Kafka storage in {data_dir} took over {_FORMAT_TIMEOUT_S:.0f} s"
        ) from exc
    if done.returncode != 0:
        raise StackError(
            f"formatting Kafka storage in {data_dir} failed (exit {done.returncode}):\n"
            f"{last_lines(done.stdout + done.stderr)}"
        )


def kafka_ready(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """True if the broker at ``bootstrap`` answers a metadata request listing a broker.

    Blocks at most about ``timeout_s``; never raises for an unreachable broker and logs nothing.
    """
    admin = AdminClient(
        {
            "bootstrap.servers": bootstrap,
            # librdkafka logs every refused connection; while a broker starts that is expected.
            "log_level": 0,
            "socket.connection.setup.timeout.ms": max(1000, int(timeout_s * 1000)),
        }
    )
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def stop_kafka(data_dir: Path, sig: signal.Signals = signal.SIGTERM) -> bool:
    """Stop the broker recorded in ``data_dir/kafka.pid``; True if one was running.

    Sends ``sig``: SIGTERM (Kafka then shuts down in a controlled way, which can take
    several seconds; SIGKILL follows after 30 s) or SIGKILL (a crash). Blocks until the
    process is gone; idempotent.
    """
    return processes.stop(data_dir / "kafka.pid", timeout_s=_STOP_TIMEOUT_S, first_signal=sig)
