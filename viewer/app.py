"""The viewer's ASGI application: the activity log API, the page (:mod:`viewer.page`),
``/health``, ``/metrics``, and the API's OpenAPI document (``/openapi.json``; a copy is
checked in as ``docs/viewer-openapi.json``; no Swagger UI, which would load from a CDN).

:func:`create_app` only assembles: the services come in built (``auditlog serve`` builds
them from the settings; tests pass fakes). Every answer carries ``X-Request-ID``, ``Cache-
Control: no-store`` (audit data is never cached by browsers or proxies; the page's own
files are revalidated) and the headers of :mod:`viewer.security_headers`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

from viewer import caller
from viewer.page import PageServices, mount_page
from viewer.problems import ApiProblem
from viewer.routes import ViewerServices, activity_router
from viewer.security_headers import NO_FRAMING, security_headers

Health = Callable[[], dict[str, Any]]

DESCRIPTION = """\
An account's activity audit log: who did what, to which resource, when, from where, with
what result. Readable by the account owner, users with the Admin role and holders of the
activity audit privilege, on accounts with the audit log enabled; an embedded partner's
admins may name an account their partner manages (`account_id`). Every read is itself
recorded in the account's audit log.

Authenticate with the platform's bearer token (`Authorization: Bearer <JWT>`).
"""


def create_app(
    services: ViewerServices,
    *,
    health: Health,
    registry: CollectorRegistry,
    page: PageServices | None = None,
    frame_ancestors: str = NO_FRAMING,
) -> FastAPI:
    """The app; with ``page`` it serves the viewer page and accepts its session cookie
    (``services.sessions`` must then be ``page.sessions``)."""
    app = FastAPI(
        title="Activity audit log",
        version="1",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
    )
    app.include_router(activity_router(services))
    if page is not None:
        mount_page(app, services, page)
    requests = Counter(
        "auditlog_viewer_requests",
        "Requests answered, by route and status.",
        ["route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "auditlog_viewer_request_seconds",
        "Time to the answer's headers, by route.",
        ["route"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    )

    @app.exception_handler(ApiProblem)
    async def _problem(request: Request, exc: ApiProblem) -> Response:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = [str(part) for part in first.get("loc", ()) if part not in ("query", "path")]
        return ApiProblem(
            400,
            "bad_parameter",
            str(first.get("msg", "invalid request")),
            parameter=".".join(where) or None,
        ).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        return ApiProblem(exc.status_code, code, str(exc.detail)).response()

    @app.middleware("http")
    async def _observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        request_id = caller.request_id(request)
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "(unmatched)")
        requests.labels(name, str(response.status_code)).inc()
        latency.labels(name).observe(time.perf_counter() - started)
        response.headers["X-Request-ID"] = request_id
        own_file = request.url.path.startswith("/static/")
        response.headers.setdefault("Cache-Control", "no-cache" if own_file else "no-store")
        is_page = response.headers.get("content-type", "").startswith("text/html")
        response.headers.update(
            security_headers(
                frame_ancestors=frame_ancestors,
                page=is_page,
                https=request.url.scheme == "https",
            )
        )
        return response

    @app.get("/health", include_in_schema=False)
    def _health() -> Response:
        state = health()
        status = 200 if state.get("status") == "ok" else 503
        return Response(orjson.dumps(state), status_code=status, media_type="application/json")

    @app.get("/metrics", include_in_schema=False)
    def _metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
