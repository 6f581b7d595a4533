"""Reading a URL-encoded form a browser posted, within a size limit: the page's sign-in and
export forms. The body is read as it streams in and refused as soon as it passes the
limit, so a huge body is never held in memory."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import Request

from viewer import problems

FORM_TYPE = "application/x-www-form-urlencoded"


async def form_items(request: Request, *, max_bytes: int) -> list[tuple[str, str]]:
    """The form's fields in order; raises :class:`~viewer.problems.ApiProblem` 415 unless
    URL-encoded, 413 beyond ``max_bytes``, 400 when not UTF-8."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != FORM_TYPE:
        raise problems.ApiProblem(415, "unsupported_media_type", f"send the form as {FORM_TYPE}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise problems.ApiProblem(
                413, "too_large", f"the form is larger than {max_bytes} bytes: narrow it"
            )
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=False, strict_parsing=False)
    except UnicodeDecodeError:
        raise problems.bad_parameter("body", "the form is not UTF-8") from None
