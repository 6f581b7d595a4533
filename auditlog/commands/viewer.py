"""``auditlog viewer token``: mint a development token for the viewer (or, with
``--sign-in URL``, a link that signs in to the viewer page with a short-lived one).

The token is signed with ``AUDITLOG_VIEWER_DEV_SECRET`` and carries the issuer
``auditlog-dev``; a viewer accepts it only while the same secret is configured. Without
that secret the command refuses. Exit codes: 0 the token is on stdout, 2 refused (no
development secret, an invalid id or ttl, incoherent viewer settings).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import urlencode, urlsplit

from auditlog import wiring
from auditlog.settings import AuditlogSettings
from consumers.retention import RetentionError, validate_tenant
from viewer.dev_tokens import MAX_TTL_S, mint_development_token
from viewer.identity import IdentityConfigError
from viewer.principal import ADMIN_ROLE, AUDIT_PRIVILEGE, OWNER_ROLE

ROLES = (OWNER_ROLE, ADMIN_ROLE, "member")


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "viewer",
        help="the audit log viewer: development tokens",
        description="The activity audit log viewer.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    token = actions.add_parser(
        "token",
        help="print a development token (needs AUDITLOG_VIEWER_DEV_SECRET)",
        description=(
            "Print a development bearer token for the viewer, signed with "
            "AUDITLOG_VIEWER_DEV_SECRET (issuer auditlog-dev). Refuses without that secret."
        ),
    )
    token.add_argument("--account", required=True, help="the account (tenant) id")
    token.add_argument("--user", required=True, help="the user id")
    token.add_argument("--role", required=True, choices=ROLES)
    token.add_argument(
        "--privilege",
        action="append",
        default=[],
        metavar="P",
        help=f"a privilege, repeatable (the viewer's is {AUDIT_PRIVILEGE})",
    )
    token.add_argument("--partner", help="the embedded partner the user works for")
    token.add_argument("--email")
    token.add_argument("--name")
    token.add_argument(
        "--ttl-s",
        type=int,
        help=f"seconds of validity, 1 to {MAX_TTL_S} (default 3600; with --sign-in, "
        "AUDITLOG_VIEWER_SIGN_IN_MAX_TTL_S)",
    )
    token.add_argument(
        "--sign-in",
        metavar="URL",
        help="print a link that signs in to the viewer page at URL (e.g. http://127.0.0.1:8080) "
        "instead of the bare token",
    )
    token.set_defaults(run=_token)


def _refuse(message: str) -> int:
    print(f"auditlog: {message}", file=sys.stderr)
    return 2


def _token(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    if settings.viewer_dev_secret is None:
        return _refuse(
            "development tokens are disabled: set AUDITLOG_VIEWER_DEV_SECRET (development only)"
        )
    try:
        for value in (args.account, args.user, args.partner, *args.privilege):
            if value is not None:
                validate_tenant(value)
    except RetentionError as exc:
        return _refuse(str(exc).replace("tenant id", "valid id"))
    default_ttl_s = settings.viewer_sign_in_max_ttl_s if args.sign_in else 3600
    ttl_s = default_ttl_s if args.ttl_s is None else args.ttl_s
    problem = _ttl_problem(ttl_s, args.sign_in, settings.viewer_sign_in_max_ttl_s)
    if problem is not None:
        return _refuse(problem)
    base = _viewer_base(args.sign_in) if args.sign_in else None
    try:
        config = wiring.identity_config(settings)
    except IdentityConfigError as exc:
        for line in str(exc).splitlines():
            print(f"auditlog: {line}", file=sys.stderr)
        return 2
    token = mint_development_token(
        config,
        account_id=args.account,
        user_id=args.user,
        roles=[args.role],
        privileges=args.privilege,
        partner_id=args.partner,
        email=args.email,
        name=args.name,
        ttl_s=ttl_s,
    )
    print(token if base is None else f"{base}/sign-in?{urlencode({'token': token})}")
    return 0


def _ttl_problem(ttl_s: int, sign_in: str | None, sign_in_max_ttl_s: int) -> str | None:
    if not 1 <= ttl_s <= MAX_TTL_S:
        return f"--ttl-s must be between 1 and {MAX_TTL_S}"
    if sign_in is None:
        return None
    if ttl_s > sign_in_max_ttl_s:
        return (
            "a sign-in link lives at most AUDITLOG_VIEWER_SIGN_IN_MAX_TTL_S "
            f"({sign_in_max_ttl_s} s): lower --ttl-s"
        )
    if _viewer_base(sign_in) is None:
        return "--sign-in takes the viewer's http:// or https:// address"
    return None


def _viewer_base(url: str) -> str | None:
    """``url`` without a trailing slash, when it is an http(s) address with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return url.rstrip("/")
