"""The proxy the crash tests kill their clients behind: it forwards everything, and holds
the answers to the matching requests past a count until released."""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from collections.abc import Iterable

from tests.unit.http_receiver import Receiver, Reply
from tests.withholding_proxy import Request, WithholdingProxy


def _post(url: str, body: bytes | Iterable[bytes] = b"x", **headers: str) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        chunked = not isinstance(body, bytes)
        connection.request("POST", parts.path, body, headers, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _batch(request: Request) -> bool:
    return request.target.startswith("/batch/")


def test_answers_past_the_count_are_withheld_after_the_upstream_handled_them() -> None:
    with (
        Receiver() as upstream,
        WithholdingProxy(upstream.url(), _batch, let_through=1) as proxy,
    ):
        upstream.answer("/batch/2", Reply(201, body=b"stored"))
        assert _post(proxy.url + "/batch/1") == (200, b"")
        assert _post(proxy.url + "/other") == (200, b""), "not matching: never withheld"
        answers: list[tuple[int, bytes]] = []
        client = threading.Thread(target=lambda: answers.append(_post(proxy.url + "/batch/2")))
        client.start()
        proxy.wait_withheld(timeout_s=30)
        assert [r.path for r in upstream.requests] == ["/batch/1", "/other", "/batch/2"]
        assert answers == [], "the client is still waiting"
        assert (proxy.answered, proxy.withheld) == (1, 1)

        proxy.release()
        client.join(30)
        assert answers == [(201, b"stored")], "the upstream's own answer, once released"
        assert _post(proxy.url + "/batch/3") == (200, b""), "released: nothing more is held"


def test_bodies_and_headers_reach_the_upstream_as_sent() -> None:
    with (
        Receiver() as upstream,
        WithholdingProxy(upstream.url(), _batch, let_through=0) as proxy,
    ):
        assert _post(proxy.url + "/plain", b"abc", **{"X-Amz-Meta": "1"})[0] == 200
        assert _post(proxy.url + "/chunked", iter([b"first,", b"second"]))[0] == 200
        plain, chunked = upstream.requests
        assert (plain.body, plain.headers["x-amz-meta"]) == (b"abc", "1")
        assert plain.headers["host"] == proxy.url.removeprefix("http://")
        assert chunked.body == b"first,second"
        assert "transfer-encoding" not in chunked.headers
