"""How to reach ClickHouse: its HTTP(S) URL and, for https, the TLS files.

:func:`connect` is the one place a clickhouse-connect client is made (``auditlog.wiring``
calls it with the settings). Over https the server's certificate is checked against
``ClickHouseTls.ca_file`` (a private CA) or the system's CAs; a certificate that cannot be
verified stops the connection with :class:`ClickHouseTlsError`, one sentence saying what
to set, instead of urllib3's retry chain.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError
from urllib3.exceptions import SSLError as Urllib3SslError

from runtime.kafka_connection import pem_file_problem


@dataclass(frozen=True)
class ClickHouseTls:
    """TLS files for an https ClickHouse URL; all optional (system CAs, no client cert)."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def problems(self, url: str, name: Callable[[str], str] = str) -> list[str]:
        """What is wrong with these files for ``url``, one sentence each naming the field
        (and the URL, as ``name("url")``) with ``name``; reads the file system. Empty when
        all is well."""
        given = [f for f in ("ca_file", "cert_file", "key_file") if getattr(self, f)]
        parts = urlsplit(url)
        if given and parts.scheme != "https":
            return [
                f"{name(f)} is set but {name('url')} is not https://: use an https URL, or unset it"
                for f in given
            ]
        found = []
        if self.cert_file is not None and not parts.username:
            found.append(
                f"{name('cert_file')}: a client certificate logs in as a ClickHouse user: put "
                f"the user name in {name('url')} (https://USER@host:port)"
            )
        if self.key_file is not None and self.cert_file is None:
            found.append(
                f"{name('key_file')} is set without {name('cert_file')}: give the client "
                "certificate too"
            )
        for f in given:
            path: Path = getattr(self, f)
            problem = pem_file_problem(path)
            if problem:
                found.append(f"{name(f)}: {path} {problem}")
        return found

    def client_options(self) -> dict[str, Any]:
        """clickhouse-connect's keyword arguments for these files."""
        options: dict[str, Any] = {}
        if self.ca_file is not None:
            options["ca_cert"] = str(self.ca_file)
        if self.cert_file is not None:
            options["client_cert"] = str(self.cert_file)
        if self.key_file is not None:
            options["client_cert_key"] = str(self.key_file)
        return options


class ClickHouseTlsError(OperationalError):
    """ClickHouse's certificate could not be verified (or it refused ours)."""


def connect(
    url: str,
    tls: ClickHouseTls | None = None,
    *,
    session: bool = True,
    timeout_s: float | None = None,
) -> Client:
    """A clickhouse-connect client for ``url`` (``http[s]://[user:password@]host:port``).

    ``session=False`` makes a client without a ClickHouse session, which can run queries
    from several threads at once (the viewer's); with one, concurrent queries are refused.
    ``timeout_s``: the longest wait to connect and for each answer, with no retries (a
    health check's client); None: clickhouse-connect's defaults (10 s, 300 s, 2 retries).

    The URL's scheme decides between http and https (clickhouse-connect itself looks only
    at the port: 8443 and 443 mean https, anything else http). Connects now. Raises
    :class:`ClickHouseTlsError` when the TLS handshake fails, and clickhouse-connect's own
    errors when ClickHouse does not answer or refuses.
    """
    scheme = urlsplit(url).scheme
    options = (tls or ClickHouseTls()).client_options()
    if scheme in ("http", "https"):
        options["interface"] = scheme
    if not session:
        options["autogenerate_session_id"] = False
    if timeout_s is not None:
        options |= {
            "connect_timeout": timeout_s,
            "send_receive_timeout": timeout_s,
            "query_retries": 0,
        }
    try:
        return clickhouse_connect.get_client(dsn=url, **options)
    except OperationalError as exc:
        failure = _tls_failure(exc)
        if failure is None:
            raise
        where = urlsplit(url)
        raise ClickHouseTlsError(
            f"TLS handshake with {where.hostname}:{where.port} failed ({failure}): "
            "give the CA file that signed ClickHouse's certificate, and a client "
            "certificate if the server requires one"
        ) from exc


def _tls_failure(exc: BaseException) -> str | None:
    """The SSL error somewhere in ``exc``'s chain of causes, in a few words."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return str(getattr(seen, "verify_message", None) or seen.reason or seen)
        if isinstance(seen, Urllib3SslError):  # holds the ssl error as its argument
            inner = seen.args[0] if seen.args else None
            return _tls_failure(inner) if isinstance(inner, BaseException) else str(seen)
        seen = seen.__cause__ or seen.__context__ or _urllib3_reason(seen)
    return None


def _urllib3_reason(exc: BaseException) -> BaseException | None:
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, BaseException) else None
