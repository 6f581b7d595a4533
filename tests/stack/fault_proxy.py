"""A TCP proxy for fault tests: forwards to a real server, and cuts any connection whose
client bytes contain a chosen pattern (so a test can fail exactly one kind of request, such
as the writer's progress-log query, and let the rest through).

Threads, not processes; :meth:`FaultProxy.close` stops everything it started.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class FaultProxy:
    """Listens on ``127.0.0.1:<port>`` and forwards to ``upstream`` (host, port). While
    ``cut_on`` is set, a connection whose client side has sent bytes containing it is
    closed before those bytes reach the server; :attr:`cuts` counts them."""

    def __init__(self, upstream: tuple[str, int], *, cut_on: bytes | None = None) -> None:
        self.upstream = upstream
        self.cut_on = cut_on
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._threads = [threading.Thread(target=self._accept, name="fault-proxy", daemon=True)]
        self._threads[0].start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets.update((client, server))
            for source, sink, inspect in ((client, server, True), (server, client, False)):
                thread = threading.Thread(
                    target=self._pump, args=(source, sink, inspect), daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def _pump(self, source: socket.socket, sink: socket.socket, inspect: bool) -> None:
        seen = b""
        try:
            while chunk := source.recv(65536):
                if inspect and self.cut_on is not None:
                    seen = (seen + chunk)[-(len(chunk) + len(self.cut_on)) :]
                    if self.cut_on in seen:
                        with self._lock:
                            self.cuts += 1
                        break
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self._shut(sock)

    def _shut(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        with self._lock:
            self._sockets.discard(sock)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            self._shut(sock)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()
