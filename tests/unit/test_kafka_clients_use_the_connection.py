"""No Kafka client of the product is built without the security properties: every
``Producer``, ``Consumer`` and ``AdminClient`` starts its configuration from a
``KafkaConnection`` (directly, or through a config class that does), and the only
``KafkaConnection`` the product builds is the one made from the settings at the edge."""

from __future__ import annotations

import ast
from pathlib import Path

from pydantic import SecretStr

from consumers.writer_config import WriterConfig
from producers.config import ProducerConfig
from runtime.kafka_connection import KafkaConnection, KafkaSecurity
from sinks.worker import SinkConfig

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("auditlog", "producers", "consumers", "sinks", "runtime", "accounts")
CLIENTS = {"Producer", "Consumer", "AdminClient"}
# Methods that return a KafkaConnection's properties, or a config's that include them.
CONNECTION_PROPERTIES = {
    "properties",
    "client_properties",
    "consumer_properties",
    "producer_properties",  # integrity.copy_publisher: {**kafka.properties(), ...}
}
SECURE = KafkaConnection(
    "broker-1:9096",
    KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "writer", SecretStr("s3cret")),
)


def _modules() -> list[tuple[Path, ast.Module]]:
    return [
        (path, ast.parse(path.read_text(), str(path)))
        for package in PRODUCT
        for path in sorted((REPO / package).rglob("*.py"))
    ]


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _from_connection(arg: ast.expr) -> bool:
    """``x.properties()`` (or a config's), alone or unpacked into a dict literal."""
    if isinstance(arg, ast.Call):
        return _name(arg.func) in CONNECTION_PROPERTIES
    if isinstance(arg, ast.Dict):
        return any(
            key is None and _from_connection(value)
            for key, value in zip(arg.keys, arg.values, strict=True)
        )
    return False


def test_every_client_starts_from_the_connection_properties() -> None:
    unsecured, found = [], 0
    for path, module in _modules():
        for node in ast.walk(module):
            if isinstance(node, ast.Call) and _name(node.func) in CLIENTS:
                found += 1
                if not (node.args and _from_connection(node.args[0])):
                    unsecured.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found >= 8  # the scan does see the clients
    assert unsecured == [], f"clients built without KafkaConnection.properties(): {unsecured}"


def test_the_only_connection_is_built_from_the_settings() -> None:
    built = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path, module in _modules()
        for node in ast.walk(module)
        if isinstance(node, ast.Call) and _name(node.func) == "KafkaConnection"
    ]
    assert built == [
        f"auditlog/wiring.py:{_line_of('auditlog/wiring.py', 'return KafkaConnection(')}"
    ]


def _line_of(relative: str, text: str) -> int:
    lines = (REPO / relative).read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


def test_each_config_class_carries_the_security_properties() -> None:
    expected = SECURE.properties()
    for properties in (
        ProducerConfig(SECURE).client_properties(),
        WriterConfig(SECURE).consumer_properties(),
        SinkConfig(SECURE).consumer_properties(),
    ):
        assert {k: properties.get(k) for k in expected} == expected
