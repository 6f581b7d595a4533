"""``auditlog doctor`` as a whole, with fakes at the seam (:class:`~auditlog.doctor.runner.Probes`):
the checks' order, what is skipped when a service does not answer, the output, the command's
exit codes, and dead services as a process. The checks one by one: tests/unit/test_doctor.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from auditlog import cli, wiring
from auditlog.doctor import report
from auditlog.doctor.checks_clickhouse import ClickHouseFacts
from auditlog.doctor.checks_kafka import Cluster, TopicFacts
from auditlog.doctor.checks_lag import GroupOffsets, PartitionOffsets
from auditlog.doctor.model import Problem, Status, exit_code, result
from auditlog.doctor.runner import DoctorOptions, run_checks
from auditlog.settings import AuditlogSettings
from consumers.migrations.schema_check import SchemaCheck
from integrity.keystore import KeyStore
from runtime.topic_admin import TopicsError
from sinks.destinations.model import Destination
from sinks.progress import LaneProgress
from tests.cli_process import clean_environment, run_auditlog
from tests.unit.http_receiver import closed_port
from tests.unit.test_doctor import CHECKS, NOW, destination, lane, live, settings

# -- the runner ----------------------------------------------------------------------------


class FakeProbes:
    """What Kafka and ClickHouse answer, set by each test; records the groups asked."""

    def __init__(self, cluster: Cluster, topics: dict[str, TopicFacts] | None) -> None:
        self._cluster, self._topics = cluster, topics
        self.groups: list[str] = []
        self.clickhouse_facts = ClickHouseFacts(
            "http://c:8123", "26.9", SchemaCheck("audit", "current", 6, 6)
        )
        self.group_error: Exception | None = None

    def cluster(self, names: Sequence[str]) -> tuple[Cluster, dict[str, TopicFacts] | None]:
        return self._cluster, self._topics

    def group(self, group: str, topic: str, partitions: int) -> GroupOffsets:
        if self.group_error is not None:
            raise self.group_error
        self.groups.append(group)
        return GroupOffsets(
            group, topic, tuple(PartitionOffsets(p, 5, 0, 5) for p in range(partitions)), 1
        )

    def destinations(self) -> tuple[list[Destination], list[LaneProgress]]:
        return [destination()], [lane(0)]

    def clickhouse(self) -> ClickHouseFacts:
        return self.clickhouse_facts


def healthy(config: AuditlogSettings) -> FakeProbes:
    specs = wiring.topic_specs(config)
    return FakeProbes(Cluster(("1 k1:9092",), 1), {spec.name: live(spec, rf=1) for spec in specs})


def test_the_checks_run_in_order_and_pass_on_a_healthy_deployment(tmp_path: Path) -> None:
    config = settings(tmp_path)
    probes = healthy(config)
    results = run_checks(config, probes, DoctorOptions(now=NOW))
    assert [r.name for r in results] == CHECKS
    assert {r.status for r in results} == {Status.OK}, [r for r in results if r.problems]
    assert probes.groups == ["clickhouse-writer", "stream-sinks", "integrity-log"]
    assert exit_code(results, strict=True) == 0


def test_kafka_not_answering_skips_what_needs_it(tmp_path: Path) -> None:
    results = run_checks(
        settings(tmp_path),
        FakeProbes(Cluster(unreachable="no broker answered"), None),
        DoctorOptions(),
    )
    status = {r.name: r.status for r in results}
    assert status["brokers"] is Status.FAIL
    assert status["clickhouse"] is Status.OK
    assert {status[n] for n in ("topics", "writer lag", "sinks lag", "destinations")} == {
        Status.SKIP
    }
    assert exit_code(results, strict=False) == 1


def test_a_missing_events_topic_skips_the_lag_and_a_probe_error_is_a_fail(tmp_path: Path) -> None:
    config = settings(tmp_path)
    probes = healthy(config)
    assert probes._topics is not None
    probes._topics[config.events_topic] = TopicFacts(None)
    status = {r.name: r for r in run_checks(config, probes, DoctorOptions())}
    assert status["writer lag"].summary == "not checked: topic audit.events does not exist"
    probes = healthy(config)
    probes.group_error = TopicsError("Kafka did not answer within 5 s")
    lag = {r.name: r for r in run_checks(config, probes, DoctorOptions())}["writer lag"]
    assert lag.status is Status.FAIL
    assert "Kafka did not answer within 5 s" in lag.problems[0].what


# -- output and the command ----------------------------------------------------------------


def test_text_has_one_line_per_check_and_each_problem_with_its_fix() -> None:
    results = [
        result("settings", "loaded"),
        result(
            "clickhouse",
            "at http://u:secret@c:8123",
            [Problem(Status.FAIL, "behind", "run `auditlog migrate`")],
        ),
    ]
    assert report.text(results, 1) == [
        "ok    settings    loaded",
        "FAIL  clickhouse  at http://u:***@c:8123",
        "      - FAIL: behind",
        "        fix: run `auditlog migrate`",
        "doctor: 1 FAIL, 0 warn, 0 skip, 1 ok: exit 1",
    ]
    document = json.loads(report.document(results, 1))
    assert document["status"] == "FAIL"
    assert document["checks"][1]["problems"] == [
        {"status": "FAIL", "what": "behind", "fix": "run `auditlog migrate`"}
    ]


def test_settings_that_do_not_load_are_the_doctors_fail_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUDITLOG_TOPIC_PARTITIONS", "many")
    assert cli.main(["doctor", "--json"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["exit_code"] == 2
    assert document["checks"][0]["problems"][0]["what"].startswith("AUDITLOG_TOPIC_PARTITIONS: ")


def test_lag_thresholds_that_make_no_sense_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["doctor", "--lag-warn", "10", "--lag-fail", "5"]) == 2
    assert "lag thresholds" in capsys.readouterr().err


def test_the_keys_check_uses_the_clock_given(tmp_path: Path) -> None:
    config = settings(tmp_path)
    KeyStore(config.integrity_keys_dir).generate(
        "k", int((NOW + timedelta(hours=1)).timestamp() * 1000)
    )
    keys = run_checks(config, healthy(config), DoctorOptions(now=NOW))[-1]
    assert keys.status is Status.FAIL


def test_dead_services_are_a_clear_fail_not_a_hang(tmp_path: Path) -> None:
    """Nothing listens on either port (each held bound without listening): the doctor
    reports both as FAIL lines and exits 1; ``run_auditlog``'s own timeout bounds a hang."""
    kafka, clickhouse = closed_port(), closed_port()
    try:
        env = clean_environment(
            AUDITLOG_KAFKA_BOOTSTRAP=f"127.0.0.1:{kafka.getsockname()[1]}",
            AUDITLOG_CLICKHOUSE_URL=f"http://127.0.0.1:{clickhouse.getsockname()[1]}",
            AUDITLOG_INTEGRITY_KEYS_DIR=str(tmp_path / "keys"),
        )
        done = run_auditlog(["doctor", "--timeout-s", "1"], env, timeout_s=60)
    finally:
        kafka.close()
        clickhouse.close()
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].startswith("FAIL  brokers ")
    assert lines[3] == (
        "        fix: start it (`auditlog stack up` for the local stack), or set "
        "AUDITLOG_KAFKA_BOOTSTRAP to where it runs"
    )
    assert any(
        line.startswith("FAIL  clickhouse ") and "connection refused" in line for line in lines
    )
    assert lines[-1] == "doctor: 2 FAIL, 0 warn, 5 skip, 2 ok: exit 1"
    assert done.stderr == ""
