"""``ensure_topics`` and ``auditlog topics`` against the real broker of the test stack.

Every test uses fresh topic names and deletes what it created. The broker runs with
``auto.create.topics.enable=false``, so a topic exists only if something created it.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka.admin import AdminClient, ConfigEntry, ConfigResource, NewTopic

from deploy.stack.endpoints import StackEndpoints
from producers.topic_specs import topic_specs
from runtime.topic_admin import ensure_topics
from runtime.topic_spec import TopicSpec
from tests.cli_process import run_auditlog

pytestmark = pytest.mark.stack

TIMEOUT_S = 30.0
PARTITIONS = 4


@dataclass(frozen=True)
class Topics:
    bootstrap: str
    admin: AdminClient
    events: str
    dead_letters: str
    destinations: str
    progress: str
    accounts: str

    def specs(self, *, replication_factor: int | None = None) -> list[TopicSpec]:
        return topic_specs(
            events_topic=self.events,
            dead_letter_topic=self.dead_letters,
            partitions=PARTITIONS,
            replication_factor=replication_factor,
            min_insync_replicas=None,
            events_retention_hours=168,
            dead_letter_retention_hours=720,
        )

    def existing(self) -> set[str]:
        listed = set(self.admin.list_topics(timeout=TIMEOUT_S).topics)
        return listed & {
            self.events,
            self.dead_letters,
            self.destinations,
            self.progress,
            self.accounts,
        }

    def configs(self, name: str) -> dict[str, ConfigEntry]:
        resource = ConfigResource(ConfigResource.Type.TOPIC, name)
        entries: dict[str, ConfigEntry] = self.admin.describe_configs([resource])[resource].result(
            timeout=TIMEOUT_S
        )
        return entries

    def partitions(self, name: str) -> int:
        return len(self.admin.list_topics(timeout=TIMEOUT_S).topics[name].partitions)


@pytest.fixture
def topics(stack_endpoints: StackEndpoints) -> Iterator[Topics]:
    """Fresh topic names; whichever of them exists at the end is deleted."""
    suffix = uuid.uuid4().hex
    admin = AdminClient({"bootstrap.servers": stack_endpoints.kafka_bootstrap})
    names = Topics(
        bootstrap=stack_endpoints.kafka_bootstrap,
        admin=admin,
        events=f"test.topics.events.{suffix}",
        dead_letters=f"test.topics.dlq.{suffix}",
        destinations=f"test.topics.destinations.{suffix}",
        progress=f"test.topics.progress.{suffix}",
        accounts=f"test.topics.accounts.{suffix}",
    )
    yield names
    leftover = sorted(names.existing())
    if leftover:
        for future in admin.delete_topics(leftover, operation_timeout=TIMEOUT_S).values():
            future.result(timeout=TIMEOUT_S)


def test_ensure_creates_both_topics_with_their_configs(topics: Topics) -> None:
    specs = topics.specs()
    report = ensure_topics(topics.admin, specs, timeout_s=TIMEOUT_S)

    assert report.created == [topics.events, topics.dead_letters]
    assert report.unchanged == []
    assert report.drift == []
    assert report.in_sync
    assert topics.partitions(topics.events) == PARTITIONS
    assert topics.partitions(topics.dead_letters) == 3
    for spec in specs:
        live = topics.configs(spec.name)
        assert {key: live[key].value for key in spec.config} == spec.config


def test_created_topics_are_checked_too(topics: Topics) -> None:
    """min.insync.replicas 2 on a one-broker cluster: created, but unusable for acks=all."""
    specs = topic_specs(
        events_topic=topics.events,
        dead_letter_topic=topics.dead_letters,
        partitions=1,
        replication_factor=None,
        min_insync_replicas=2,
        events_retention_hours=1,
        dead_letter_retention_hours=1,
    )

    report = ensure_topics(topics.admin, specs, timeout_s=TIMEOUT_S)

    assert report.created == [topics.events, topics.dead_letters]
    assert [(d.topic, d.setting, d.expected, d.actual) for d in report.drift] == [
        (topics.events, "replication.factor", ">= 2", "1"),
        (topics.dead_letters, "replication.factor", ">= 2", "1"),
    ]


def test_second_ensure_leaves_everything_unchanged(topics: Topics) -> None:
    specs = topics.specs(replication_factor=1)
    first = ensure_topics(topics.admin, specs, timeout_s=TIMEOUT_S)
    assert first.created == [topics.events, topics.dead_letters]

    second = ensure_topics(topics.admin, specs, timeout_s=TIMEOUT_S)

    assert second.created == []
    assert second.unchanged == [topics.events, topics.dead_letters]
    assert second.drift == []
    assert second.in_sync


def test_drift_is_reported_and_the_live_topic_is_not_altered(topics: Topics) -> None:
    events_spec, _ = topics.specs()
    # Our configs except a one-hour retention, and 2 partitions instead of 4.
    theirs = {**events_spec.config, "retention.ms": "3600000"}
    topics.admin.create_topics(
        [NewTopic(topics.events, num_partitions=2, replication_factor=1, config=theirs)]
    )[topics.events].result(timeout=TIMEOUT_S)

    report = ensure_topics(topics.admin, topics.specs(), timeout_s=TIMEOUT_S)

    assert report.created == [topics.dead_letters]
    assert report.unchanged == [topics.events]
    assert not report.in_sync
    found = {(d.topic, d.setting, d.expected, d.actual) for d in report.drift}
    assert found == {
        (topics.events, "partitions", "4", "2"),
        (topics.events, "retention.ms", "604800000", "3600000"),
    }
    # Not altered: the test's values are still there.
    assert topics.configs(topics.events)["retention.ms"].value == "3600000"
    assert topics.partitions(topics.events) == 2


def test_check_only_creates_nothing(topics: Topics) -> None:
    report = ensure_topics(topics.admin, topics.specs(), create=False, timeout_s=TIMEOUT_S)

    assert report.missing == [topics.events, topics.dead_letters]
    assert report.created == []
    assert not report.in_sync
    assert topics.existing() == set()


def test_topic_created_by_someone_else_meanwhile_counts_as_existing(topics: Topics) -> None:
    """The TOPIC_ALREADY_EXISTS path: the listing said missing, the create found it there."""
    specs = topics.specs()
    ensure_topics(topics.admin, specs, timeout_s=TIMEOUT_S)

    class StaleListing:
        """Lists no topics (as if they appeared after the listing); delegates the rest."""

        def list_topics(self, **kwargs: object) -> object:
            real = topics.admin.list_topics(timeout=TIMEOUT_S)
            if not calls:
                real.topics = {}
            calls.append(1)
            return real

        def __getattr__(self, name: str) -> object:
            return getattr(topics.admin, name)

    calls: list[int] = []
    report = ensure_topics(StaleListing(), specs, timeout_s=TIMEOUT_S)  # type: ignore[arg-type]

    assert report.created == []
    assert report.unchanged == [topics.events, topics.dead_letters]
    assert report.drift == []


# --- the command --------------------------------------------------------------------------


def _auditlog(topics: Topics, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ)
    environment.update(
        AUDITLOG_KAFKA_BOOTSTRAP=topics.bootstrap,
        AUDITLOG_EVENTS_TOPIC=topics.events,
        AUDITLOG_DEAD_LETTER_TOPIC=topics.dead_letters,
        AUDITLOG_DESTINATIONS_TOPIC=topics.destinations,
        AUDITLOG_SINK_PROGRESS_TOPIC=topics.progress,
        AUDITLOG_ACCOUNTS_TOPIC=topics.accounts,
        AUDITLOG_TOPIC_PARTITIONS=str(PARTITIONS),
        **env,
    )
    return run_auditlog(["topics", *args], environment)


def test_command_creates_then_finds_everything_in_order(topics: Topics) -> None:
    first = _auditlog(topics, "ensure")
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("created") == 5

    second = _auditlog(topics, "ensure")
    assert second.returncode == 0, second.stderr
    assert [line.split()[1] for line in second.stdout.splitlines()] == ["ok"] * 5

    shown = _auditlog(topics, "show")
    assert shown.returncode == 0, shown.stderr
    assert f"{topics.events}: {PARTITIONS} partitions, replication factor 1" in shown.stdout
    assert f"{topics.dead_letters}: 3 partitions, replication factor 1" in shown.stdout
    assert "retention.ms = 604800000  (topic)" in shown.stdout
    # The compacted control topics: the destination store, the sinks' progress, the accounts.
    assert f"{topics.destinations}: 3 partitions, replication factor 1" in shown.stdout
    assert f"{topics.progress}: 3 partitions, replication factor 1" in shown.stdout
    assert f"{topics.accounts}: 3 partitions, replication factor 1" in shown.stdout
    assert "cleanup.policy = compact  (topic)" in shown.stdout


def test_command_exits_4_on_drift_and_changes_nothing(topics: Topics) -> None:
    assert _auditlog(topics, "ensure").returncode == 0

    drifted = _auditlog(topics, "ensure", AUDITLOG_EVENTS_RETENTION_HOURS="24")

    assert drifted.returncode == 4, drifted.stderr
    assert "NOT changed" in drifted.stdout
    assert "retention.ms: expected 86400000, found 604800000" in drifted.stdout
    assert "kafka-configs.sh" in drifted.stdout
    assert "retention.ms=86400000" in drifted.stdout
    assert topics.configs(topics.events)["retention.ms"].value == "604800000"


def test_command_check_only_exits_4_on_missing_topics(topics: Topics) -> None:
    checked = _auditlog(topics, "ensure", "--check-only")

    assert checked.returncode == 4, checked.stderr
    assert checked.stdout.count("missing") == 5
    assert topics.existing() == set()
