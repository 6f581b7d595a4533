"""Tampering with the store, found and named by ``auditlog verify`` (issue 14's tamper
tests); and the viewer's proof of one event, checked as a customer would.

One pipeline for the module, on the real broker and engine: events of several accounts
published through the SDK, stored by ``auditlog consume``, appended and signed by
``auditlog integrity run``. Each test then tampers with one account of its own, as someone
with write access to ClickHouse would (replacing rows: the tables are ReplacingMergeTrees,
so a newer row wins; deleting rows), and runs ``auditlog verify`` as an operator or a
customer would, with the exported public keys.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from auditlog import wiring
from auditlog.settings import AuditlogSettings
from auditlog.viewer_process import running_viewer
from consumers.retention import set_retention
from deploy.stack.endpoints import StackEndpoints
from integrity import merkle
from integrity.checkpoint import Checkpoint, origin_for, sign, verify
from integrity.checkpoint_store import CheckpointStore
from integrity.checkpointer import CheckpointRow
from integrity.keys import KeyRing
from integrity.keystore import KeyStore, parse_public_document, public_document
from integrity.prune_store import ClickHousePruneStore
from integrity.pruner import PrunePolicy, Pruner
from tests.events import valid_event
from tests.stack.viewer_support import drop, viewer_settings
from viewer.dev_tokens import mint_development_token

pytestmark = [pytest.mark.stack, pytest.mark.slow]

ACCOUNTS = [f"tamper-{n}" for n in range(11)]
PER_ACCOUNT = 12
KEY_NAME = "auditlog.tamper-test"


@dataclass
class Pipeline:
    settings: AuditlogSettings
    environment: dict[str, str]
    keys_file: Path
    tmp: Path

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "auditlog.cli", *args],
            env={**os.environ, **self.environment, **(env or {})},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def verify(self, account: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.cli("verify", "--account", account, "--keys", str(self.keys_file), *extra)

    def sql(self, statement: str, **parameters: Any) -> Any:
        client = wiring.clickhouse_client(self.settings)
        try:
            return client.query(statement, parameters=parameters).result_rows
        finally:
            client.close()

    def command(self, statement: str, **parameters: Any) -> None:
        client = wiring.clickhouse_client(self.settings)
        try:
            client.command(statement, parameters=parameters, settings={"mutations_sync": 2})
        finally:
            client.close()

    @property
    def db(self) -> str:
        return self.settings.clickhouse_database

    def event_ids(self, account: str) -> list[str]:
        """The account's events in log order."""
        return [
            str(event_id)
            for (event_id,) in self.sql(
                f"SELECT toString(event_id) FROM {self.db}.integrity_leaves FINAL "
                "WHERE tenant_id = {a:String} ORDER BY leaf_index",
                a=account,
            )
        ]

    def newest_checkpoint(self, account: str) -> str:
        ((note,),) = self.sql(
            f"SELECT note FROM {self.db}.integrity_checkpoints FINAL "
            "WHERE tenant_id = {a:String} ORDER BY size DESC, time DESC LIMIT 1",
            a=account,
        )
        return str(note)


def _events(account: str) -> list[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(hours=1)
    return [
        valid_event(
            tenant_id=account,
            occurred_at=(start + timedelta(seconds=n)).isoformat(),
            resource={"type": "recipe", "id": f"r-{n}", "name": f"Recipe <{n}>"},
            # Every shape of the row read back: a change with both sides, one with a null.
            changes=[
                {"field": "state", "before": "running", "after": "stopped"},
                {"field": "owner", "before": None, "after": f"u-{n}"},
            ],
            details={"reason": "maintenance", "ticket": f"T-{n}"},
        )
        for n in range(PER_ACCOUNT)
    ]


@pytest.fixture(scope="module")
def pipeline(
    stack_endpoints: StackEndpoints, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    tmp = tmp_path_factory.mktemp("tamper")
    settings = viewer_settings(
        stack_endpoints,
        "tamper",
        "dev-secret-of-the-tamper-tests-0123456789",
        integrity_keys_dir=tmp / "keys",
        integrity_checkpoint_interval_s=1.0,
    )
    environment = {
        **settings.environment(),
        "AUDITLOG_INTEGRITY_KEYS_DIR": str(tmp / "keys"),
        "AUDITLOG_LOG_LEVEL": "WARNING",
    }
    built = Pipeline(settings, environment, tmp / "keys.json", tmp)
    try:
        generated = built.cli("keys", "generate", "--name", KEY_NAME)
        assert generated.returncode == 0, generated.stderr
        exported = built.cli("keys", "export")
        assert exported.returncode == 0, exported.stderr
        built.keys_file.write_text(exported.stdout)
        with wiring.audit_producer(settings, client_id="test-tamper") as producer:
            for account in ACCOUNTS:
                for event in _events(account):
                    producer.publish(event)
        for command in (["consume"], ["integrity", "run"]):
            ran = built.cli(*command, "--exit-when-idle", "3")
            assert ran.returncode == 0, ran.stderr
        yield built
    finally:
        drop(settings)


# Tampering statements read the rows to copy in a subquery: in ClickHouse a SELECT's alias
# (``... AS event_id``) is visible in its own WHERE, which would then filter on the new value.


def _findings(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.strip() for line in result.stderr.splitlines() if line.startswith("  ")]


def test_an_untouched_log_verifies(pipeline: Pipeline) -> None:
    account = ACCOUNTS[0]
    result = pipeline.verify(account)
    assert result.returncode == 0, result.stderr
    assert f"{account}: {PER_ACCOUNT} leaves, {PER_ACCOUNT} stored events" in result.stdout
    assert result.stdout.rstrip().endswith("verified")
    assert len(pipeline.event_ids(account)) == PER_ACCOUNT


def test_one_changed_field_is_named(pipeline: Pipeline) -> None:
    account = ACCOUNTS[1]
    target = pipeline.event_ids(account)[4]
    pipeline.command(
        f"INSERT INTO {pipeline.db}.events SELECT * REPLACE ("
        "tuple(actor.type, 'u-someone-else', actor.name, actor.email) AS actor, "
        "now64(3) AS ingested_at) "
        f"FROM (SELECT * FROM {pipeline.db}.events FINAL WHERE event_id = {{id:UUID}})",
        id=target,
    )
    result = pipeline.verify(account)
    assert result.returncode == 1, result.stdout
    assert _findings(result) == [
        f"changed: leaf 4, event {target}: the stored event no longer hashes to its leaf"
    ]


def test_a_deleted_event_is_named(pipeline: Pipeline) -> None:
    account = ACCOUNTS[2]
    target = pipeline.event_ids(account)[7]
    pipeline.command(
        f"ALTER TABLE {pipeline.db}.events DELETE WHERE event_id = {{id:UUID}}", id=target
    )
    result = pipeline.verify(account)
    assert result.returncode == 1
    assert _findings(result) == [
        f"missing: leaf 7, event {target}: the event of this leaf is not stored"
    ]


def test_a_forged_event_is_named(pipeline: Pipeline) -> None:
    account = ACCOUNTS[3]
    source = pipeline.event_ids(account)[0]
    pipeline.command(
        f"INSERT INTO {pipeline.db}.events SELECT * REPLACE ("
        "generateUUIDv4() AS event_id, now64(3) - INTERVAL 1 HOUR AS ingested_at) "
        f"FROM (SELECT * FROM {pipeline.db}.events FINAL WHERE event_id = {{id:UUID}})",
        id=source,
    )
    result = pipeline.verify(account)
    assert result.returncode == 1
    (finding,) = _findings(result)
    assert finding.startswith("inserted: event ")
    assert "in no leaf of the log" in finding


def test_two_swapped_events_are_named(pipeline: Pipeline) -> None:
    account = ACCOUNTS[4]
    first, second = pipeline.event_ids(account)[2:4]
    pipeline.command(
        f"INSERT INTO {pipeline.db}.integrity_leaves SELECT * REPLACE ("
        "if(leaf_index = 2, 3, 2) AS leaf_index) "
        f"FROM (SELECT * FROM {pipeline.db}.integrity_leaves FINAL "
        "WHERE tenant_id = {a:String} AND leaf_index IN (2, 3))",
        a=account,
    )
    result = pipeline.verify(account)
    assert result.returncode == 1
    found = _findings(result)
    assert any(line.startswith(f"moved: leaf 3, event {first}") for line in found), found
    assert any(line.startswith("rewritten: ") for line in found), found
    assert pipeline.event_ids(account)[2:4] == [second, first]


def test_truncating_the_newest_events_is_named(pipeline: Pipeline) -> None:
    account = ACCOUNTS[5]
    newest = pipeline.event_ids(account)[-3:]
    for table in ("events", "integrity_leaves"):
        pipeline.command(
            f"ALTER TABLE {pipeline.db}.{table} DELETE WHERE event_id IN {{ids:Array(UUID)}}",
            ids=newest,
        )
    result = pipeline.verify(account)
    assert result.returncode == 1
    (finding,) = _findings(result)
    assert finding.startswith("rewritten: ")
    assert f"holds {PER_ACCOUNT - 3} leaves" in finding


def test_a_rollback_of_the_whole_store_is_found_with_the_customers_checkpoint(
    pipeline: Pipeline,
) -> None:
    account = ACCOUNTS[6]
    held = pipeline.tmp / f"{account}.checkpoint"
    held.write_text(pipeline.newest_checkpoint(account))
    kept = 5
    dropped = pipeline.event_ids(account)[kept:]
    for table in ("events", "integrity_leaves"):
        pipeline.command(
            f"ALTER TABLE {pipeline.db}.{table} DELETE WHERE event_id IN {{ids:Array(UUID)}}",
            ids=dropped,
        )
    pipeline.command(
        f"ALTER TABLE {pipeline.db}.integrity_checkpoints DELETE "
        "WHERE tenant_id = {a:String} AND size > {kept:UInt64}",
        a=account,
        kept=kept,
    )
    # What is left is consistent in itself: without the customer's checkpoint nothing shows.
    alone = pipeline.verify(account)
    assert alone.returncode == 0, alone.stderr
    result = pipeline.verify(account, "--checkpoint", str(held))
    assert result.returncode == 1
    (finding,) = _findings(result)
    assert finding.startswith("rewritten: ")
    assert f"holds {kept} leaves" in finding


def test_a_checkpoint_forged_with_another_key_is_named(pipeline: Pipeline) -> None:
    account = ACCOUNTS[7]
    other = pipeline.tmp / "other-keys"
    made = pipeline.cli(
        "keys", "generate", "--name", KEY_NAME, env={"AUDITLOG_INTEGRITY_KEYS_DIR": str(other)}
    )
    assert made.returncode == 0, made.stderr
    genuine = pipeline.newest_checkpoint(account)
    body = genuine.split("\n\n", 1)[0] + "\n"
    forged = _sign_with(other, body)
    pipeline.command(
        f"INSERT INTO {pipeline.db}.integrity_checkpoints "
        "SELECT tenant_id, size, root, time + INTERVAL 1 SECOND, {note:String} "
        f"FROM {pipeline.db}.integrity_checkpoints FINAL "
        "WHERE tenant_id = {a:String} ORDER BY size DESC LIMIT 1",
        a=account,
        note=forged,
    )
    result = pipeline.verify(account)
    assert result.returncode == 1
    (finding,) = _findings(result)
    assert finding.startswith("bad-checkpoint: ")


def _sign_with(key_dir: Path, body: str) -> str:
    """A checkpoint of the same size and root as ``body``, signed now by the key of another
    store (a forger's own key under our key's name)."""
    origin, size, root, _ = body.splitlines()
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    checkpoint = Checkpoint(origin, int(size), base64.b64decode(root), now_ms)
    return sign(checkpoint, KeyStore(key_dir).active_signers(now_ms))


def test_the_exported_keys_are_what_a_customer_keeps(pipeline: Pipeline) -> None:
    document = json.loads(pipeline.keys_file.read_text())
    (key,) = document["keys"]
    assert key["name"] == KEY_NAME
    assert key["verifier_key"].startswith(f"{KEY_NAME}+")


def test_the_viewers_proof_of_an_event_verifies_with_the_published_keys(
    pipeline: Pipeline,
) -> None:
    account = ACCOUNTS[8]
    change = pipeline.cli("accounts", "enable", account, env={"AUDITLOG_LOG_LEVEL": "WARNING"})
    assert change.returncode == 0, change.stderr
    target = pipeline.event_ids(account)[5]
    config = wiring.identity_config(pipeline.settings)
    token = mint_development_token(config, account_id=account, user_id="u-1", roles=["admin"])
    with running_viewer(pipeline.environment, log_file=pipeline.tmp / "viewer.log") as viewer:
        status, answer = viewer.get(f"/api/activity_logs/{target}/proof", token)
        assert status == 200, answer
        missing, _ = viewer.get(f"/api/activity_logs/{uuid.uuid4()}/proof", token)
    assert missing == 404
    proof = answer["data"]
    ring = KeyRing(parse_public_document(json.loads(pipeline.keys_file.read_text())))
    checkpoint = verify(proof["checkpoint"], ring, origin=origin_for(account))
    assert checkpoint.size == proof["tree_size"] == PER_ACCOUNT
    ((leaf),) = proof["leaves"]
    assert leaf["index"] == 5
    leaf_hash = base64.b64decode(leaf["leaf_hash"])
    assert merkle.leaf_hash(proof["leaf_data"].encode()) == leaf_hash
    assert json.loads(proof["leaf_data"].split("\n", 1)[1])["event_id"] == target
    path = [base64.b64decode(h) for h in leaf["inclusion_proof"]]
    assert merkle.verify_inclusion(5, checkpoint.size, leaf_hash, path, checkpoint.root)
    assert not merkle.verify_inclusion(4, checkpoint.size, leaf_hash, path, checkpoint.root)


def test_a_signed_prune_statement_passes_expired_events_and_finds_a_deletion(
    pipeline: Pipeline,
) -> None:
    """The appender signed a statement of each account (nothing pruned, the default
    retention); a day later, with 30 days set, the pruner signs one below a checkpoint of
    100 days ago. The events below it are expired; one deleted above it is missing."""
    account = ACCOUNTS[9]
    statements = f"SELECT note FROM {pipeline.db}.integrity_prune_statements FINAL "
    statements += "WHERE tenant_id = {a:String} ORDER BY time"
    (first,) = [str(note) for (note,) in pipeline.sql(statements, a=account)]
    assert first.startswith(f"auditlog-prune/{account}\nbelow 0\nretention 365\n")
    # A key valid since long ago signs a checkpoint of the first 8 leaves 100 days ago.
    old = KeyStore(pipeline.tmp / "old-keys")
    old.generate("auditlog.prune-test", 0)
    ring = KeyRing(
        [*parse_public_document(json.loads(pipeline.keys_file.read_text())), *old.public_keys()]
    )
    keys_file = pipeline.tmp / "keys-with-old.json"
    keys_file.write_text(json.dumps(public_document(list(ring.keys))))
    hashes = [
        bytes(h)
        for (h,) in pipeline.sql(
            f"SELECT leaf_hash FROM {pipeline.db}.integrity_leaves FINAL "
            "WHERE tenant_id = {a:String} ORDER BY leaf_index",
            a=account,
        )
    ]
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    long_ago = now_ms - 100 * 86_400_000
    checkpoint = Checkpoint(origin_for(account), 8, merkle.root(hashes[:8]), long_ago)
    client = wiring.clickhouse_client(pipeline.settings)
    try:
        CheckpointStore(client, pipeline.db).insert(
            [
                CheckpointRow(
                    account,
                    8,
                    checkpoint.root,
                    long_ago,
                    sign(checkpoint, old.active_signers(long_ago)),
                )
            ]
        )
        set_retention(client, account, 30, database=pipeline.db)
        pruner = Pruner(
            ClickHousePruneStore(client, pipeline.db),
            old.active_signers,
            lambda: ring,
            PrunePolicy(min_interval_ms=0),
        )
        (row,) = pruner.sign_due([account], now_ms)
    finally:
        client.close()
    assert (row.below, row.retention_days) == (8, 30)
    ids = pipeline.event_ids(account)
    pipeline.command(
        f"ALTER TABLE {pipeline.db}.events DELETE WHERE event_id IN {{ids:Array(UUID)}}",
        ids=[*ids[:8], ids[10]],
    )
    result = pipeline.cli("verify", "--account", account, "--keys", str(keys_file))
    assert result.returncode == 1, result.stdout
    assert _findings(result) == [
        f"missing: leaf 10, event {ids[10]}: the event of this leaf is not stored"
    ]
    assert "(8 past the retention)" in result.stderr
    assert "retention 30 days, pruned below leaf 8 (signed prune statement of " in result.stderr


def test_a_window_checks_only_the_events_that_occurred_in_it(pipeline: Pipeline) -> None:
    account = ACCOUNTS[10]
    ids = pipeline.event_ids(account)
    occurred = {
        str(event_id): moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        for event_id, moment in pipeline.sql(
            f"SELECT toString(event_id), occurred_at FROM {pipeline.db}.events FINAL "
            "WHERE tenant_id = {a:String}",
            a=account,
        )
    }
    pipeline.command(
        f"ALTER TABLE {pipeline.db}.events DELETE WHERE event_id IN {{ids:Array(UUID)}}",
        ids=[ids[2], ids[7]],
    )
    whole = pipeline.verify(account)
    assert [line.split(":")[1].strip() for line in _findings(whole)] == [
        "leaf 2, event " + ids[2],
        "leaf 7, event " + ids[7],
    ]
    start, end = (occurred[ids[n]].isoformat().replace("+00:00", "Z") for n in (5, 10))
    result = pipeline.verify(account, "--from", start, "--to", end)
    assert result.returncode == 1, result.stdout
    assert _findings(result) == [
        f"missing: leaf 7, event {ids[7]}: the event of this leaf is not stored"
    ]
    assert f"{PER_ACCOUNT} leaves, 4 stored events" in result.stderr
    assert "(findings about events outside it are not reported)" in result.stderr
    before = pipeline.verify(account, "--to", start)
    assert [line.split(",")[0] for line in _findings(before)] == ["missing: leaf 2"]
