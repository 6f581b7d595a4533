"""The integrity appender against the real broker and engine: one log per account, in
Kafka order, through a crash between insert and commit and through a rebalance."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from integrity.keystore import KeyStore
from tests.stack import integrity_support as support
from tests.stack.threads import in_thread
from tests.stack.writer_support import PARTITIONS, Pipeline, publish
from tests.waiting import wait_until
from tests.withholding_proxy import Request, WithholdingProxy

pytestmark = [pytest.mark.stack, pytest.mark.slow]

WAIT_S = 120.0
TENANTS = 8


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return support.key_store(tmp_path / "keys")


def test_every_record_is_a_leaf_of_its_account_in_kafka_order(
    pipeline: Pipeline, keys: KeyStore
) -> None:
    publish(pipeline, 5_000, seed=11, tenants=TENANTS)
    stats = support.appender(pipeline, keys, exit_when_idle_s=2.0).run()
    assert (stats.records, stats.appended, stats.skipped) == (5_000, 5_000, 0)
    records = support.assert_one_log_per_account(pipeline, keys.ring())
    assert len(records) == TENANTS
    assert stats.checkpoints >= TENANTS

    # A second run over the same records appends nothing and signs nothing new.
    again = support.appender(pipeline, keys, exit_when_idle_s=1.0).run()
    assert (again.appended, again.checkpoints) == (0, 0)


def _heads_insert(request: Request) -> bool:
    """The appender's inserts of account heads (the second insert of each batch): the only
    requests whose deduplication token starts with the heads table's name."""
    return "insert_deduplication_token=integrity_heads-" in request.target


def _committed(pipeline: Pipeline) -> int:
    consumer = Consumer(
        {"bootstrap.servers": pipeline.bootstrap, "group.id": support.integrity_group(pipeline)}
    )
    try:
        offsets = consumer.committed(
            [TopicPartition(pipeline.topic, p) for p in range(PARTITIONS)], timeout=30
        )
    finally:
        consumer.close()
    return sum(max(tp.offset, 0) for tp in offsets)


def test_sigkill_between_insert_and_commit_then_restart_makes_no_fork(
    pipeline: Pipeline, keys: KeyStore
) -> None:
    """A first run signs checkpoints of the first 2,000 events. The same accounts publish
    8,000 more (the same generated events again: a replay published twice, every record
    a leaf). Then ``auditlog integrity
    run`` is killed with SIGKILL in the middle of a backlog, right after ClickHouse stored
    a batch's heads and before the appender heard so (so before it committed): a proxy in
    front of ClickHouse answers four heads inserts and withholds the fifth. The next run
    appends the rest: every record once, indexes unique, the earlier checkpoints prefixes
    of the final log. The streamed copy in the topic (integrity records) lists every leaf,
    contiguously, the replayed ones identical."""
    publish(pipeline, 2_000, seed=12, tenants=TENANTS)
    support.appender(pipeline, keys, exit_when_idle_s=1.0, publish=True).run()
    early = {t: len(r) for t, r in support.kafka_records(pipeline).items()}
    publish(pipeline, 8_000, seed=12, tenants=TENANTS)  # the same accounts
    command = [sys.executable, "-m", "auditlog.cli", "integrity", "run"]
    with WithholdingProxy(pipeline.clickhouse_url, _heads_insert, let_through=4) as proxy:
        env = {**os.environ, **support.env(pipeline, keys), "AUDITLOG_CLICKHOUSE_URL": proxy.url}
        first = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            proxy.wait_withheld(first, WAIT_S)  # the fifth batch's heads landed
        finally:
            first.send_signal(signal.SIGKILL)
            _out, err = first.communicate(timeout=30)
        assert proxy.withheld == 1, err.decode()[-3000:]
    rows_before = support.leaf_rows(pipeline)
    assert 2_000 < rows_before < 10_000, "killed in the middle of the backlog"
    assert _committed(pipeline) < rows_before, "a stored batch was not committed"

    second = subprocess.run(
        [*command, "--exit-when-idle", "3"],
        env={**os.environ, **support.env(pipeline, keys)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert second.returncode == 0, second.stderr
    records = support.assert_one_log_per_account(pipeline, keys.ring())
    assert sum(map(len, records.values())) == 10_000
    signed = support.checkpoints(pipeline, keys.ring())
    for tenant, size in early.items():  # signed before the crash, a prefix of the log now
        assert size in {note.size for note in signed[tenant]}, tenant
    assert all(len(records[tenant]) > size for tenant, size in early.items())
    # The streamed copy survived the crash: every leaf listed, duplicates identical.
    support.assert_copies_cover(pipeline, records, keys.ring())


def test_two_appenders_in_one_group_keep_one_log_per_account(
    pipeline: Pipeline, keys: KeyStore
) -> None:
    """The first runs alone; the second joins (a rebalance moves partitions to it) and both
    append while more events arrive; then the second leaves (its partitions go back, from
    the stored heads and committed offsets) while more arrive again. The same accounts
    publish in every phase."""
    publish(pipeline, 4_000, seed=14, tenants=TENANTS)
    first = support.appender(pipeline, keys, batch_max_records=300)
    second = support.appender(pipeline, keys, batch_max_records=300)
    first_thread, first_errors = in_thread(first.run, "first")
    second_thread: threading.Thread | None = None
    second_errors: list[BaseException] = []

    def appended() -> int:  # distinct leaves stored (a replay after a revocation counts once)
        return support.leaf_count(pipeline)

    try:
        wait_until(lambda: first.stats.appended > 0, WAIT_S, "the first to append")
        second_thread, second_errors = in_thread(second.run, "second")
        wait_until(
            lambda: bool(first.assigned) and bool(second.assigned), WAIT_S, "both to get partitions"
        )
        assert not set(first.assigned) & set(second.assigned)
        publish(pipeline, 4_000, seed=14, tenants=TENANTS)
        wait_until(lambda: appended() >= 8_000, WAIT_S, "both phases appended")
        second.stop()
        second_thread.join(timeout=60)
        publish(pipeline, 4_000, seed=14, tenants=TENANTS)
        wait_until(lambda: len(first.assigned) == PARTITIONS, WAIT_S, "the survivor to take all")
        wait_until(lambda: appended() >= 12_000, WAIT_S, "every record appended")
    finally:
        first.stop()
        second.stop()
        first_thread.join(timeout=60)
        if second_thread is not None:
            second_thread.join(timeout=60)
    assert first_errors == []
    assert second_errors == []
    records = support.assert_one_log_per_account(pipeline, keys.ring())
    assert sum(map(len, records.values())) == 12_000


def test_sigterm_stores_commits_and_signs_what_is_pending_then_exits_0(
    pipeline: Pipeline, keys: KeyStore
) -> None:
    publish(pipeline, 3_000, seed=16, tenants=TENANTS)
    env = {
        **os.environ,
        **support.env(pipeline, keys),
        "AUDITLOG_INTEGRITY_BATCH_MAX_RECORDS": "200",
        "AUDITLOG_INTEGRITY_FLUSH_INTERVAL_S": "600",  # only the stop stores the last batches
        "AUDITLOG_INTEGRITY_CHECKPOINT_INTERVAL_S": "600",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "auditlog.cli", "integrity", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Every full batch stored: each of the 6 partitions holds back fewer than 200.
        wait_until(lambda: support.leaf_rows(pipeline) >= 1_806, WAIT_S, "full batches stored")
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-3000:]
    read = int(re.search(r"records: (\d+), appended: \1,", out)[1])  # type: ignore[index]
    assert _committed(pipeline) == read, "everything read was stored, then committed"
    stored = support.stored_leaves(pipeline)
    assert sum(map(len, stored.values())) == read
    signed = support.checkpoints(pipeline, keys.ring())
    assert {t: notes[-1].size for t, notes in signed.items()} == {
        t: len(leaves) for t, leaves in stored.items()
    }, "the accounts that grew are signed on the way out"

    finish = subprocess.run(
        [sys.executable, "-m", "auditlog.cli", "integrity", "run", "--exit-when-idle", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finish.returncode == 0, finish.stderr
    support.assert_one_log_per_account(pipeline, keys.ring())
