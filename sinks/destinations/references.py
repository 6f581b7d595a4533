"""Which environment variables a secret reference (``env:NAME``) may read.

A destination's settings come from its tenant, and a reference is read from the worker's
own environment and sent to a URL the tenant chose: an unconfined ``env:AUDITLOG_SECRETS_KEY``
or ``env:AWS_SECRET_ACCESS_KEY`` would hand the operator's keys to the tenant. So a
reference may name only what the operator allows (:class:`ReferencePolicy`):

- a variable whose name starts with ``prefix`` (``AUDITLOG_DEST_SECRET_`` by default) and
  has something after it; an empty prefix allows no name by prefix (never "every name");
- or a variable listed by name in ``names``;
- and never a *reserved* name, whatever the prefix or list say: the product's own settings
  (``AUDITLOG_SECRETS_KEY``, ``AUDITLOG_CLICKHOUSE_URL`` with its password, ... as given by
  the edge, :data:`ALWAYS_RESERVED` at least) and the worker's AWS configuration
  (``AWS_*``: its access keys, session token, container-credentials token).

Matching is exact, case included, as POSIX environments are. Reserved names are refused in
any case (``env:auditlog_secrets_key`` too), so a case-insensitive environment cannot reach
them. A policy refuses to be built with a prefix that covers a reserved name (``AUDITLOG_``,
``AWS_``, ``A``) or a list naming one: a careless setting stops the process at the edge
instead of being silently narrowed. Every variable under the prefix is readable by every
tenant that knows its name: keep only destination secrets there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_PREFIX = "AUDITLOG_DEST_SECRET_"
# Reserved even when the edge passes nothing: the key that opens every sealed secret.
ALWAYS_RESERVED = frozenset({"AUDITLOG_SECRETS_KEY"})
# Reserved by prefix: the worker's AWS credentials and configuration.
RESERVED_PREFIXES = ("AWS_",)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ReferenceRefused(ValueError):
    """A reference names a variable the policy does not allow; the message says which rule."""


def _reserved_by(name: str, reserved: Iterable[str]) -> str | None:
    """What makes ``name`` reserved (compared upper-cased), or None."""
    upper = name.upper()
    if upper in reserved:
        return f"{upper} is the operator's own setting"
    for prefix in RESERVED_PREFIXES:
        if upper.startswith(prefix):
            return f"{prefix}* variables are the worker's own AWS credentials and configuration"
    return None


def check_prefix(prefix: str, reserved: Iterable[str] = ALWAYS_RESERVED) -> str:
    """``prefix`` when it may serve as the reference prefix; raises ``ValueError`` when it
    is not a variable name's start or covers a reserved name."""
    if prefix == "":
        return prefix
    if not _NAME.fullmatch(prefix):
        raise ValueError(f"{prefix!r} is not the start of an environment variable name")
    upper = prefix.upper()
    every = {*reserved, *ALWAYS_RESERVED}
    covered = sorted(
        (n for n in every if n.upper().startswith(upper)),
        key=lambda n: (n not in ALWAYS_RESERVED, n),  # the secrets key first
    )
    covered += [f"{p}*" for p in RESERVED_PREFIXES if p.startswith(upper) or upper.startswith(p)]
    if covered:
        raise ValueError(
            f"prefix {prefix!r} covers {', '.join(covered[:3])}, which destinations may never "
            f"read: choose a prefix for destination secrets only, such as {DEFAULT_PREFIX}"
        )
    return prefix


def check_names(names: Iterable[str], reserved: Iterable[str] = ALWAYS_RESERVED) -> frozenset[str]:
    """``names`` as a set when each may be listed; raises ``ValueError`` naming the first
    that is not a variable name or is reserved."""
    every = {*reserved, *ALWAYS_RESERVED}
    for name in names:
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not an environment variable name")
        why = _reserved_by(name, every)
        if why is not None:
            raise ValueError(f"{name} cannot be allowed: {why}")
    return frozenset(names)


def parse_names(text: str) -> frozenset[str]:
    """A comma-separated list of names (blanks ignored), unchecked."""
    return frozenset(name.strip() for name in text.split(",") if name.strip())


@dataclass(frozen=True)
class ReferencePolicy:
    """The names ``env:`` references may read (see the module docstring). ``reserved``:
    names refused whatever the prefix or list say (the edge passes every setting's
    variable). Raises ``ValueError`` when built with a prefix or list that reaches a
    reserved name."""

    prefix: str = DEFAULT_PREFIX
    names: frozenset[str] = frozenset()
    reserved: frozenset[str] = field(default=ALWAYS_RESERVED)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reserved", frozenset({*self.reserved, *ALWAYS_RESERVED}))
        check_prefix(self.prefix, self.reserved)
        check_names(self.names, self.reserved)

    def rule(self) -> str:
        """The rule in words, for messages."""
        by_prefix = f"starting with {self.prefix}" if self.prefix else ""
        listed = f"listed ({', '.join(sorted(self.names))})" if self.names else ""
        if by_prefix and listed:
            return f"environment variables {by_prefix} or {listed}"
        if by_prefix or listed:
            return f"environment variables {by_prefix or listed}"
        return "no environment variable (references are turned off: seal the secret instead)"

    def check(self, reference: str) -> str:
        """The variable name of ``reference`` (``env:NAME``) when it may be read; raises
        :class:`ReferenceRefused` naming the reference and the rule otherwise."""
        name = reference.removeprefix("env:")
        why = _reserved_by(name, self.reserved)
        if why is not None:
            raise ReferenceRefused(f"secret reference {reference} is refused: {why}")
        by_prefix = bool(self.prefix) and name.startswith(self.prefix) and name != self.prefix
        if not (by_prefix or name in self.names):
            raise ReferenceRefused(
                f"secret reference {reference} is refused: references may name only {self.rule()}"
            )
        return name

    def check_reserved(self, name: str) -> None:
        """Raise :class:`ReferenceRefused` when ``name`` is reserved (for secrets read in
        clear from the command's environment, which are never the operator's own keys)."""
        why = _reserved_by(name, self.reserved)
        if why is not None:
            raise ReferenceRefused(f"{name} cannot be used as a destination secret: {why}")
