"""The integrity appender's signing keys (``AUDITLOG_INTEGRITY_KEYS_DIR``), when a key
store is configured: keys present, which signs now, and its private key usable."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from auditlog.doctor.model import CheckResult, Problem, Status, count, result
from integrity.keys import KeyFormatError
from integrity.keystore import METADATA_FILE, KeyStore, KeyStoreError

NAME = "integrity keys"


def configured(directory: Path) -> bool:
    """A key store is in use when its public document exists."""
    return (directory / METADATA_FILE).exists()


def check_keys(directory: Path, now_ms: int) -> CheckResult:
    """Reads the key store's files (the edge is the file system); no network."""
    store = KeyStore(directory)
    if not configured(directory):
        return result(NAME, f"no key store at {directory}: the integrity log is not in use")
    try:
        listing = store.listing()
        active = store.active_signers(now_ms)
    except (KeyStoreError, KeyFormatError) as exc:
        return result(
            NAME,
            f"key store at {directory} unusable",
            [Problem(Status.FAIL, str(exc), "correct the file named (`auditlog keys list`)")],
        )
    names = [stored.key.name for stored in listing]
    if not active:
        return result(
            NAME,
            f"{count(len(listing), 'key')} at {directory}, none valid now",
            [
                Problem(
                    Status.FAIL,
                    "no signing key is valid now: the appender refuses to start (exit 4)",
                    "`auditlog keys rotate --name NAME` (or `auditlog keys generate --name "
                    "NAME` for an empty store)",
                )
            ],
            keys=names,
        )
    current = ", ".join(signer.name for signer in active)
    ends = [s.not_after_ms for s in active if s.not_after_ms is not None]
    problems = []
    if ends and len(ends) == len(active):
        until = datetime.fromtimestamp(max(ends) / 1000, UTC).isoformat(timespec="seconds")
        problems.append(
            Problem(
                Status.WARN,
                f"every active key ends by {until} and no later key exists",
                "`auditlog keys rotate --name NAME` before then",
            )
        )
    return result(
        NAME,
        f"{count(len(listing), 'key')} at {directory}; signing now: {current}",
        problems,
        keys=names,
        current=[signer.name for signer in active],
    )
