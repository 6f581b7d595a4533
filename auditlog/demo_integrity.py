"""The demo's tamper-evidence step: every published event appended to its account's Merkle
log, checkpoints signed, and one account's log verified from ClickHouse as ``auditlog
verify`` does (docs/integrity.md).

The signing key is the demo's own: made on first use in the key directory the demo is
given (the local stack's, so a developer's real key store is never touched), and kept
there so later demos extend the same logs under the same key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from auditlog import integrity_wiring, wiring
from auditlog.settings import AuditlogSettings
from integrity.keystore import KeyStore
from integrity.stored_log import read_log
from integrity.verification import Retention, check_log

DEMO_KEY = "auditlog-demo"


@dataclass
class IntegrityReport:
    appended: int = 0
    checkpoints: int = 0
    seconds: float = 0.0
    key: str = ""
    keys_dir: Path | None = None
    account: str = ""
    leaves: int = 0
    verified: bool = False
    findings: list[str] | None = None


def append_and_verify(settings: AuditlogSettings, keys_dir: Path, account: str) -> IntegrityReport:
    """Run the appender until it has caught up, then verify ``account``'s log."""
    store = KeyStore(keys_dir)
    now_ms = time.time_ns() // 1_000_000
    if not store.active_signers(now_ms):
        store.generate(DEMO_KEY, now_ms)
    settings = settings.model_copy(
        update={"integrity_keys_dir": keys_dir, "integrity_checkpoint_interval_s": 1.0}
    )
    appender = integrity_wiring.appender(
        settings, integrity_wiring.signers(store), exit_when_idle_s=2.0
    )
    began = time.monotonic()
    stats = appender.run()
    report = IntegrityReport(
        appended=stats.appended,
        checkpoints=stats.checkpoints,
        seconds=time.monotonic() - began,
        key=", ".join(key.name for key in store.active_signers(now_ms)),
        keys_dir=keys_dir,
        account=account,
    )
    now = datetime.now(UTC)
    client = wiring.clickhouse_client(settings)
    try:
        log = read_log(client, settings.clickhouse_database, account)
    finally:
        client.close()
    retention = None if log.retention_days is None else Retention(log.retention_days, now)
    checked = check_log(log, store.ring(), retention=retention)
    report.leaves = checked.leaves
    report.verified = checked.ok
    report.findings = [finding.line() for finding in checked.findings]
    if not checked.ok:
        raise RuntimeError(f"the log of {account} does not verify: {report.findings[:3]}")
    return report
