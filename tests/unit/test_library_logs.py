"""The libraries' own log lines (librdkafka through our clients' loggers, clickhouse-connect,
urllib3) reach the JSON log at debug level and never the terminal."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from auditlog.logging_setup import LIBRARY_LOGGERS, configure_json_logging, route_library_logs
from runtime.kafka_logs import librdkafka_logger


@pytest.fixture
def restored() -> Iterator[None]:
    """Leave the logging configuration as the test found it."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    saved = {
        name: (logging.getLogger(name).propagate, list(logging.getLogger(name).handlers))
        for name in LIBRARY_LOGGERS
    }
    yield
    root.setLevel(level)
    root.handlers[:] = handlers
    for name, (propagate, kept) in saved.items():
        logging.getLogger(name).propagate = propagate
        logging.getLogger(name).handlers[:] = kept


def _library_lines() -> None:
    librdkafka_logger("producer").error(
        "FAIL [rdkafka#producer-1] [thrd:127.0.0.1:1/bootstrap]: Connect failed"
    )
    logging.getLogger("clickhouse_connect.driver.httpclient").error(
        "Unexpected Http Driver Exception"
    )
    logging.getLogger("urllib3.connectionpool").warning(
        "Retrying after connection broken by http://bob:pw@ch:8123"
    )


@pytest.mark.usefixtures("restored")
def test_without_a_log_handler_nothing_reaches_the_terminal(
    capfd: pytest.CaptureFixture[str],
) -> None:
    for handler in list(logging.getLogger().handlers):
        logging.getLogger().removeHandler(handler)
    logging.getLogger().setLevel(logging.WARNING)
    route_library_logs()
    route_library_logs()  # idempotent: still one handler each
    _library_lines()
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    added = [
        [type(h).__name__ for h in logging.getLogger(name).handlers].count("_DebugLevelHandler")
        for name in LIBRARY_LOGGERS
    ]
    assert added == [1] * len(LIBRARY_LOGGERS)


@pytest.mark.usefixtures("restored")
def test_they_are_debug_lines_of_the_json_log() -> None:
    route_library_logs()
    at_info = io.StringIO()
    configure_json_logging("INFO", at_info)
    _library_lines()
    assert at_info.getvalue() == ""
    at_debug = io.StringIO()
    configure_json_logging("DEBUG", at_debug)
    _library_lines()
    lines = [json.loads(line) for line in at_debug.getvalue().splitlines()]
    assert [(line["level"], line["logger"]) for line in lines] == [
        ("DEBUG", "librdkafka.producer"),
        ("DEBUG", "clickhouse_connect.driver.httpclient"),
        ("DEBUG", "urllib3.connectionpool"),
    ]
    assert "pw" not in lines[2]["message"]
