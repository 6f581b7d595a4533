"""What the deployment files' tests need to know of the settings: every ``AUDITLOG_*``
variable, and which of them are secrets (never a literal value in a deployment file)."""

from __future__ import annotations

import re
import typing

from pydantic import SecretStr

from auditlog.settings import AuditlogSettings

VARIABLES = AuditlogSettings.variables()
VARIABLE_NAME = re.compile(r"\bAUDITLOG_[A-Z0-9_]+\b")

# Secrets the settings type as plain strings: the Fernet keys of destination secrets.
_PLAIN_SECRETS = frozenset({"AUDITLOG_SECRETS_KEY"})


def _is_secret(annotation: object) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


SECRET_VARIABLES = _PLAIN_SECRETS | frozenset(
    f"AUDITLOG_{name.upper()}"
    for name, field in AuditlogSettings.model_fields.items()
    if _is_secret(field.annotation)
)


def unknown_variables(names: typing.Iterable[str]) -> list[str]:
    """The ``AUDITLOG_*`` names of ``names`` that no setting reads (typos, removed ones)."""
    return sorted({name for name in names if name not in VARIABLES})
