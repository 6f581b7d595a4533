"""A small HTML page that tells a person, not a program, what went wrong and what to do:
a refused sign-in, a refused export form. Every value is escaped; the page has no script."""

from __future__ import annotations

import html
from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/static/app.css"></head>
<body><main class="notice"><h1>{title}</h1><p>{message}</p><p>{advice}</p>
<p><a href="{back}">{back_text}</a></p></main></body></html>
"""


def notice(
    title: str, message: str, advice: str, *, status: int, back: str = "/", back_text: str = ""
) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(
            title=html.escape(title),
            message=html.escape(message),
            advice=html.escape(advice),
            back=html.escape(same_origin_path(back)),
            back_text=html.escape(back_text or "Back to the activity audit log"),
        ),
        status_code=status,
    )


def same_origin_path(path: str | None) -> str:
    """``path`` when it is a path of this origin (``/...``, not ``//host`` nor ``/\\host``),
    else ``/``: the viewer never sends a person elsewhere."""
    if not path or not path.startswith("/") or path.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 0x20 or c in "\\\x7f" for c in path):
        return "/"
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        return "/"
    return path
