"""``AuditProducer``: validate, encode and publish audit events to Kafka.

    with AuditProducer(ProducerConfig(KafkaConnection("127.0.0.1:19092"))) as producer:
        producer.publish({"tenant_id": "acme", "occurred_at": ..., "action": "recipe.stopped",
                          "actor": {...}, "resource": {...}})
    # leaving the block flushes; events that failed raise DeliveryError there

Contract:

- ``publish`` validates first and raises :class:`~schemas.validation.InvalidEventError`
  before anything is sent. It then queues the event locally and returns its event id; it
  blocks only while the local queue is full, up to ``publish_timeout_s``, then raises
  :class:`~producers.delivery.PublishTimeoutError` (the event was not queued). Nothing is
  ever dropped silently.
- Every queued event ends in exactly one :class:`~producers.delivery.DeliveryResult`: given
  to the per-event callback and the producer-wide callback (on the producer's background
  thread: keep them short and thread-safe), resolved into the future of ``publish_future``,
  and counted in the next :meth:`flush` report (failures listed one by one).
- Records are keyed by tenant (per-tenant order) and carry the routing headers of
  :mod:`schemas.headers`. The client is idempotent with ``acks=all``.
- ``publish_datum`` is the bulk path for events validated upstream: no pydantic, only the
  encoder's own type checks.
- While Kafka refuses the client's credentials or certificates (see
  :mod:`runtime.kafka_refusal`), queued events fail at once, their result saying why,
  instead of waiting out the delivery timeout; events published later are tried again.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from producers.config import ProducerConfig
from producers.delivery import (
    DeliveryError,
    DeliveryResult,
    FlushReport,
    PublishError,
    PublishTimeoutError,
)
from producers.metrics import ProducerMetrics, producer_metrics
from runtime.kafka_logs import librdkafka_logger
from runtime.kafka_refusal import Refusal, refusal
from schemas import headers as h
from schemas.event import AuditEvent
from schemas.validation import EventValidator, InvalidEventError, Problem
from schemas.wire import Encoder, SingleObjectEncoder

DeliveryCallback = Callable[[DeliveryResult], None]

_CLIENT_LOG = librdkafka_logger("producer")
_POLL_INTERVAL_S = 0.05
# Refusals in a row, with no delivery between them, before queued events are failed.
_REFUSALS_BEFORE_PURGE = 2
_FULL_QUEUE_WAIT_S = 0.005


class AuditProducer:
    """A thread-safe audit event producer; one per process is plenty."""

    def __init__(
        self,
        config: ProducerConfig,
        *,
        validator: EventValidator | None = None,
        encoder: Encoder | None = None,
        on_delivery: DeliveryCallback | None = None,
        metrics: ProducerMetrics | None = None,
    ) -> None:
        self.config = config
        self._validator = validator or EventValidator()
        self._encoder = encoder or SingleObjectEncoder()
        self._schema_header = self._encoder.schema_ref.encode()
        self._on_delivery = on_delivery
        self._metrics = metrics or producer_metrics()
        self._published = self._metrics.published.labels(config.topic)
        self._failed_counter = self._metrics.failed.labels(config.topic)
        self._latency = self._metrics.delivery_latency.labels(config.topic)
        self._queue_full = self._metrics.queue_full_waits.labels(config.topic)
        # librdkafka's own log lines go to Python logging instead of stderr.
        self._refused: Refusal | None = None  # the last refusal since a delivery succeeded
        self._refusals_in_a_row = 0
        self._producer = Producer(
            {
                **config.client_properties(),
                "logger": _CLIENT_LOG,
                "error_cb": self._on_client_error,
            }
        )
        self._lock = threading.Lock()
        self._delivered = 0
        self._failures: list[DeliveryResult] = []
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="auditlog-producer-poll")
        self._poller.daemon = True
        self._poller.start()

    # -- publishing ---------------------------------------------------------------------

    def publish(
        self, event: Mapping[str, Any] | AuditEvent, on_delivery: DeliveryCallback | None = None
    ) -> str:
        """Validate, encode and queue one event; returns its event id (see module doc)."""
        try:
            validated = self._validator.validate(event)
        except InvalidEventError as exc:
            for problem in exc.problems:
                self._metrics.rejected.labels(problem.rule).inc()
            raise
        return self.publish_datum(validated.to_avro(), on_delivery)

    def publish_future(self, event: Mapping[str, Any] | AuditEvent) -> Future[DeliveryResult]:
        """Like :meth:`publish`, with the result in a future (failures resolve it too:
        check ``result().ok``)."""
        future: Future[DeliveryResult] = Future()
        self.publish(event, future.set_result)
        return future

    def publish_datum(
        self, datum: Mapping[str, Any], on_delivery: DeliveryCallback | None = None
    ) -> str:
        """Encode and queue an event already in Avro datum form (validated upstream).

        Raises :class:`InvalidEventError` if it does not fit the schema, and
        :class:`PublishTimeoutError` as :meth:`publish` does.
        """
        if self._closed.is_set():
            raise RuntimeError("this AuditProducer is closed")
        event_id = str(datum.get("event_id"))
        tenant_id = str(datum.get("tenant_id"))
        try:
            value = self._encoder.encode(datum)
        except (TypeError, ValueError) as exc:
            raise InvalidEventError([Problem("(event)", "schema_mismatch", str(exc))]) from exc
        if len(value) > self._validator.policy.max_encoded_bytes:
            raise InvalidEventError(
                [
                    Problem(
                        "(event)",
                        "too_large",
                        f"encoded event is {len(value)} bytes, more than "
                        f"{self._validator.policy.max_encoded_bytes}; shorten details or changes",
                    )
                ]
            )
        tenant = tenant_id.encode()
        record_headers: list[tuple[str, str | bytes | None]] = [
            (h.TENANT, tenant),
            (h.ACTION, str(datum.get("action")).encode()),
            (h.CATEGORY, str(datum.get("category")).encode()),
            (h.EVENT_ID, event_id.encode()),
            (h.SCHEMA, self._schema_header),
        ]
        # The client does not return headers for failed records: the ids travel here.
        callback = functools.partial(self._report_delivery, event_id, tenant_id, on_delivery)
        self._produce(value, tenant, record_headers, callback, event_id)
        return event_id

    def _produce(
        self,
        value: bytes,
        key: bytes,
        record_headers: list[tuple[str, str | bytes | None]],
        callback: Callable[[KafkaError | None, Message], None],
        event_id: str,
    ) -> None:
        if any(name == h.RECORD_KIND for name, _ in record_headers):
            raise PublishError(
                f"event {event_id}: the {h.RECORD_KIND!r} header is reserved for the integrity "
                "log's own records (docs/integrity.md); an event cannot carry it"
            )
        deadline: float | None = None
        while True:
            try:
                self._producer.produce(
                    self.config.topic,
                    value=value,
                    key=key,
                    headers=record_headers,
                    on_delivery=callback,
                )
                return
            except KafkaException as exc:
                raise PublishError(_explain(exc, self.config)) from exc
            except BufferError:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.config.publish_timeout_s
                    self._queue_full.inc()
                elif now >= deadline:
                    raise PublishTimeoutError(
                        event_id, self.config.publish_timeout_s, len(self._producer)
                    ) from None
                # Serve delivery reports here too, so room frees up as soon as it can.
                self._producer.poll(_FULL_QUEUE_WAIT_S)

    # -- delivery -----------------------------------------------------------------------

    def _report_delivery(
        self,
        event_id: str,
        tenant_id: str,
        on_delivery: DeliveryCallback | None,
        err: KafkaError | None,
        msg: Message,
    ) -> None:
        """Runs on the thread that polls the client (the background thread, or one blocked
        in publish or flush). The result object is only built when someone receives it."""
        latency_s = msg.latency() or 0.0
        if err is None:
            self._refused, self._refusals_in_a_row = None, 0  # Kafka takes us again
            self._published.inc()
            self._latency.observe(latency_s)
            with self._lock:
                self._delivered += 1
            if on_delivery is None and self._on_delivery is None:
                return
            result = DeliveryResult(
                event_id,
                tenant_id,
                self.config.topic,
                msg.partition(),
                msg.offset(),
                None,
                latency_s,
            )
        else:
            error = err.str()
            refused = self._refused
            if err.code() == KafkaError._PURGE_QUEUE and refused is not None:
                error = f"Kafka refused the connection: {refused.detail}"
            result = DeliveryResult(
                event_id, tenant_id, self.config.topic, None, None, error, latency_s
            )
            self._failed_counter.inc()
            with self._lock:
                self._failures.append(result)
        for callback in (on_delivery, self._on_delivery):
            if callback is not None:
                callback(result)

    def _on_client_error(self, error: KafkaError) -> None:
        """Runs on the thread that polls the client (as delivery reports do). A refusal
        repeated with no delivery succeeding in between (wrong credentials, an untrusted
        certificate: the client would retry forever) fails every event still waiting for
        a connection (purged: their results carry the refusal). A single refusal is not
        enough: one broker of a healthy cluster may refuse while the others deliver."""
        refused = refusal(error)
        if refused is None:
            return  # the client retries by itself; its log lines say what happened
        self._refused = refused
        self._refusals_in_a_row += 1
        if self._refusals_in_a_row >= _REFUSALS_BEFORE_PURGE:
            self._producer.purge(in_queue=True, in_flight=False, blocking=False)

    def _poll_loop(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(_POLL_INTERVAL_S)

    # -- flushing and closing -------------------------------------------------------------

    def in_flight(self) -> int:
        """Events queued or sent and not yet acknowledged or failed."""
        return len(self._producer)

    def flush(self, timeout_s: float | None = None) -> FlushReport:
        """Block until every queued event is acknowledged or failed, or ``timeout_s``
        passed (default: the delivery timeout plus a margin, after which the client has
        failed whatever it could not deliver). Reports and resets the counts since the
        previous flush."""
        if timeout_s is None:
            timeout_s = self.config.delivery_timeout_s + 5.0
        pending = self._producer.flush(timeout_s)
        with self._lock:
            report = FlushReport(self._delivered, tuple(self._failures), pending)
            self._delivered = 0
            self._failures = []
        return report

    def close(self, timeout_s: float | None = None) -> FlushReport:
        """Flush, stop the background thread, and raise :class:`DeliveryError` if any event
        failed or stayed undelivered since the last flush."""
        report = self.flush(timeout_s)
        self._closed.set()
        self._poller.join()
        if not report.ok:
            raise DeliveryError(report)
        return report

    def __enter__(self) -> AuditProducer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # Already failing: flush what was queued, but do not mask the original error.
        with contextlib.suppress(DeliveryError):
            self.close()


def _explain(exc: KafkaException, config: ProducerConfig) -> str:
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError) and error.code() in (
        KafkaError._UNKNOWN_TOPIC,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    ):
        return (
            f"topic {config.topic!r} does not exist on {config.kafka.bootstrap}; "
            "create it with `auditlog topics ensure`"
        )
    return f"the Kafka client refused the event: {exc}"
