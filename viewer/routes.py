"""The activity log endpoints: list, one event, export.

Each request goes the same way: the caller is authenticated and rate-limited
(:mod:`viewer.caller`), its parameters are parsed (400 naming the bad one), it is granted
an account (403 with the reason), the account's events are read (:mod:`viewer.query`), and
the read is audited (:mod:`viewer.viewing_audit`) before the answer leaves, or, for an
export, when its stream ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Protocol
from urllib.parse import urlencode

import orjson
from clickhouse_connect.driver.exceptions import ClickHouseError
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from integrity.proofs import EventProof
from viewer import caller, problems
from viewer.api_parameters import ACCOUNT_ID_DESCRIPTION, EXPORT_PARAMETERS, LIST_PARAMETERS
from viewer.export_slots import ExportSlots
from viewer.forms import form_items
from viewer.notice_page import notice
from viewer.principal import Grant, Principal
from viewer.query.params import (
    BadParameter,
    ExportQuery,
    ListQuery,
    parse_export_query,
    parse_list_query,
)
from viewer.query.reader import Page
from viewer.rate_limit import RateLimiter
from viewer.session import CSRF_FIELD, SessionCodec
from viewer.viewing_audit import (
    EXPORTED,
    QUERIED,
    AuditUnavailableError,
    ViewingAudit,
)

log = logging.getLogger("auditlog.viewer")

_CURSOR = "page[after]"
MAX_FORM_BYTES = 256 * 1024
_BACK_FIELD = "back"  # the page to return to from a refused export form
_FORM_ONLY = frozenset({CSRF_FIELD, _BACK_FIELD})
MAX_RECORDED_FILTERS_CHARS = 2048  # the event schema's limit on one details value
_READ_FAILED = (ClickHouseError, OSError)


class Export(Protocol):
    """An export's body: :class:`viewer.query.export.ExportStream`."""

    media_type: str
    count: int  # records sent so far

    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class Reader(Protocol):
    """What the routes read through: :class:`viewer.query.reader.EventReader`."""

    def page(self, account_id: str, query: ListQuery) -> Page: ...

    def event(self, account_id: str, event_id: str) -> dict[str, Any] | None: ...

    def export(self, account_id: str, query: ExportQuery) -> Export: ...


class Proofs(Protocol):
    """Where proofs come from: :class:`integrity.proofs.ProofReader`."""

    def proof(self, account_id: str, event_id: str) -> EventProof | None: ...


@dataclass(frozen=True)
class ViewerServices:
    """Everything a request needs, built once at the edge (see ``auditlog serve``)."""

    verifier: caller.Verifier
    facts_of: caller.FactsOf
    reader: Reader
    audit: ViewingAudit
    limiter: RateLimiter
    exports: ExportSlots
    sessions: SessionCodec | None = None  # the page's sessions (None: bearer tokens only)
    proofs: Proofs | None = None  # inclusion proofs from the integrity log (None: not served)


def activity_router(services: ViewerServices) -> APIRouter:
    routes = _ActivityRoutes(services)
    router = APIRouter(prefix="/api/activity_logs", tags=["activity logs"])
    router.add_api_route(
        "",
        routes.list_activity,
        methods=["GET"],
        summary="List an account's activity, newest first",
        openapi_extra={"parameters": LIST_PARAMETERS},
        responses=_ERRORS,
    )
    router.add_api_route(
        "/export",
        routes.export_activity,
        methods=["GET"],
        summary="Export an account's filtered activity as NDJSON or CSV, streamed",
        openapi_extra={"parameters": EXPORT_PARAMETERS},
        responses=_ERRORS,
        response_class=StreamingResponse,
    )
    router.add_api_route(
        "/export",
        routes.export_form,
        methods=["POST"],
        summary="The same export, asked by a form (the page's download)",
        description=(
            "The export's parameters as `application/x-www-form-urlencoded` fields, plus "
            f"`{CSRF_FIELD}` when the request is authenticated by the page's session cookie, "
            "and `back`, the page's path: a refusal is an HTML page linking back to it."
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {"type": "object", "additionalProperties": {"type": "string"}}
                    }
                },
            }
        },
        responses={
            **_ERRORS,
            413: {"description": "The form is too large."},
            415: {"description": "The body is not a URL-encoded form."},
        },
        response_class=StreamingResponse,
    )
    router.add_api_route(
        "/{event_id}/proof",
        routes.event_proof,
        methods=["GET"],
        summary="Proof that the event is in the account's tamper-evident log",
        description=(
            "The event's leaves in its account's Merkle log (RFC 9162), an inclusion proof of "
            "each in the tree of the newest signed checkpoint, that checkpoint (a C2SP signed "
            "note: verify it with the published keys), and the event's leaf data (its "
            "canonical JSON) to hash and compare. 404 until a checkpoint covers the event "
            "(a minute or so after it was published)."
        ),
        responses=_ERRORS,
    )
    router.add_api_route(
        "/{event_id}",
        routes.one_event,
        methods=["GET"],
        summary="One event of the account, with its details, changes and request context",
        responses=_ERRORS,
    )
    return router


class _ActivityRoutes:
    def __init__(self, services: ViewerServices) -> None:
        self._services = services

    def list_activity(self, request: Request) -> Response:
        principal = self._authenticate(request)
        grant, query = self._granted(
            principal, request.query_params.multi_items(), parse_list_query
        )
        asked = _asked(query)
        try:
            page = self._services.reader.page(grant.account_id, query)
        except BadParameter as exc:  # a cursor that is not this query's
            raise problems.bad_parameter(exc.parameter, exc.message) from None
        except _READ_FAILED as exc:
            raise _store_failed("listing events", grant, exc) from None
        details = {**asked, "event_count": str(len(page.data))}
        self._audited(grant, QUERIED, request, details)
        body = {"data": page.data, "total": page.total, "page": {"after": page.next_cursor}}
        headers = {}
        if page.next_cursor is not None:
            headers["Link"] = f'<{_next_url(request, page.next_cursor)}>; rel="next"'
        return Response(orjson.dumps(body), media_type="application/json", headers=headers)

    def export_activity(self, request: Request) -> StreamingResponse:
        principal = self._authenticate(request)
        return self._export(request, principal, request.query_params.multi_items())

    async def export_form(self, request: Request) -> Response:
        """The export asked by a form: a person's browser, so a refusal is a page that
        says why, with a link back to ``back`` (a path of this origin)."""
        back = "/"
        try:
            items = await form_items(request, max_bytes=MAX_FORM_BYTES)
            csrf = [value for name, value in items if name == CSRF_FIELD]
            given = csrf[0] if len(csrf) == 1 else ""  # twice is as good as none
            back = next((value for name, value in items if name == _BACK_FIELD), back)
            fields = [(name, value) for name, value in items if name not in _FORM_ONLY]
            principal = await run_in_threadpool(self._authenticate, request, given)
            return await run_in_threadpool(self._export, request, principal, fields)
        except problems.ApiProblem as problem:
            refused = notice(
                "Export refused",
                problem.message[:1].upper() + problem.message[1:] + ".",
                "Change the filters or wait a moment, then export again from the page.",
                status=problem.status,
                back=back,
            )
            refused.headers.update(problem.headers)
            return refused

    def _export(
        self, request: Request, principal: Principal, items: Sequence[tuple[str, str]]
    ) -> StreamingResponse:
        grant, query = self._granted(principal, items, parse_export_query)
        context = caller.request_context(request)
        asked = {**_asked(query), "format": query.format}
        slot = self._services.exports.take(grant.principal)
        if slot is None:
            raise problems.rate_limited(
                self._services.exports.retry_after_s,
                "too many exports running: wait for one to end",
            )
        try:
            stream = self._services.reader.export(grant.account_id, query)
        except _READ_FAILED as exc:
            slot.release()
            raise _store_failed("exporting events", grant, exc) from None
        audit = self._services.audit

        def finish() -> None:
            """Close the query and free the slot: when the body ends, and also when the
            client left before the body was ever read (idempotent)."""
            stream.close()
            slot.release()

        def body() -> Iterator[bytes]:
            complete = False
            try:
                yield from stream
                complete = True
            finally:
                finish()
                details = {
                    **asked,
                    "event_count": str(stream.count),
                    "complete": "true" if complete else "false",
                }
                try:
                    audit.record(grant, EXPORTED, context, details)
                except AuditUnavailableError:
                    log.error(
                        "an export of %s by %s ended unaudited",
                        grant.account_id,
                        grant.principal.user_id,
                    )

        extension = "csv" if query.format == "csv" else "ndjson"
        filename = f"audit-log-{_file_safe(grant.account_id)}.{extension}"
        return StreamingResponse(
            body(),
            media_type=stream.media_type,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
            background=BackgroundTask(finish),
        )

    def one_event(
        self,
        event_id: str,
        request: Request,
        account_id: Annotated[str | None, Query(description=ACCOUNT_ID_DESCRIPTION)] = None,
    ) -> Response:
        grant = self._event_grant(request, account_id)
        try:
            found = self._services.reader.event(grant.account_id, event_id)
        except _READ_FAILED as exc:
            raise _store_failed("reading an event", grant, exc) from None
        details = {"event_id": event_id[:64], "event_count": "1" if found is not None else "0"}
        self._audited(grant, QUERIED, request, details)
        if found is None:
            raise problems.not_found()
        return Response(orjson.dumps({"data": found}), media_type="application/json")

    def event_proof(
        self,
        event_id: str,
        request: Request,
        account_id: Annotated[str | None, Query(description=ACCOUNT_ID_DESCRIPTION)] = None,
    ) -> Response:
        grant = self._event_grant(request, account_id)
        proofs = self._services.proofs
        if proofs is None:
            raise problems.not_found("this viewer does not serve proofs")
        try:
            found = proofs.proof(grant.account_id, event_id)
        except _READ_FAILED as exc:
            raise _store_failed("reading a proof", grant, exc) from None
        details = {
            "event_id": event_id[:64],
            "event_count": "1" if found is not None else "0",
            "proof": "true",
        }
        self._audited(grant, QUERIED, request, details)
        if found is None:
            raise problems.not_found(
                "no signed checkpoint covers this event of this account yet: try again in a minute"
            )
        return Response(orjson.dumps({"data": found.to_json()}), media_type="application/json")

    def _authenticate(self, request: Request, csrf_token: str | None = None) -> Principal:
        services = self._services
        return caller.authenticate(
            request, services.verifier, services.limiter, services.sessions, csrf_token=csrf_token
        )

    def _event_grant(self, request: Request, account_id: str | None) -> Grant:
        """Authenticate a request about one event (only ``account_id`` may be given) and
        grant the account."""
        principal = self._authenticate(request)
        unknown = sorted({name for name in request.query_params if name != "account_id"})
        if unknown:
            raise problems.bad_parameter(unknown[0], f"unknown parameter {unknown[0]!r}")
        if len(request.query_params.getlist("account_id")) > 1:
            raise problems.bad_parameter("account_id", "given more than once")
        return caller.grant_for(principal, account_id, self._services.facts_of)

    def _granted(
        self,
        principal: Principal,
        items: Sequence[tuple[str, str]],
        parse: Callable[[Sequence[tuple[str, str]]], Any],
    ) -> tuple[Grant, Any]:
        """Parse the query (400 naming a bad parameter), grant the account."""
        try:
            query = parse(items)
        except BadParameter as exc:
            raise problems.bad_parameter(exc.parameter, exc.message) from None
        return caller.grant_for(principal, query.account_id, self._services.facts_of), query

    def _audited(
        self, grant: Grant, action: Any, request: Request, details: dict[str, str]
    ) -> None:
        try:
            self._services.audit.record(grant, action, caller.request_context(request), details)
        except AuditUnavailableError:
            raise problems.unavailable("the read could not be recorded in the audit log") from None


def _store_failed(what: str, grant: Grant, error: Exception) -> problems.ApiProblem:
    log.error("%s of %s failed: %s", what, grant.account_id, error)
    return problems.unavailable("the audit log store did not answer")


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A parameter is unknown or invalid; `error.parameter` names it."},
    401: {"description": "No valid bearer token."},
    403: {"description": "The caller may not read this account's log; `error.message` says why."},
    404: {"description": "No such event in this account."},
    429: {"description": "Too many requests; see `Retry-After`."},
    503: {"description": "The store did not answer, or the read could not be audited."},
}


def _asked(query: ListQuery | ExportQuery) -> dict[str, str]:
    """What the caller asked for, for the audit event: the range and the filters applied
    (parsed, in a fixed order; never the cursor). Filters too long to be recorded whole in
    one details value are refused (400): no read is recorded cut short."""
    items = query.filters.query_items()
    filters = urlencode(items)
    if len(filters) > MAX_RECORDED_FILTERS_CHARS:
        longest = max(items, key=lambda item: len(item[0]) + len(item[1]))[0]
        raise problems.bad_parameter(
            longest,
            f"the filters make {len(filters)} characters once encoded, more than the "
            f"{MAX_RECORDED_FILTERS_CHARS} a read's audit event records: narrow them",
        )
    asked = {"filters": filters}
    if query.since is not None:
        asked["from"] = query.since.isoformat()
    if query.until is not None:
        asked["to"] = query.until.isoformat()
    return asked


def _next_url(request: Request, cursor: str) -> str:
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != _CURSOR]
    return f"{request.url.path}?{urlencode([*kept, (_CURSOR, cursor)])}"


def _file_safe(account_id: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in account_id)
