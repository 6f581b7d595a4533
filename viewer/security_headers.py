"""The security headers on every answer of the viewer, and the page's Content-Security-Policy.

The page runs only its own script and styles (``'self'``, no inline code, no ``eval``),
talks only to its own origin, and may be framed only by the origins an operator lists
(``AUDITLOG_VIEWER_FRAME_ANCESTORS``; none by default). Other answers (JSON, files) get a
policy that allows nothing at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

NO_FRAMING = "'none'"
_ORIGIN = re.compile(r"https://[A-Za-z0-9.-]+(:\d{1,5})?|'self'")

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'"
)
OTHER_POLICY = "default-src 'none'"

COMMON: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": (
        "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"
    ),
}


def frame_ancestors_problem(value: str) -> str | None:
    """Why ``value`` is not a frame-ancestors list (``'none'``, or ``'self'`` and
    ``https://host[:port]`` origins separated by spaces), or None."""
    if value.strip() == NO_FRAMING:
        return None
    sources = value.split()
    if not sources or not all(_ORIGIN.fullmatch(source) for source in sources):
        return (
            "must be 'none', or 'self' and https:// origins separated by spaces "
            "(e.g. https://app.example.com)"
        )
    return None


def security_headers(*, frame_ancestors: str, page: bool, https: bool) -> dict[str, str]:
    """The headers for one answer: ``page`` for the HTML page, ``https`` when the request
    came over TLS (then browsers are told to keep to HTTPS)."""
    policy = PAGE_POLICY if page else OTHER_POLICY
    headers = {
        **COMMON,
        "Content-Security-Policy": f"{policy}; frame-ancestors {frame_ancestors.strip()}",
    }
    if frame_ancestors.strip() == NO_FRAMING:
        headers["X-Frame-Options"] = "DENY"
    if https:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers
