"""Credentials out of everything we print or log.

Settings such as ``AUDITLOG_CLICKHOUSE_URL`` and ``AUDITLOG_SCHEMA_REGISTRY_URL`` may carry
a password (``http://user:password@host``), and destination URLs may carry tokens in their
query. :func:`redact_url` is for a URL we are about to show; :func:`redact_text` for any
text that may contain one (a library's error message, a log line), and the JSON log
formatter applies it to every line. A redacted URL keeps its scheme, user, host, port and
path, so it still says where: only the secret parts become ``***``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

# Query parameters whose values are secrets (matched case-insensitively, as substrings of
# the name: ``access_token``, ``X-Amz-Signature``, ``api_key``...).
_SECRET_PARAMETER = re.compile(
    r"pass|pwd|secret|token|key|sig|auth|credential|session", re.IGNORECASE
)
# scheme://user:password@ inside any text; the password ends at '@' (the last one before
# the host), and never spans whitespace, quotes or a slash.
_USERINFO = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]*):(?P<password>[^\s/'\"]*)@"
)
# ?name=value or &name=value inside any text, for the secret names above.
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&](?:[^=&\s'\"]*(?:pass|pwd|secret|token|key|sig|auth|credential|session)"
    r"[^=&\s'\"]*)=)(?P<value>[^&\s'\"#]*)",
    re.IGNORECASE,
)


def redact_url(url: str) -> str:
    """``url`` with its password and secret query values replaced by ``***``; text that
    does not parse as a URL goes through :func:`redact_text`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc
    if parts.password is not None:
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{parts.username or ''}:{MASK}@{host}" + (f":{port}" if port else "")
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAMETER.search(name) for name, _ in pairs):
            query = urlencode(
                [(n, MASK if _SECRET_PARAMETER.search(n) else v) for n, v in pairs], safe="*"
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it, and the
    values of secret-named query parameters, replaced by ``***``."""
    if "@" in text:
        text = _USERINFO.sub(rf"\g<head>:{MASK}@", text)
    if "=" in text:
        text = _QUERY_SECRET.sub(rf"\g<head>{MASK}", text)
    return text
