"""The stack's endpoints and S3 keys: the export lines give the keys under names a
destination may reference with the product's default settings, and no ``repr`` shows them."""

from __future__ import annotations

from pathlib import Path

from auditlog import wiring
from auditlog.settings import AuditlogSettings
from deploy.stack import s3
from deploy.stack.endpoints import S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV, S3Keys, StackEndpoints

ENDPOINTS = StackEndpoints(
    "127.0.0.1:19092",
    "http://127.0.0.1:18123",
    "http://127.0.0.1:19000",
    S3Keys("auditlog-dev", "dev-secret-never-shown"),
    S3Keys("auditlog-root", "root-secret-never-shown"),
)


def test_the_export_lines_carry_the_development_keys_under_referenceable_names() -> None:
    exports = dict(line.removeprefix("export ").split("=", 1) for line in ENDPOINTS.exports())
    assert exports[S3_ACCESS_KEY_ENV] == "auditlog-dev"
    assert exports[S3_SECRET_KEY_ENV] == "dev-secret-never-shown"
    assert "root-secret-never-shown" not in "\n".join(ENDPOINTS.exports())
    policy = wiring.reference_policy(AuditlogSettings())
    for name in (S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV):
        assert policy.check(f"env:{name}") == name


def test_no_repr_shows_a_key() -> None:
    shown = repr(ENDPOINTS)
    assert "never-shown" not in shown
    assert "auditlog-dev" not in shown
    assert "127.0.0.1:19000" in shown


def test_keys_are_read_without_being_made_and_made_whole(tmp_path: Path) -> None:
    assert s3.existing_keys(tmp_path) is None
    assert list(tmp_path.iterdir()) == [], "a reader never writes keys"
    root, user = s3.stack_keys(tmp_path)
    assert s3.existing_keys(tmp_path) == (root, user)
    assert s3.stack_keys(tmp_path) == (root, user), "made once, kept"
    [keys_file] = tmp_path.iterdir()  # no partial file left beside it
    assert keys_file.stat().st_mode & 0o777 == 0o600
