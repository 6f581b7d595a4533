"""The Python loggers that Kafka clients hand to librdkafka (their ``logger`` setting).

Every one is a child of ``librdkafka``, so the command line routes all of librdkafka's
lines in one place (:func:`auditlog.logging_setup.route_library_logs`): to the JSON log at
debug level, never to the terminal.
"""

from __future__ import annotations

import logging


def librdkafka_logger(client: str) -> logging.Logger:
    """The logger of librdkafka's lines for one kind of ``client`` (``producer``,
    ``writer``...)."""
    return logging.getLogger(f"librdkafka.{client}")
