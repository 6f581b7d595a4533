"""The viewer's OpenAPI document, as checked in at ``docs/viewer-openapi.json``.

``python -m viewer.openapi_document > docs/viewer-openapi.json`` rewrites it after an API
change; ``tests/unit/test_viewer_openapi.py`` fails while the copy differs from what the
app serves.
"""

from __future__ import annotations

import json
from typing import Any, cast

from prometheus_client import CollectorRegistry

from viewer.app import create_app
from viewer.routes import ViewerServices


def document() -> dict[str, Any]:
    """The document the app serves at ``/openapi.json`` (no service is called to make it)."""
    unused = cast(Any, None)
    services = ViewerServices(
        verifier=unused,
        facts_of=unused,
        reader=unused,
        audit=unused,
        limiter=unused,
        exports=unused,
    )
    app = create_app(services, health=dict, registry=CollectorRegistry())
    return app.openapi()


def text() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(text(), end="")
