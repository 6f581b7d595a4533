"""Running the viewer's app under uvicorn, on a socket bound here.

The socket is bound before uvicorn starts, so ``port 0`` gets a free port whose address is
known (and printed) before the first request, and a port in use fails with one clear line.
uvicorn handles SIGTERM and SIGINT: it stops accepting, lets requests in flight finish (up
to ``graceful_timeout_s``), then returns.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

log = logging.getLogger("auditlog.viewer")


class BindError(OSError):
    """The viewer's address could not be bound; the message says which and why."""


@dataclass(frozen=True)
class ServerConfig:
    host: str
    port: int
    forwarded_allow_ips: str
    graceful_timeout_s: float = 10.0


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; raises :class:`BindError`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise BindError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def run(app: FastAPI, config: ServerConfig, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until SIGTERM or SIGINT; blocks."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            proxy_headers=True,
            forwarded_allow_ips=config.forwarded_allow_ips,
            timeout_graceful_shutdown=int(config.graceful_timeout_s),
            log_config=None,  # our JSON logging (auditlog.logging_setup) takes uvicorn's lines
            access_log=False,  # requests are counted in /metrics; reads are audited as events
            server_header=False,
        )
    )
    server.run(sockets=[sock])
