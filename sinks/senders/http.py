"""HTTP POSTs to customer endpoints, pinned to vetted addresses.

:class:`PinnedHttpClient` is what webhook-like senders (webhooks, Splunk HEC) share. For
each request it vets the URL with :func:`sinks.address_guard.vet_url` (https to public
addresses only, unless ``allow_local``) and connects to one of the vetted addresses
itself, sending the host name in ``Host`` and in TLS SNI and checking the certificate
against that name: the connection goes where the check looked, so a DNS answer that
changes in between (rebinding) cannot redirect it. A vetted answer is reused for
``vet_ttl_s`` (60 s) per URL, so a destination is not resolved for every batch yet follows
DNS changes within a minute.

Redirects are never followed (a 3xx is the caller's permanent error) and urllib3 does not
retry: the worker owns retries. Errors map onto the sender contract:

- a refused URL or address, a TLS certificate that does not verify, a header that cannot
  be sent: :class:`PermanentDeliveryError`;
- cannot connect (refused, unreachable, connect timeout, on every vetted address), no
  answer within the read timeout, a broken connection, a temporary DNS failure:
  :class:`RetryableDeliveryError`.

The client is thread-safe; connection pools are kept per (scheme, address, port, host name)
and reused. It answers with :class:`HttpAnswer`; what a status means is for the caller
(see :func:`check_answer` and :mod:`sinks.retry`).
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from sinks.address_guard import (
    IPAddress,
    Resolver,
    UnsafeDestinationError,
    VettedTarget,
    resolve_with_dns,
    vet_url,
)
from sinks.retry import bounded_snippet, classify_http_status, parse_retry_after
from sinks.senders.base import PermanentDeliveryError, RetryableDeliveryError

USER_AGENT = "auditlog-sink/1"
DEFAULT_VET_TTL_S = 60.0
# How much of an answer's body is read; the rest is discarded with the connection.
MAX_ANSWER_BYTES = 64 * 1024
# Connection pools kept at most (least recently used closed first), and connections kept
# per pool (more are opened when threads need them, and not kept).
MAX_POOLS = 256
POOL_CONNECTIONS = 16  # as many as the worker's delivery threads

#: An HTTP header name (a token, RFC 9110), and what a header value may not hold (a line
#: break or NUL would forge headers); also the destination rules' (sinks.destinations.rules).
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
FORBIDDEN_IN_VALUE = re.compile(r"[\r\n\x00]")

PoolKey = tuple[str, str, int, str]


@dataclass(frozen=True)
class HttpAnswer:
    """What the destination answered: its status, headers (names lower-cased; repeated
    headers joined by ``, ``), and the first :data:`MAX_ANSWER_BYTES` of its body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    host: str  # the host name the request went to (for messages)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def body_snippet(self, redact: Iterable[bytes] = ()) -> str:
        """The start of the body, bounded, safe for an error message (see
        :func:`sinks.retry.bounded_snippet`)."""
        return bounded_snippet(self.body, redact=redact)


def check_answer(
    answer: HttpAnswer, *, redact: Iterable[bytes] = (), now: datetime | None = None
) -> None:
    """Return for a 2xx answer; raise the :mod:`sinks.retry` classification otherwise
    (``Retry-After`` honoured; ``redact`` kept out of the message)."""
    at = datetime.now(UTC) if now is None else now
    error = classify_http_status(
        answer.status,
        parse_retry_after(answer.header("retry-after"), at),
        body_snippet=answer.body_snippet(redact),
        origin=answer.host,
        location=answer.header("location"),
    )
    if error is not None:
        raise error


def vetting_error(exc: ValueError, url: str) -> PermanentDeliveryError | RetryableDeliveryError:
    """What a refusal of :func:`~sinks.address_guard.vet_url` means for a delivery: a
    temporary DNS failure is retryable; a refused address or URL, or a name that does not
    resolve, is permanent."""
    cause = exc.__cause__
    if isinstance(cause, socket.gaierror) and cause.errno == socket.EAI_AGAIN:
        return RetryableDeliveryError(f"{exc} (temporary DNS failure)")
    detail = str(exc) if isinstance(exc, UnsafeDestinationError) else f"{url!r}: {exc}"
    return PermanentDeliveryError(detail)


def _host_header(target: VettedTarget) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default_port = 443 if target.scheme == "https" else 80
    return host if target.port == default_port else f"{host}:{target.port}"


def _check_headers(headers: Mapping[str, str]) -> None:
    for name, value in headers.items():
        if not HEADER_NAME.fullmatch(name):
            raise PermanentDeliveryError(f"header name {name!r} is not a valid HTTP header name")
        if FORBIDDEN_IN_VALUE.search(value):
            raise PermanentDeliveryError(
                f"header {name!r}: its value contains a line break or NUL and cannot be sent"
            )


def _reason(exc: BaseException) -> str:
    """The operating system's words for a failed connection, without urllib3's wrapping."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    if isinstance(exc, NewConnectionError):
        return str(exc).rsplit(": ", 1)[-1]
    return str(exc)


def _tls_error(host: str, exc: SSLError) -> PermanentDeliveryError | RetryableDeliveryError:
    inner = exc.args[0] if exc.args else exc
    if isinstance(inner, ssl.SSLCertVerificationError):
        why = inner.verify_message or str(inner)
        return PermanentDeliveryError(
            f"the TLS certificate of {host} does not verify ({why}): the destination must "
            f"present a certificate valid for {host}, issued by a trusted authority"
        )
    if isinstance(inner, ValueError):  # urllib3's own hostname check (CertificateError)
        return PermanentDeliveryError(
            f"the TLS certificate of {host} does not verify ({inner}): the destination must "
            f"present a certificate valid for {host}, issued by a trusted authority"
        )
    return RetryableDeliveryError(f"TLS handshake with {host} failed: {inner}")


class PinnedHttpClient:
    """POSTs to vetted, pinned addresses (see the module docstring). ``timeout_s`` bounds
    the connection and each wait for data; ``ca_certs`` replaces the system's trusted
    authorities (tests, private CAs); ``resolve`` and ``clock`` are seams for tests."""

    def __init__(
        self,
        allow_local: bool,
        timeout_s: float,
        resolve: Resolver = resolve_with_dns,
        ca_certs: str | None = None,
        *,
        vet_ttl_s: float = DEFAULT_VET_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self._allow_local = allow_local
        self._timeout_s = timeout_s
        self._timeout = urllib3.Timeout(connect=timeout_s, read=timeout_s)
        self._resolve = resolve
        self._ca_certs = ca_certs
        self._vet_ttl_s = vet_ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._vetted: dict[str, tuple[VettedTarget, float]] = {}
        self._pools: OrderedDict[PoolKey, urllib3.HTTPConnectionPool] = OrderedDict()
        self._closed = False

    def __enter__(self) -> PinnedHttpClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def timeout_s(self) -> float:
        return self._timeout_s

    def vetted(self, url: str) -> VettedTarget:
        """``url`` vetted (from the cache while fresh). Raises
        :class:`PermanentDeliveryError` for a refused URL or a name that does not resolve,
        :class:`RetryableDeliveryError` for a temporary DNS failure. Failures are not
        cached: a fixed destination is picked up on the next request."""
        now = self._clock()
        with self._lock:
            cached = self._vetted.get(url)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            target = vet_url(url, allow_local=self._allow_local, resolve=self._resolve)
        except ValueError as exc:  # UnsafeDestinationError, or a malformed URL (port)
            raise vetting_error(exc, url) from exc
        with self._lock:
            if len(self._vetted) > 4 * MAX_POOLS:
                self._vetted = {k: v for k, v in self._vetted.items() if v[1] > now}
            self._vetted[url] = (target, now + self._vet_ttl_s)
        return target

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpAnswer:
        """POST ``body`` to ``url`` with ``headers`` (plus ``Host`` and ``User-Agent``);
        blocks until the answer's status and headers arrived. Any status is an answer;
        raises only for the failures listed in the module docstring."""
        target = self.vetted(url)
        _check_headers(headers)
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = {"User-Agent": USER_AGENT, **headers, "Host": _host_header(target)}
        failures: list[str] = []
        for address in target.addresses:
            pool = self._pool(target, address)
            try:
                response = pool.urlopen(
                    "POST",
                    path,
                    body=body,
                    headers=sent,
                    retries=False,
                    redirect=False,
                    assert_same_host=False,
                    preload_content=False,
                    timeout=self._timeout,
                )
            except ConnectTimeoutError as exc:  # NewConnectionError too: try the next one
                failures.append(f"{address}: {_reason(exc)}")
                continue
            except ReadTimeoutError as exc:
                raise RetryableDeliveryError(
                    f"no answer from {target.host} within {self._timeout_s:g} s (it may have "
                    "received the batch; the retry carries the same idempotency key)"
                ) from exc
            except SSLError as exc:
                raise _tls_error(target.host, exc) from exc
            except ProtocolError as exc:
                raise RetryableDeliveryError(
                    f"the connection to {target.host} broke: {_reason(exc)}"
                ) from exc
            except HTTPError as exc:
                raise RetryableDeliveryError(
                    f"the request to {target.host} failed: {type(exc).__name__}: {exc}"
                ) from exc
            return self._answer(response, target.host)
        raise RetryableDeliveryError(
            f"cannot connect to {target.host} port {target.port} ({'; '.join(failures)})"
        )

    def _answer(self, response: urllib3.BaseHTTPResponse, host: str) -> HttpAnswer:
        data = b""
        complete = False
        try:
            data = response.read(MAX_ANSWER_BYTES + 1)
            complete = len(data) <= MAX_ANSWER_BYTES
        except (HTTPError, OSError):
            # The status arrived; a body that breaks off only loses detail for messages.
            pass
        finally:
            if not complete:
                response.close()  # unread data: the connection cannot be reused
            response.release_conn()
        headers = {name.lower(): value for name, value in response.headers.items()}
        return HttpAnswer(response.status, headers, data[:MAX_ANSWER_BYTES], host)

    def _pool(self, target: VettedTarget, address: IPAddress) -> urllib3.HTTPConnectionPool:
        key: PoolKey = (target.scheme, str(address), target.port, target.host)
        with self._lock:
            if self._closed:
                raise RuntimeError("the HTTP client is closed")
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            pool = self._new_pool(target, address)
            self._pools[key] = pool
            evicted = self._pools.popitem(last=False)[1] if len(self._pools) > MAX_POOLS else None
        if evicted is not None:
            evicted.close()  # idle connections now; busy ones when they come back
        return pool

    def _new_pool(self, target: VettedTarget, address: IPAddress) -> urllib3.HTTPConnectionPool:
        common: dict[str, Any] = {
            "host": str(address),
            "port": target.port,
            "maxsize": POOL_CONNECTIONS,
            "block": False,
            "timeout": self._timeout,
            "retries": False,
        }
        if target.scheme == "https":
            return urllib3.HTTPSConnectionPool(
                **common,
                cert_reqs="CERT_REQUIRED",
                ca_certs=self._ca_certs,
                server_hostname=target.host,  # SNI, and the name the certificate must match
            )
        return urllib3.HTTPConnectionPool(**common)

    def close(self) -> None:
        """Close every pooled connection; later requests raise ``RuntimeError``."""
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
            self._pools.clear()
            self._vetted.clear()
        for pool in pools:
            pool.close()
