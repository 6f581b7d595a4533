"""The local Kafka launcher without a broker: server.properties, cluster ids, the jar cache."""

from __future__ import annotations

import base64
import os
import re
import stat
from pathlib import Path

import pytest

from deploy.stack import kafka, kafka_jars
from deploy.stack.errors import StackError
from tests.unit.http_receiver import closed_port


def _parse_properties(text: str) -> dict[str, str]:
    props: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            props[key] = value
    return props


def test_server_properties_single_node_kraft(tmp_path: Path) -> None:
    props = _parse_properties(
        kafka.render_server_properties(
            data_dir=tmp_path, ports=kafka.KafkaPorts(broker=29092, controller=29093)
        )
    )

    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == f"{props['node.id']}@127.0.0.1:29093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(tmp_path / "data")
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "min.insync.replicas",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_server_properties_refuse_one_port_for_both_listeners(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="two ports"):
        kafka.render_server_properties(data_dir=tmp_path, ports=kafka.KafkaPorts(29092, 29092))


def test_cluster_id_is_kafka_style_uuid() -> None:
    ids = {kafka.new_cluster_id() for _ in range(500)}

    assert len(ids) == 500
    for cluster_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id)
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def _fake_mvn(bin_dir: Path, *, fail: bool) -> Path:
    """An ``mvn`` that records each call and copies one fake jar to -DoutputDirectory."""
    calls = bin_dir / "calls"
    script = bin_dir / "mvn"
    body = (
        'echo "[ERROR] Failed to collect dependencies: Maven Central unreachable"; exit 1'
        if fail
        else (
            'for arg; do case "$arg" in -DoutputDirectory=*) out="${arg#*=}";; esac; done\n'
            f'touch "$out/kafka_2.13-{kafka_jars.KAFKA_VERSION}.jar"'
        )
    )
    script.write_text(f'#!/bin/sh\necho call >> "{calls}"\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return calls


def test_resolve_jars_runs_mvn_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_mvn(tmp_path, fail=False)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    lib = kafka_jars.resolve_jars(tmp_path / "cache")
    again = kafka_jars.resolve_jars(tmp_path / "cache")

    assert lib == again == tmp_path / "cache" / f"kafka-{kafka_jars.KAFKA_VERSION}" / "lib"
    assert (lib / f"kafka_2.13-{kafka_jars.KAFKA_VERSION}.jar").is_file()
    assert calls.read_text().count("call") == 1


def test_resolve_jars_failure_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_mvn(tmp_path, fail=True)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    with pytest.raises(StackError, match="Maven Central unreachable"):
        kafka_jars.resolve_jars(tmp_path / "cache")

    assert list((tmp_path / "cache" / f"kafka-{kafka_jars.KAFKA_VERSION}").iterdir()) == []


def test_kafka_ready_is_false_when_nothing_listens() -> None:
    with closed_port() as refusing:  # bound, so nothing else can listen there meanwhile
        port = refusing.getsockname()[1]
        assert not kafka.kafka_ready(f"127.0.0.1:{port}", timeout_s=0.5)


@pytest.mark.parametrize("tool", ["java", "mvn"])
def test_a_missing_tool_is_named_in_one_line(
    tool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PATH holding only the other tool.
    other = "mvn" if tool == "java" else "java"
    fake = tmp_path / other
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError) as exc:
        kafka_jars.require_tools()
    message = str(exc.value)
    assert message.startswith(f"{tool} not found on PATH: install")
    assert "\n" not in message
