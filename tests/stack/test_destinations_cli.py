"""``auditlog destinations`` end to end: the store is the compacted topic of the real
broker, S3 is the stack's S3-compatible server, webhooks go to a local receiver.

The commands run in-process (``auditlog.cli.main``) with settings from environment
variables. The destinations topic is the session's (default name, shared by every test):
each test uses destination ids and tenants of its own. The events topic is this module's,
so the audit events of the changes can be read back with a fresh consumer.
"""

from __future__ import annotations

import gzip
import io
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from accounts.changes import next_record
from auditlog import startup_checks, wiring
from auditlog.cli import main
from auditlog.settings import AuditlogSettings
from deploy.stack import s3
from deploy.stack.endpoints import S3Keys, StackEndpoints
from deploy.stack.local_stack import DEFAULT_BUCKET
from runtime.compacted_table import CompactedTable
from runtime.topic_admin import ensure_topics
from sinks.destinations.model import Destination
from sinks.destinations.secrets import generate_key
from sinks.destinations.store import CatalogChange, DestinationCatalog
from sinks.signing import verify
from tests.stack.topic_reads import tenant_events, wait_for_leaders
from tests.unit.http_receiver import Receiver, Reply

pytestmark = pytest.mark.stack

PLAINTEXT = "whsec-stack-never-printed-9d2c"
EVENTS_TOPIC = f"test.destinations-cli.{uuid.uuid4().hex[:8]}"
PARTITIONS = 3
WAIT_S = 20.0


@dataclass
class Cli:
    """Runs ``auditlog`` in-process; ``run`` returns (exit code, stdout, stderr)."""

    settings: AuditlogSettings
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch
    s3_keys: S3Keys

    def run(self, *argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            self.monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(["destinations", *argv])
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *argv: str, stdin: str | None = None) -> str:
        code, out, err = self.run(*argv, stdin=stdin)
        assert code == 0, err
        return out

    def stored(self, destination_id: str) -> Destination | None:
        return wiring.destination_store(self.settings).get(destination_id)

    def raw_value(self, destination_id: str) -> bytes:
        table = CompactedTable(
            wiring.kafka_connection(self.settings),
            self.settings.destinations_topic,
            client_id="test-raw",
        )
        try:
            return table.load().get(destination_id.encode(), b"")
        finally:
            table.close()


@pytest.fixture(scope="module")
def _topics(stack_endpoints: StackEndpoints) -> None:
    settings = AuditlogSettings(
        kafka_bootstrap=stack_endpoints.kafka_bootstrap,
        events_topic=EVENTS_TOPIC,
        dead_letter_topic=EVENTS_TOPIC + ".dlq",
        topic_partitions=PARTITIONS,
    )
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    specs = wiring.topic_specs(settings)
    ensure_topics(admin, specs, create=True, timeout_s=30)
    wait_for_leaders(
        settings.kafka_bootstrap, {spec.name: spec.partitions for spec in specs}, WAIT_S
    )


@pytest.fixture
def cli(
    _topics: None,
    stack_endpoints: StackEndpoints,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    for name, value in {
        "AUDITLOG_KAFKA_BOOTSTRAP": stack_endpoints.kafka_bootstrap,
        "AUDITLOG_S3_ENDPOINT": stack_endpoints.s3_endpoint,
        "AUDITLOG_EVENTS_TOPIC": EVENTS_TOPIC,
        "AUDITLOG_DEAD_LETTER_TOPIC": EVENTS_TOPIC + ".dlq",
        "AUDITLOG_TOPIC_PARTITIONS": str(PARTITIONS),
        "AUDITLOG_SECRETS_KEY": generate_key(),
        "AUDITLOG_SINK_ALLOW_LOCAL": "true",
        "AUDITLOG_SINK_REQUEST_TIMEOUT_S": "5",
        # Named outside the default prefix: allowed by the operator's list.
        "AUDITLOG_SINK_SECRET_REF_NAMES": "HOOK_SECRET,TEST_S3_ACCESS_KEY,TEST_S3_SECRET_KEY",
        "HOOK_SECRET": PLAINTEXT,
        "TEST_S3_ACCESS_KEY": stack_endpoints.s3_keys.access_key,
        "TEST_S3_SECRET_KEY": stack_endpoints.s3_keys.secret_key,
    }.items():
        monkeypatch.setenv(name, value)
    return Cli(AuditlogSettings(), capsys, monkeypatch, stack_endpoints.s3_keys)


@pytest.fixture
def catalog(cli: Cli) -> Iterator[DestinationCatalog]:
    """A worker's view of the store, loaded before the test changes anything."""
    found = wiring.destination_catalog(cli.settings, client_id="test-catalog")
    found.load()
    yield found
    found.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def _ids() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"tenant-{suffix}", suffix


def _next_change(
    catalog: DestinationCatalog, destination_id: str, until: Callable[[CatalogChange], bool]
) -> CatalogChange:
    """Refresh the catalog until a change of ``destination_id`` satisfies ``until``."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for change in catalog.refresh(timeout_s=0.5):
            if change.destination_id == destination_id and until(change):
                return change
    raise AssertionError(f"no matching change of {destination_id} within {WAIT_S} s")


def _events(settings: AuditlogSettings, tenant: str, count: int) -> list[dict[str, Any]]:
    """The audit events of ``tenant`` in the events topic (waits for ``count`` of them)."""
    return tenant_events(settings.kafka_bootstrap, EVENTS_TOPIC, PARTITIONS, tenant, count, WAIT_S)


def _check_events(events: list[dict[str, Any]], tenant: str, destination_id: str) -> None:
    for event in events:
        assert event["tenant_id"] == tenant
        assert event["category"] == "audit_streaming"
        assert event["resource"]["type"] == "audit_stream"
        assert event["resource"]["id"] == destination_id
        assert all(isinstance(value, str) for value in event["details"].values())


# --- the round trip -----------------------------------------------------------------------


def test_webhook_round_trip_reaches_a_running_catalog_and_publishes_every_change(
    cli: Cli, catalog: DestinationCatalog, receiver: Receiver
) -> None:
    tenant, suffix = _ids()
    destination_id = f"hook-{suffix}"
    url = receiver.url("/audit")

    out = cli.ok(
        "add", tenant, "--kind", "webhook", "--id", destination_id, "--url", url,
        "--secret-env", "HOOK_SECRET", "--header", "X-Env: test", "--actor", "user:u-admin",
    )  # fmt: skip
    assert f"added webhook destination {destination_id} of tenant {tenant}" in out
    assert "published audit_stream.destination_added" in out
    added = _next_change(catalog, destination_id, lambda c: c.added)
    assert added.after is not None
    assert added.after.deliverable
    assert catalog.for_tenant(tenant) == (added.after,)

    listed = cli.ok("list", "--tenant", tenant)
    [header, row] = listed.splitlines()
    assert header.split()[:5] == ["ID", "TENANT", "KIND", "STATE", "TARGET"]
    host = url.split("/")[2]
    assert row.split() == [destination_id, tenant, "webhook", "active", host, "all", "events"]

    shown = cli.ok("show", destination_id)
    assert "signing secret: encrypted" in shown
    assert "headers: X-Env: test" in shown
    assert "health:" in shown

    out = cli.ok(
        "update", destination_id, "--name", "Security lake", "--include-category", "recipes",
        "--max-records", "50",
    )  # fmt: skip
    assert "(revision 2)" in out
    updated = _next_change(catalog, destination_id, lambda c: c.after is not None)
    assert updated.after is not None
    assert updated.after.revision == 2
    assert updated.after.filters.include_categories == {"recipes"}
    assert updated.after.batch.max_records == 50
    assert updated.after.target == added.after.target  # the secret was not touched
    assert "nothing changed" in cli.ok("update", destination_id, "--name", "Security lake")

    cli.ok("pause", destination_id, "--reason", "maintenance window")
    paused = _next_change(catalog, destination_id, lambda c: c.after is not None)
    assert paused.after is not None
    assert paused.after.state == "paused"
    assert not paused.after.deliverable
    assert "paused already" in cli.ok("pause", destination_id)
    assert "state: paused (maintenance window)" in cli.ok("show", destination_id)

    cli.ok("resume", destination_id)
    resumed = _next_change(catalog, destination_id, lambda c: c.after is not None)
    assert resumed.after is not None
    assert resumed.after.state == "active"
    assert resumed.after.revision == 4

    assert "removed" in cli.ok("remove", destination_id)
    _next_change(catalog, destination_id, lambda c: c.removed)
    assert catalog.get(destination_id) is None
    assert catalog.for_tenant(tenant) == ()
    code, _, err = cli.run("show", destination_id)
    assert (code, err) == (4, f"auditlog: no destination {destination_id}\n")
    assert cli.run("remove", destination_id)[0] == 4

    events = _events(cli.settings, tenant, 5)
    assert [e["action"] for e in events] == [
        "audit_stream.destination_added",
        "audit_stream.destination_updated",
        "audit_stream.destination_paused",
        "audit_stream.destination_resumed",
        "audit_stream.destination_removed",
    ]
    _check_events(events, tenant, destination_id)
    assert events[0]["actor"] == {"type": "user", "id": "u-admin", "name": None, "email": None}
    assert events[0]["details"] == {
        "destination_type": "webhook",
        "scope": "account",
        "state": "active",
    }
    assert events[1]["details"] == {
        "changed_fields": "name,filters.include_categories,batch.max_records"
    }
    assert events[2]["details"] == {"reason": "maintenance window"}
    assert events[4]["details"] == {"destination_type": "webhook"}


def test_secrets_are_never_printed_nor_stored_in_clear(cli: Cli, receiver: Receiver) -> None:
    tenant, suffix = _ids()
    sealed, referenced = f"hook-sealed-{suffix}", f"hook-ref-{suffix}"
    outputs = [
        cli.run(
            "add", tenant, "--kind", "webhook", "--id", sealed, "--url", receiver.url(),
            "--secret-stdin", stdin=PLAINTEXT + "\n",
        ),
        cli.run(
            "add", tenant, "--kind", "webhook", "--id", referenced, "--url", receiver.url(),
            "--secret-ref", "env:HOOK_SECRET",
        ),
        cli.run("show", sealed),
        cli.run("show", referenced),
        cli.run("list", "--tenant", tenant),
        cli.run("update", sealed, "--secret-env", "HOOK_SECRET"),
        cli.run("test", sealed),
        cli.run("test", referenced),
    ]  # fmt: skip
    for code, out, err in outputs:
        assert code == 0, err
        assert PLAINTEXT not in out
        assert PLAINTEXT not in err
    assert "signing secret: encrypted" in outputs[2][1]
    assert "signing secret: reference env:HOOK_SECRET" in outputs[3][1]
    assert "target.signing_secret" in outputs[5][1]
    for destination_id in (sealed, referenced):
        raw = cli.raw_value(destination_id)
        assert raw
        assert PLAINTEXT.encode() not in raw
    # Both test deliveries were signed with the secret the workers will use.
    assert len(receiver.requests) == 2
    for request in receiver.requests:
        verify(request.body, request.headers, PLAINTEXT.encode())


# --- test -----------------------------------------------------------------------------------


def test_test_reports_the_webhook_answer_and_publishes_it(cli: Cli, receiver: Receiver) -> None:
    tenant, suffix = _ids()
    good, bad = f"hook-good-{suffix}", f"hook-bad-{suffix}"
    receiver.answer("/bad", Reply(status=410, body=b"gone for good"))
    for destination_id, path, fmt in ((good, "/good", "json_array"), (bad, "/bad", "ndjson")):
        cli.ok(
            "add", tenant, "--kind", "webhook", "--id", destination_id, "--url",
            receiver.url(path), "--secret-ref", "env:HOOK_SECRET", "--format", fmt,
            "--compression", "none",
        )  # fmt: skip

    out = cli.ok("test", good)
    assert f"{good} accepted the sample event: HTTP 200" in out
    [request] = [r for r in receiver.requests if r.path == "/good"]
    [event] = json.loads(request.body)
    assert event["tenant_id"] == tenant
    assert event["action"] == "audit_stream.destination_tested"
    assert event["resource"]["id"] == good

    code, out, err = cli.run("test", bad)
    assert code == 1
    assert f"auditlog: {bad} did not accept the sample event:" in err
    assert "410" in err
    assert "published audit_stream.destination_tested" in out

    events = [e for e in _events(cli.settings, tenant, 4) if e["action"].endswith("_tested")]
    assert [(e["resource"]["id"], e["details"]["result"]) for e in events] == [
        (good, "succeeded"),
        (bad, "failed"),
    ]
    assert events[0]["outcome"]["status"] == "success"
    assert events[1]["outcome"]["status"] == "failure"
    assert "410" in events[1]["details"]["error"]


# --- S3 and the ownership challenge --------------------------------------------------------


def _s3(cli: Cli) -> Any:
    return s3.client(cli.settings.s3_endpoint, cli.s3_keys)


def test_s3_add_writes_a_challenge_and_delivers_only_after_verify(
    cli: Cli, catalog: DestinationCatalog
) -> None:
    tenant, suffix = _ids()
    destination_id = f"s3-{suffix}"
    out = cli.ok(
        "add", tenant, "--kind", "s3", "--id", destination_id, "--bucket", DEFAULT_BUCKET,
        "--endpoint-url", cli.settings.s3_endpoint, "--access-key-id-ref",
        "env:TEST_S3_ACCESS_KEY", "--secret-access-key-ref", "env:TEST_S3_SECRET_KEY",
    )  # fmt: skip
    assert "(pending_verification)" in out
    key = f"auditlog/{tenant}/{destination_id}/auditlog-ownership-challenge-{destination_id}.txt"
    assert f"s3://{DEFAULT_BUCKET}/{key}" in out
    body = _s3(cli).get_object(Bucket=DEFAULT_BUCKET, Key=key)["Body"].read()
    token = body.decode().splitlines()[0]
    assert token not in out
    added = _next_change(catalog, destination_id, lambda c: c.added)
    assert added.after is not None
    assert added.after.state == "pending_verification"
    assert not added.after.deliverable
    assert "ownership: pending" in cli.ok("show", destination_id)

    code, _, err = cli.run("verify", destination_id, "not-the-token")
    assert code == 2
    assert "does not match" in err
    stored = cli.stored(destination_id)
    assert stored is not None
    assert stored.state == "pending_verification"

    # Pausing and resuming before verification does not skip it.
    cli.ok("pause", destination_id)
    cli.ok("resume", destination_id)
    stored = cli.stored(destination_id)
    assert stored is not None
    assert stored.state == "pending_verification"

    out = cli.ok("verify", destination_id, "-", stdin=token + "\n")
    assert "state active" in out
    verified = _next_change(
        catalog, destination_id, lambda c: bool(c.after and c.after.deliverable)
    )
    assert verified.after is not None
    assert verified.after.ownership is not None
    assert verified.after.ownership.verified_at is not None
    assert cli.run("verify", destination_id, token)[0] == 2  # once is enough

    out = cli.ok("test", destination_id)
    assert f"accepted the sample event: s3://{DEFAULT_BUCKET}/auditlog/{tenant}/" in out
    object_key = out.split(f"s3://{DEFAULT_BUCKET}/")[1].split()[0]
    assert f"_{destination_id}_-1_" in object_key
    written = _s3(cli).get_object(Bucket=DEFAULT_BUCKET, Key=object_key)["Body"].read()
    [line] = gzip.decompress(written).decode().splitlines()
    assert json.loads(line)["tenant_id"] == tenant

    events = _events(cli.settings, tenant, 5)
    assert [e["action"] for e in events] == [
        "audit_stream.destination_added",
        "audit_stream.destination_paused",
        "audit_stream.destination_resumed",
        "audit_stream.destination_verified",
        "audit_stream.destination_tested",
    ]
    _check_events(events, tenant, destination_id)
    assert events[0]["details"]["state"] == "pending_verification"
    assert events[3]["details"] == {"bucket": DEFAULT_BUCKET}


def test_moving_an_s3_destination_to_another_prefix_asks_for_a_new_proof(cli: Cli) -> None:
    tenant, suffix = _ids()
    destination_id = f"s3-move-{suffix}"
    cli.ok(
        "add", tenant, "--kind", "s3", "--id", destination_id, "--bucket", DEFAULT_BUCKET,
        "--endpoint-url", cli.settings.s3_endpoint, "--access-key-id-ref",
        "env:TEST_S3_ACCESS_KEY", "--secret-access-key-ref", "env:TEST_S3_SECRET_KEY",
    )  # fmt: skip
    first = cli.stored(destination_id)
    assert first is not None
    assert first.ownership is not None
    token = (
        _s3(cli)
        .get_object(Bucket=DEFAULT_BUCKET, Key=first.ownership.challenge_key)["Body"]
        .read()
        .decode()
        .splitlines()[0]
    )
    cli.ok("verify", destination_id, token)

    out = cli.ok("update", destination_id, "--prefix-template", "moved/{destination_id}")
    assert "target.prefix_template" in out
    assert "ownership" in out
    moved = cli.stored(destination_id)
    assert moved is not None
    assert moved.state == "pending_verification"
    assert moved.ownership is not None
    assert moved.ownership.challenge_key.startswith(f"moved/{destination_id}/")


def test_an_unreachable_bucket_stores_nothing(cli: Cli) -> None:
    tenant, suffix = _ids()
    destination_id = f"s3-missing-{suffix}"
    code, _, err = cli.run(
        "add", tenant, "--kind", "s3", "--id", destination_id, "--bucket", "no-such-bucket-x1",
        "--endpoint-url", cli.settings.s3_endpoint, "--access-key-id-ref",
        "env:TEST_S3_ACCESS_KEY", "--secret-access-key-ref", "env:TEST_S3_SECRET_KEY",
    )  # fmt: skip
    assert code == 1
    assert "s3://no-such-bucket-x1/" in err
    assert cli.stored(destination_id) is None


# --- replay and failures --------------------------------------------------------------------


def test_replay_stores_the_offsets_of_the_time_given(
    cli: Cli, catalog: DestinationCatalog, receiver: Receiver
) -> None:
    tenant, suffix = _ids()
    destination_id = f"hook-replay-{suffix}"
    cli.ok(
        "add", tenant, "--kind", "webhook", "--id", destination_id, "--url", receiver.url(),
        "--secret-ref", "env:HOOK_SECRET",
    )  # fmt: skip

    out = cli.ok("replay", destination_id, "--since", "1h")
    assert f"of {destination_id} from" in out
    replaying = _next_change(catalog, destination_id, lambda c: bool(c.after and c.after.replay))
    assert replaying.after is not None
    request = replaying.after.replay
    assert request is not None
    # Everything in this module's topic was written within the hour: from the start.
    assert request.offsets == dict.fromkeys(range(PARTITIONS), 0)

    consumer = Consumer({"bootstrap.servers": cli.settings.kafka_bootstrap, "group.id": "unused"})
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(EVENTS_TOPIC, p), timeout=10)[1]
        for p in range(PARTITIONS)
    }
    consumer.close()
    cli.ok("replay", destination_id, "--since", datetime.now(UTC).isoformat())
    later = cli.stored(destination_id)
    assert later is not None
    assert later.replay is not None
    assert later.replay.id != request.id
    assert later.replay.offsets == ends  # nothing at or after now: each partition's end

    events = [e for e in _events(cli.settings, tenant, 3) if "replay" in e["action"]]
    assert [e["details"]["replay_id"] for e in events] == [request.id, later.replay.id]
    assert events[0]["action"] == "audit_stream.destination_replay_requested"
    assert events[0]["details"]["from_log_start"] == "false"


def test_a_change_whose_event_cannot_be_published_exits_5_and_stays(
    cli: Cli, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, suffix = _ids()
    destination_id = f"hook-unpublished-{suffix}"
    cli.ok(
        "add", tenant, "--kind", "webhook", "--id", destination_id, "--url", receiver.url(),
        "--secret-ref", "env:HOOK_SECRET",
    )  # fmt: skip
    # The broker does not create topics on demand: events to a missing topic fail. The
    # command checks the topic at startup (exit 11); here it disappears after the check.
    monkeypatch.setenv("AUDITLOG_EVENTS_TOPIC", f"test.missing.{suffix}")
    monkeypatch.setattr(startup_checks, "check_kafka", lambda *_a, **_k: None)
    monkeypatch.setenv("AUDITLOG_PRODUCER_DELIVERY_TIMEOUT_S", "3")

    code, out, err = cli.run("pause", destination_id)

    assert code == 5, err
    assert f"paused {destination_id}" in out
    assert "the change is stored, but its audit event was not published" in err
    stored = cli.stored(destination_id)
    assert stored is not None
    assert stored.state == "paused"


def test_a_partner_destination_publishes_its_changes_to_the_partner_and_its_accounts(
    cli: Cli, receiver: Receiver
) -> None:
    suffix = uuid.uuid4().hex[:8]
    partner, a1, a2 = f"partner-{suffix}", f"acct1-{suffix}", f"acct2-{suffix}"
    accounts = wiring.account_store(cli.settings)
    try:
        for account in (a1, a2):
            record = next_record(
                None, account, updated_at=datetime.now(UTC), updated_by="test", partner_id=partner
            )
            assert record is not None
            accounts.put(record, expected_revision=0)
    finally:
        accounts.close()
    destination_id = f"hook-p-{suffix}"

    out = cli.ok(
        "add", "--partner", partner, "--kind", "webhook", "--id", destination_id,
        "--url", receiver.url("/p"), "--secret-env", "HOOK_SECRET", "--exclude-account", a2,
    )  # fmt: skip
    assert f"of partner {partner}" in out
    assert "published audit_stream.destination_added to 1 managed accounts" in out
    listed = cli.ok("list", "--tenant", partner)
    assert f"partner:{partner}" in listed
    assert f"-account:{a2}" in listed
    cli.ok("update", destination_id, "--exclude-account", "")
    cli.ok("replay", destination_id, "--since", "1h", "--account", a2)

    partner_events = _events(cli.settings, partner, 3)
    assert [e["action"] for e in partner_events] == [
        "audit_stream.destination_added",
        "audit_stream.destination_updated",
        "audit_stream.destination_replay_requested",
    ]
    assert partner_events[0]["details"]["scope"] == "partner"
    first = _events(cli.settings, a1, 2)
    assert [e["action"] for e in first] == [
        "audit_stream.destination_added",
        "audit_stream.destination_updated",
    ]
    assert first[0]["details"]["partner_account_id"] == partner
    second = _events(cli.settings, a2, 2)
    assert [e["action"] for e in second] == [
        "audit_stream.destination_updated",  # the exclusion was lifted: it concerns a2
        "audit_stream.destination_replay_requested",
    ]
    assert second[1]["details"]["accounts"] == a2
