"""How the tests get their Go tools (:mod:`tests.go_tool_support`): the tools the markers
name, each built once; a test skipped when Go is missing (failed on CI), failed when the
build failed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from tests import go_tool_support
from tests.unit.fake_go import fake_go_environ, installs
from tests.unit.test_go_tools import TOOL

OTHER = dataclasses.replace(TOOL, name="other", package="example.com/checks/cmd/other")


@dataclasses.dataclass
class _Item:
    """What the support module reads of a collected test: its ``go_tool`` markers."""

    tools: tuple[Any, ...]
    nodeid: str = "tests/unit/test_x.py::test_y"

    def iter_markers(self, name: str) -> Iterator[pytest.Mark]:
        assert name == go_tool_support.MARKER
        yield pytest.mark.go_tool(*self.tools).mark


@dataclasses.dataclass
class _Config:
    stash: pytest.Stash = dataclasses.field(default_factory=pytest.Stash)


def _items(*tools: tuple[Any, ...]) -> list[pytest.Item]:
    return cast(list[pytest.Item], [_Item(marked) for marked in tools])


def test_each_marked_tool_is_named_once() -> None:
    items = _items((TOOL,), (TOOL, OTHER), ())
    assert go_tool_support.marked_tools(items) == [TOOL, OTHER]


def test_a_marker_naming_something_else_is_refused() -> None:
    with pytest.raises(TypeError, match=r"go_tool takes GoTool specs, not 'promtool'"):
        go_tool_support.marked_tools(_items(("promtool",)))


def test_marked_tools_are_built_once_and_handed_to_the_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = fake_go_environ(tmp_path)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    config = cast(pytest.Config, _Config())
    said: list[str] = []

    go_tool_support.build_marked_tools(
        config, _items((TOOL,), (TOOL,)), tmp_path / "cache", said.append
    )

    assert go_tool_support.tool_binary(config, TOOL) == TOOL.binary_path(tmp_path / "cache")
    assert len(installs(environ)) == 1
    assert len(said) == 1


@pytest.mark.parametrize("ci", ["", "true"])
def test_without_go_a_test_is_skipped_except_on_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", ci)
    config = cast(pytest.Config, _Config())
    go_tool_support.build_marked_tools(config, _items((TOOL,)), tmp_path / "cache", print)

    expected = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(expected, match=r"go not found on PATH: the rule checker is built"):
        go_tool_support.tool_binary(config, TOOL)


def test_a_failed_build_fails_the_test_with_its_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = {**fake_go_environ(tmp_path), "FAKE_GO_FAIL": "1"}
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    config = cast(pytest.Config, _Config())
    go_tool_support.build_marked_tools(config, _items((TOOL,)), tmp_path / "cache", print)

    with pytest.raises(pytest.fail.Exception, match=r"checker@v1.2.3 failed \(exit 1\)"):
        go_tool_support.tool_binary(config, TOOL)


def test_an_unmarked_tool_fails_saying_how_to_mark_it() -> None:
    config = cast(pytest.Config, _Config())
    with pytest.raises(pytest.fail.Exception, match=r"mark the test pytest.mark.go_tool"):
        go_tool_support.tool_binary(config, TOOL)
