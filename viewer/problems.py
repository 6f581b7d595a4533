"""The API's error answers: one JSON shape, one status per kind of refusal.

Every error is ``{"error": {"status": N, "code": "...", "message": "...", "parameter": ...}}``:

- 400 ``bad_parameter``: a parameter is unknown, malformed, out of range, or a cursor that
  is not this query's; ``parameter`` names it as the client sent it.
- 401 ``invalid_token``: no bearer token, or one that is expired, forged, or for another
  audience (with ``WWW-Authenticate: Bearer error="invalid_token"``, RFC 6750).
- 401 ``no_session``: (the page) no session cookie, or one that has ended.
- 403 ``forbidden``: a valid user who may not read this account's log, with the reason.
- 403 ``csrf_failed``: (the page) a request made with the session cookie but without the
  session's CSRF token.
- 404 ``not_found``: no such event in this account (the same answer whether the id exists
  in another account or nowhere).
- 429 ``rate_limited``: with ``Retry-After`` in whole seconds.
- 503 ``unavailable``: ClickHouse does not answer, or the read could not be audited.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi.responses import JSONResponse


class ApiProblem(Exception):
    """Raised by a route; turned into the error answer by the app's handler."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        parameter: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.parameter = parameter
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if self.parameter is not None:
            body["parameter"] = self.parameter
        return JSONResponse({"error": body}, status_code=self.status, headers=self.headers)


def bad_parameter(parameter: str, message: str) -> ApiProblem:
    return ApiProblem(400, "bad_parameter", message, parameter=parameter)


def invalid_token(reason: str) -> ApiProblem:
    return ApiProblem(
        401,
        "invalid_token",
        f"a valid bearer token is required: {reason}",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def no_session(reason: str) -> ApiProblem:
    return ApiProblem(
        401,
        "no_session",
        f"{reason}: open the activity audit log from the platform again to sign in",
    )


def csrf_failed() -> ApiProblem:
    return ApiProblem(
        403,
        "csrf_failed",
        "the request lacks this session's CSRF token (header X-CSRF-Token): reload the page",
    )


def forbidden(reason: str) -> ApiProblem:
    return ApiProblem(403, "forbidden", reason)


def not_found(message: str = "no such event in this account's audit log") -> ApiProblem:
    return ApiProblem(404, "not_found", message)


def rate_limited(wait_s: float, why: str = "too many requests") -> ApiProblem:
    seconds = max(1, math.ceil(wait_s))
    return ApiProblem(
        429,
        "rate_limited",
        f"{why}: try again in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


def unavailable(what: str) -> ApiProblem:
    return ApiProblem(
        503, "unavailable", f"{what}; try again shortly", headers={"Retry-After": "5"}
    )
