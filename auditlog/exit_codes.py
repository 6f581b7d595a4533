"""The exit codes of the ``auditlog`` command, by name.

0-6 keep the meanings each command documents (``--help`` and the README): 1 a service
failed while the command worked, 2 invalid input or settings, 3-6 command-specific outcomes
(rejected lines, the dead-letter limit, drift, no such destination, an audit event not
published, destinations behind; ``doctor``'s warnings under ``--strict``, 3). 10-17 are
setup mistakes, the same code for the same mistake whichever command meets it, each printed
as one line saying what to do (:mod:`auditlog.setup_failures`); ``doctor`` reports them as
failed checks (1) instead, since it goes on after the first. 130 is Ctrl-C, as shells
report SIGINT.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    INVALID = 2
    KAFKA_UNREACHABLE = 10
    TOPIC_MISSING = 11
    CLICKHOUSE_UNREACHABLE = 12
    SCHEMA_BEHIND = 13  # missing, or older than the code: `auditlog migrate`
    SCHEMA_AHEAD = 14  # newer than the code: run the version that migrated it
    SECRETS_KEY_MISSING = 15
    PORT_IN_USE = 16
    CREDENTIALS_REFUSED = 17  # Kafka or ClickHouse refused our credentials or certificate
    INTERRUPTED = 130
