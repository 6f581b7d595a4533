"""What Kafka answers while a partition leader or a group coordinator moves to another broker
(a broker crashed or shut down), and a read retried through it.

librdkafka does not flag all of these ``retriable()``: a metadata or offsets request to a
broker that just died times out, finds its handle destroyed, or reaches a broker that is no
longer the leader. They last until the controller has elected another leader (seconds; a
broker session timeout after a crash). A worker must ride them out, not exit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import KafkaError, KafkaException

_T = TypeVar("_T")

FAILOVER_ERRORS = frozenset(
    {
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._DESTROY_BROKER,
        KafkaError._WAIT_COORD,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    }
)
FAILOVER_WAIT_S = 120.0


def is_failover(exc: KafkaException) -> bool:
    """True if ``exc`` is retriable or one of :data:`FAILOVER_ERRORS`."""
    error = exc.args[0] if exc.args else None
    return isinstance(error, KafkaError) and (error.retriable() or error.code() in FAILOVER_ERRORS)


def while_failing_over(
    call: Callable[[], _T], what: str, log: logging.Logger, *, wait_s: float = FAILOVER_WAIT_S
) -> _T:
    """``call()``, again every half second while it raises a failover error (logged as a
    warning naming ``what``); the last error after ``wait_s``, any other error at once."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return call()
        except KafkaException as exc:
            if not is_failover(exc) or time.monotonic() > deadline:
                raise
            log.warning("kafka failing over; retrying", extra={"reading": what, "error": str(exc)})
            time.sleep(0.5)
