"""The metric names each of our processes exports, and the metric names a PromQL expression
uses: what the alert rule and dashboard checks compare.

:func:`exported_metrics` builds, per scrape job (``writer``, ``sinks``, ``viewer``,
``integrity``: the jobs of ``deploy/prometheus/prometheus.yml``), a registry the way that
process fills its own: the metric factories it calls, and the default collectors of
``prometheus_client``'s process-wide registry (``process_*``, ``python_*``) for the three
that serve that registry on their health port; the viewer serves a registry of its own.
Names are the samples' names as scraped (``_total``, ``_bucket``, ``_count``, ``_sum``,
``_created``), taken from each family's type, so labelled metrics that have no series yet
count too.

:func:`selectors` finds the metric names of a PromQL expression (and the ``job`` each
selector matches, if any) with a small tokenizer: it knows PromQL's functions and keywords
by their shape (a name followed by ``(``, the grouping and set operators), skips strings,
label matchers, ranges and grouping label lists. It is not a parser: promtool is, and the
tests run every expression through it as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
)
from prometheus_client.registry import Collector

from consumers.metrics import writer_metrics
from integrity.metrics import integrity_metrics
from producers.metrics import producer_metrics
from sinks.metrics import sink_metrics
from viewer.app import create_app
from viewer.routes import ViewerServices
from viewer.viewing_audit import ViewingAudit

JOBS = ("writer", "sinks", "viewer", "integrity")
# Series Prometheus writes itself for every target.
SCRAPE_SERIES = frozenset(
    {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"}
)
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "unknown": ("",),
}


def _default_collectors(registry: CollectorRegistry) -> None:
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(cast(Collector, collector))


def _writer() -> CollectorRegistry:
    registry = CollectorRegistry()
    _default_collectors(registry)
    writer_metrics(registry)
    return registry


def _sinks() -> CollectorRegistry:
    registry = CollectorRegistry()
    _default_collectors(registry)
    sink_metrics(registry)
    producer_metrics(registry)  # the producer that publishes automatic pauses
    return registry


def _integrity() -> CollectorRegistry:
    registry = CollectorRegistry()
    _default_collectors(registry)
    integrity_metrics(registry)
    return registry


def _viewer() -> CollectorRegistry:
    registry = CollectorRegistry()
    unused = cast(Any, None)
    services = ViewerServices(
        verifier=unused, facts_of=unused, reader=unused, audit=unused, limiter=unused,
        exports=unused,
    )  # fmt: skip
    create_app(services, health=dict, registry=registry)
    ViewingAudit(unused, registry=registry)
    return registry


def _names(registry: CollectorRegistry) -> frozenset[str]:
    names: set[str] = set()
    for family in registry.collect():
        if family.samples:
            names.update(sample.name for sample in family.samples)
        else:  # labelled, no series yet: the names its type gives its samples
            names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return frozenset(names)


@cache
def exported_metrics() -> dict[str, frozenset[str]]:
    """Per scrape job, the sample names its process exports."""
    builders = {"writer": _writer, "sinks": _sinks, "viewer": _viewer, "integrity": _integrity}
    return {job: _names(build()) for job, build in builders.items()}


@dataclass(frozen=True)
class Selector:
    """One metric selector of an expression: the metric's name, the job it matches (the
    value of a ``job="..."`` matcher; None without one or with a regex)."""

    metric: str
    job: str | None


_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
     "bool", "offset", "atan2", "inf", "nan"}
)  # fmt: skip
_TOKEN = re.compile(
    r"""
      (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<matchers>\{[^}]*\})
    | (?P<range>\[[^\]]*\])
    | (?P<number>\d[\w.]*)
    | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<space>\s+)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_JOB = re.compile(r"""\bjob\s*=\s*"([^"]*)\"""")


def _tokens(expr: str) -> Iterator[tuple[str, str]]:
    for match in _TOKEN.finditer(expr):
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            yield kind, match.group()


def selectors(expr: str) -> list[Selector]:
    """The metric selectors of a PromQL expression, in order (see the module docstring).
    A selector with no name (``{__name__=~"..."}``) raises ``ValueError``: the checks could
    not tell which metrics it means."""
    tokens = list(_tokens(expr))
    found: list[Selector] = []
    skip_list = False
    for i, (kind, text) in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "name" and text in _GROUPING:
            skip_list = following[1] == "("
            continue
        if skip_list:  # the label names of by (...), on (...): not metrics
            if kind == "other" and text == ")":
                skip_list = False
            continue
        if kind == "matchers":
            previous = tokens[i - 1] if i else ("", "")
            if previous[0] != "name":
                raise ValueError(f"a selector without a metric name in {expr!r}")
            continue
        if kind != "name" or text.lower() in _KEYWORDS or following[1] == "(":
            continue  # a function, an aggregation (sum (...)) or a keyword
        if following[0] == "name" and following[1] in ("by", "without"):
            continue  # an aggregation: sum by (...) (...)
        job = _JOB.search(following[1]) if following[0] == "matchers" else None
        found.append(Selector(text, job.group(1) if job else None))
    return found


def unexported(expr: str) -> list[Selector]:
    """The selectors of ``expr`` naming a metric that is not exported: by the job the
    selector matches, or by any of our jobs when it matches none."""
    exported = exported_metrics()
    everything = SCRAPE_SERIES.union(*exported.values())
    unknown = []
    for found in selectors(expr):
        known = everything if found.job is None else exported.get(found.job, everything)
        if found.metric not in known | SCRAPE_SERIES:
            unknown.append(found)
    return unknown
