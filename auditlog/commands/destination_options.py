"""The options of ``auditlog destinations add`` and ``update``, and what they change.

Every option defaults to "not given" (``None``), so ``update`` changes only what is given
and ``add`` falls back to the model's defaults. On ``update`` an empty value unsets an
optional setting (``--endpoint-url ''``) or empties a list (``--include-category ''``).
Secrets given in clear (from stdin, or from an environment variable read here, at the
edge; never one of the operator's own settings) are sealed with the operator's key at once;
``env:NAME`` references are stored as they are (the command checks them against the
operator's reference policy). Options are checked here; the destination as a whole is
checked by its model and its rules (:mod:`sinks.destinations.rules`), whose messages name
settings by their option (:func:`flag_of`).
"""

from __future__ import annotations

import argparse
import getpass
import re
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from schemas.catalog import Catalog
from sinks.destinations.model import ACCOUNT_ID, MAX_LISTED_ACCOUNTS, SecretValue
from sinks.destinations.references import ReferenceRefused
from sinks.destinations.rules import DestinationRefused, check_filter_values, check_header
from sinks.destinations.secrets import SecretBox, SecretError, SecretsKeyMissing
from sinks.senders.http import HEADER_NAME

KINDS = ("s3", "webhook", "splunk_hec")

# Option destination -> the target field it sets, per kind. Secret options are separate.
_TARGET_OPTIONS: dict[str, dict[str, str]] = {
    "s3": {
        "bucket": "bucket",
        "prefix_template": "prefix_template",
        "region": "region",
        "endpoint_url": "endpoint_url",
        "role_arn": "role_arn",
        "external_id": "external_id",
        "sse": "server_side_encryption",
        "kms_key_id": "kms_key_id",
    },
    "webhook": {"url": "url"},
    "splunk_hec": {"url": "url", "index": "index"},
}
_SECRET_OPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    # field -> (clear from env var, reference, clear from stdin) option destinations
    "s3": {
        "access_key_id": ("", "access_key_id_ref", ""),
        "secret_access_key": ("", "secret_access_key_ref", ""),
    },
    "webhook": {"signing_secret": ("secret_env", "secret_ref", "secret_stdin")},
    "splunk_hec": {"token": ("token_env", "token_ref", "token_stdin")},
}
_FILTER_OPTIONS = {
    "include_category": "include_categories",
    "exclude_category": "exclude_categories",
    "include_action": "include_actions",
    "exclude_action": "exclude_actions",
}
_ACCOUNT_OPTIONS = {
    "include_account": "include_accounts",
    "exclude_account": "exclude_accounts",
}
_BATCH_OPTIONS = {"max_records": "max_records", "max_bytes": "max_bytes", "max_age_s": "max_age_s"}
_SENSITIVE_HEADER = re.compile(r"auth|token|key|secret|cookie|passw|signature", re.IGNORECASE)


class OptionError(ValueError):
    """An option is malformed, missing, or does not apply; the message says which."""


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options shared by ``add`` and ``update``; every default is ``None``."""
    s3 = parser.add_argument_group("s3 destinations")
    s3.add_argument("--bucket", help="the bucket (s3)")
    s3.add_argument(
        "--prefix-template",
        metavar="T",
        help="key prefix under the bucket, with {tenant_id} and {destination_id} "
        "(default auditlog/{tenant_id}/{destination_id})",
    )
    s3.add_argument("--region", help="the bucket's region (default: AUDITLOG_S3_REGION)")
    s3.add_argument("--endpoint-url", metavar="URL", help="endpoint of an S3-compatible store")
    s3.add_argument("--role-arn", metavar="ARN", help="a role the workers assume to write")
    s3.add_argument(
        "--external-id",
        metavar="X",
        help="'' unsets a stored one: the workers send the service's (shown by add and show)",
    )
    s3.add_argument("--access-key-id-ref", metavar="env:NAME", help="static access key id")
    s3.add_argument("--secret-access-key-ref", metavar="env:NAME", help="static secret key")
    s3.add_argument("--sse", choices=("AES256", "aws:kms", ""), help="server-side encryption")
    s3.add_argument("--kms-key-id", metavar="K", help="the KMS key of --sse aws:kms")

    http = parser.add_argument_group("webhook and splunk_hec destinations")
    http.add_argument("--url", help="where to POST (https)")
    http.add_argument("--secret-env", metavar="NAME", help="signing secret from $NAME, sealed")
    http.add_argument("--secret-ref", metavar="env:NAME", help="signing secret by reference")
    http.add_argument(
        "--secret-stdin", action="store_true", default=None, help="signing secret from stdin"
    )
    http.add_argument(
        "--header",
        action="append",
        metavar="'NAME: VALUE'",
        help="an extra header of every POST (repeatable; on update: replaces all)",
    )
    http.add_argument("--token-env", metavar="NAME", help="HEC token from $NAME, sealed")
    http.add_argument("--token-ref", metavar="env:NAME", help="HEC token by reference")
    http.add_argument(
        "--token-stdin", action="store_true", default=None, help="HEC token from stdin"
    )
    http.add_argument("--index", help="Splunk index (default: the token's)")

    common = parser.add_argument_group("every destination")
    common.add_argument("--name", help="a label for people")
    for option in _FILTER_OPTIONS:
        what = option.split("_")[1]
        common.add_argument(
            f"--{option.replace('_', '-')}",
            action="append",
            metavar=what.upper(),
            help=f"{option.split('_')[0]} events of this {what} (repeatable)",
        )
    partner = parser.add_argument_group("partner destinations")
    for option in _ACCOUNT_OPTIONS:
        partner.add_argument(
            f"--{option.replace('_', '-')}",
            action="append",
            metavar="ACCOUNT",
            help=f"{option.split('_')[0]} this managed account (repeatable; on update: "
            "replaces the list, '' empties it)",
        )
    common.add_argument("--format", choices=("ndjson", "json_array"), help="default ndjson")
    common.add_argument("--compression", choices=("gzip", "none"), help="default gzip")
    common.add_argument("--max-records", type=int, metavar="N", help="records per batch")
    common.add_argument("--max-bytes", type=int, metavar="N", help="bytes per batch")
    common.add_argument(
        "--max-age-s", type=float, metavar="S", help="seconds a record waits at most"
    )


def given(args: argparse.Namespace) -> list[str]:
    """The option destinations that were given (for "nothing to change")."""
    names = set(_FILTER_OPTIONS) | set(_BATCH_OPTIONS) | {"name", "format", "compression"}
    names |= set(_ACCOUNT_OPTIONS)
    names |= {"header"} | {o for kind in _TARGET_OPTIONS.values() for o in kind}
    names |= {o for kind in _SECRET_OPTIONS.values() for opts in kind.values() for o in opts if o}
    return sorted(n for n in names if getattr(args, n, None) is not None)


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _flags() -> dict[str, str]:
    flags = {"format": "--format"}
    for kind, options in _TARGET_OPTIONS.items():
        flags |= {f"target.{field}": _flag(dest) for dest, field in options.items()}
        for field, (_env, ref, _stdin) in _SECRET_OPTIONS[kind].items():
            flags[f"target.{field}"] = _flag(ref)
    flags |= {f"filters.{field}": _flag(dest) for dest, field in _FILTER_OPTIONS.items()}
    flags |= {f"accounts.{field}": _flag(dest) for dest, field in _ACCOUNT_OPTIONS.items()}
    flags["target.headers"] = "--header"
    # Where a message asks for a role, it says what to give.
    flags["target.role_arn"] = "--role-arn ARN"
    return flags


_FLAGS = _flags()


def flag_of(path: str) -> str:
    """How the command line names a destination setting in a message: its option
    (``target.kms_key_id`` -> ``--kms-key-id``); the path itself when no option sets it."""
    return _FLAGS.get(path, path)


def _none_if_empty(value: str) -> str | None:
    return value or None


class OptionReader:
    """Turns the given options into changes of a destination's JSON-shaped dict.

    ``environ``: where ``--secret-env NAME`` looks (the process environment, at the edge).
    ``stdin``: where ``--secret-stdin`` reads (a prompt without echo when it is a terminal).
    """

    def __init__(
        self,
        secrets: SecretBox,
        catalog: Catalog,
        *,
        environ: Mapping[str, str],
        stdin: TextIO,
        prompt: Callable[[str], str] = getpass.getpass,
    ) -> None:
        self._secrets = secrets
        self._catalog = catalog
        self._environ = environ
        self._stdin = stdin
        self._prompt = prompt

    def apply(self, args: argparse.Namespace, kind: str, base: dict[str, Any]) -> dict[str, Any]:
        """``base`` (a destination as ``model_dump`` gives it, or the start of a new one)
        with the given options applied. Raises :class:`OptionError`."""
        self._refuse_foreign_options(args, kind)
        merged = dict(base)
        merged["target"] = self._target(args, kind, dict(merged.get("target") or {"kind": kind}))
        for dest in ("name", "format", "compression"):
            if getattr(args, dest) is not None:
                merged[dest] = getattr(args, dest)
        filters = dict(merged.get("filters") or {})
        for dest, field in _FILTER_OPTIONS.items():
            values = getattr(args, dest)
            if values is not None:
                filters[field] = self._checked_filter(dest, [v for v in values if v])
        merged["filters"] = filters
        accounts = dict(merged.get("accounts") or {})
        for dest, field in _ACCOUNT_OPTIONS.items():
            values = getattr(args, dest, None)
            if values is not None:
                accounts[field] = _checked_accounts(dest, [v for v in values if v])
        merged["accounts"] = accounts
        batch = dict(merged.get("batch") or {})
        for dest, field in _BATCH_OPTIONS.items():
            if getattr(args, dest) is not None:
                batch[field] = getattr(args, dest)
        merged["batch"] = batch
        return merged

    def _target(
        self, args: argparse.Namespace, kind: str, target: dict[str, Any]
    ) -> dict[str, Any]:
        for dest, field in _TARGET_OPTIONS[kind].items():
            value = getattr(args, dest, None)
            if value is not None:
                target[field] = _none_if_empty(value) if field != "bucket" else value
        for field, options in _SECRET_OPTIONS[kind].items():
            if getattr(args, options[1]) == "":
                target[field] = None  # an empty reference unsets an optional secret
                continue
            secret = self._secret(args, options)
            if secret is not None:
                target[field] = secret.model_dump()
        if kind == "webhook" and args.header is not None:
            target["headers"] = parse_headers(args.header)
        return target

    def _refuse_foreign_options(self, args: argparse.Namespace, kind: str) -> None:
        mine = set(_TARGET_OPTIONS[kind]) | {
            o for opts in _SECRET_OPTIONS[kind].values() for o in opts if o
        }
        if kind == "webhook":
            mine.add("header")
        for other, options in _TARGET_OPTIONS.items():
            foreign = set(options) | {o for opts in _SECRET_OPTIONS[other].values() for o in opts}
            if other == "webhook":
                foreign.add("header")
            for dest in sorted(foreign - mine - {""}):
                if getattr(args, dest, None) is not None:
                    raise OptionError(f"{_flag(dest)} does not apply to a {kind} destination")

    def _secret(self, args: argparse.Namespace, options: tuple[str, ...]) -> SecretValue | None:
        from_env, ref, from_stdin = options
        chosen = [o for o in options if o and getattr(args, o, None) is not None]
        if len(chosen) > 1:
            raise OptionError(f"give one of {', '.join(_flag(o) for o in chosen)}, not several")
        if not chosen:
            return None
        option = chosen[0]
        if option == ref:
            try:
                return SecretValue(ref=getattr(args, ref))
            except ValueError:
                raise OptionError(
                    f"{_flag(ref)} {getattr(args, ref)!r}: expected env:NAME"
                ) from None
        if option == from_env:
            name = getattr(args, from_env)
            try:
                self._secrets.references.check_reserved(name)
            except ReferenceRefused as exc:
                raise OptionError(f"{_flag(from_env)}: {exc}") from None
            clear = self._environ.get(name)
            if not clear:
                raise OptionError(f"{_flag(from_env)} {name}: ${name} is not set or empty")
        else:
            clear = self._read_stdin(_flag(from_stdin))
        try:
            return self._secrets.seal(clear)
        except SecretsKeyMissing:
            raise  # a setup mistake: one line and its own exit code (auditlog.cli)
        except SecretError as exc:
            raise OptionError(str(exc)) from None

    def _read_stdin(self, flag: str) -> str:
        if self._stdin.isatty():
            clear = self._prompt(f"{flag}: the secret (not echoed): ")
        else:
            clear = self._stdin.readline().rstrip("\r\n")
        if not clear:
            raise OptionError(f"{flag}: nothing was read from stdin")
        return clear

    def _checked_filter(self, dest: str, values: list[str]) -> list[str]:
        """``values``, when the filter rule takes them (checked here, before anything else,
        so the option is named at once)."""
        try:
            check_filter_values(f"filters.{_FILTER_OPTIONS[dest]}", values, self._catalog)
        except DestinationRefused as exc:
            raise OptionError(exc.render(flag_of)) from None
        return values


def _checked_accounts(dest: str, values: list[str]) -> list[str]:
    """Account ids as given (hostile input: checked against the tenant id rule)."""
    if len(values) > MAX_LISTED_ACCOUNTS:
        raise OptionError(f"{_flag(dest)}: at most {MAX_LISTED_ACCOUNTS} accounts")
    for value in values:
        if not ACCOUNT_ID.fullmatch(value):
            raise OptionError(
                f"{_flag(dest)} {value[:80]!r}: not an account id "
                "(letters, digits and . _ : @ -, at most 128)"
            )
    return values


def parse_headers(values: list[str]) -> dict[str, str]:
    """``'Name: value'`` strings as a dict; ``''`` alone means no headers."""
    headers: dict[str, str] = {}
    for text in values:
        if not text:
            continue
        name, sep, value = text.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not HEADER_NAME.fullmatch(name) or not value:
            raise OptionError(f"--header {text!r}: expected 'Name: value'")
        try:
            check_header(name, value)
        except DestinationRefused as exc:
            raise OptionError(exc.render(flag_of)) from None
        headers[name] = value
    return headers


def shown_header_value(name: str, value: str) -> str:
    """What ``show`` prints of a header: values of credential-like headers are hidden."""
    return "(hidden)" if _SENSITIVE_HEADER.search(name) else value
