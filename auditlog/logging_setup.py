"""Structured logs: one JSON object per line, configured once by the command line.

Library code only logs (``logging.getLogger(...)``, with ``extra={...}`` for fields such as
``partition``, ``first_offset``, ``last_offset``, ``rows``, ``seconds``); the ``auditlog``
command that runs a long-lived process calls :func:`configure_json_logging` once.

A line holds ``time`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``, ``message``,
every ``extra`` field, and ``exc_info`` / ``stack_info`` as text when present. Values JSON
cannot hold are written as their ``str()``. An extra named like one of the fixed keys is
written as ``extra_<name>`` so it never hides them. Credentials in URLs anywhere in a line
(``user:password@``, secret query values) are masked (:mod:`runtime.redaction`), whoever
logged them: our code, clickhouse-connect, urllib3 or librdkafka.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from runtime.redaction import redact_text

_FIXED_KEYS: Final = frozenset({"time", "level", "logger", "message", "exc_info", "stack_info"})
# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None))
) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (see the module's docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "time": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key in _RECORD_ATTRIBUTES:
                continue
            entry[f"extra_{key}" if key in _FIXED_KEYS else key] = _redacted(value)
        if record.exc_info:
            entry["exc_info"] = redact_text(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc_info"] = redact_text(record.exc_text)
        if record.stack_info:
            entry["stack_info"] = redact_text(self.formatStack(record.stack_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def _redacted(value: Any) -> Any:
    """``value`` for a log line: numbers, booleans and None as they are; lists, tuples and
    dicts item by item; anything else (strings, exceptions, URLs, paths) as text with its
    credentials masked."""
    if value is None or isinstance(value, int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _redacted(item) for key, item in value.items()}
    return redact_text(str(value))


class _JsonHandler(logging.StreamHandler[TextIO]):
    """The handler :func:`configure_json_logging` installs (recognised by its type)."""


def configure_json_logging(level: str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Send every log record at ``level`` or above to ``stream`` (stderr) as JSON lines.

    Installs one handler on the root logger and sets the root level. Idempotent: a second
    call reconfigures the handler installed by the first (level, stream) instead of adding
    another. Other handlers on the root logger are left alone. Raises ``ValueError`` for an
    unknown level name. Returns the handler.
    """
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"unknown log level: {level!r}")
    target = stream if stream is not None else sys.stderr
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _JsonHandler)), None)
    if handler is None:
        handler = _JsonHandler(target)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    elif handler.stream is not target:
        handler.setStream(target)
    handler.setLevel(numeric)
    root.setLevel(numeric)
    return handler


# Loggers of the libraries we drive: librdkafka (through every Kafka client's ``logger``
# setting, see runtime.kafka_logs), clickhouse-connect, urllib3 (under clickhouse-connect).
LIBRARY_LOGGERS: Final = ("librdkafka", "clickhouse_connect", "urllib3")


class _DebugLevelHandler(logging.Handler):
    """Hands a library's record to the root logger's handlers as a DEBUG record: it shows
    in the JSON log at level DEBUG, and never reaches the terminal through Python's
    last-resort handler (which prints WARNING and above when no handler is configured)."""

    def emit(self, record: logging.LogRecord) -> None:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        logging.getLogger().handle(record)


def route_library_logs(names: tuple[str, ...] = LIBRARY_LOGGERS) -> None:
    """Send the records of the loggers ``names`` (and their children) to the JSON log at
    level DEBUG, whatever level the library gave them: what went wrong reaches the user
    as the command's own one-line message, the library's view of it stays in the log.
    Idempotent; the command line calls it once, before a command runs."""
    for name in names:
        logger = logging.getLogger(name)
        logger.propagate = False
        if not any(isinstance(h, _DebugLevelHandler) for h in logger.handlers):
            logger.addHandler(_DebugLevelHandler())
