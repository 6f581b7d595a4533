"""Go tools the tests run (promtool, ...), built before the first test and outside every
test's timeout.

A test module that needs a tool marks itself ``pytest.mark.go_tool(TOOL)`` (a
:class:`deploy.tools.go_tools.GoTool`) and gets the binary from :func:`tool_binary`.
``conftest.py`` calls :func:`build_marked_tools` once the tests are collected: each tool the
selected tests mark is built into the cache (``AUDITLOG_CACHE_DIR``, ``.cache/`` by default)
unless it is there. Without Go on PATH the marked tests are skipped, saying so, except on CI
(``CI`` set), which has Go: there they fail. Any other failure (Go too old, the build
failed) fails them with the builder's message.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from deploy.tools import go_tools

_BUILT = pytest.StashKey[dict[str, Path | go_tools.GoToolError]]()
MARKER = "go_tool"


def marked_tools(items: list[pytest.Item]) -> list[go_tools.GoTool]:
    """The tools the ``go_tool`` markers of ``items`` name, each once, in order."""
    tools: dict[str, go_tools.GoTool] = {}
    for item in items:
        for marker in item.iter_markers(MARKER):
            for tool in marker.args:
                if not isinstance(tool, go_tools.GoTool):
                    raise TypeError(f"{item.nodeid}: go_tool takes GoTool specs, not {tool!r}")
                tools.setdefault(f"{tool.name}@{tool.version}", tool)
    return list(tools.values())


def build_marked_tools(
    config: pytest.Config,
    items: list[pytest.Item],
    cache_dir: Path,
    on_progress: Callable[[str], None],
) -> None:
    """Build every tool the selected tests mark (minutes on first use, nothing after);
    what came of each is kept for :func:`tool_binary`."""
    built: dict[str, Path | go_tools.GoToolError] = {}
    for tool in marked_tools(items):
        try:
            built[tool.name] = go_tools.ensure(tool, cache_dir, on_progress=on_progress)
        except go_tools.GoToolError as exc:
            built[tool.name] = exc
    config.stash[_BUILT] = built


def tool_binary(config: pytest.Config, tool: go_tools.GoTool) -> Path:
    """The binary built for ``tool`` before the tests started; skips the test when there is
    no Go on PATH (not on CI), fails it when the build failed."""
    result = config.stash.get(_BUILT, {}).get(tool.name)
    if isinstance(result, Path):
        return result
    if result is None:
        pytest.fail(f"{tool.name} was not built: mark the test pytest.mark.go_tool({tool.name})")
    message = str(result)
    if message.startswith("go not found on PATH") and not os.environ.get("CI"):
        pytest.skip(f"{tool.name} cannot be built: {message}")
    pytest.fail(message, pytrace=False)
