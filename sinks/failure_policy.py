"""What a failed delivery leads to: when the batch is tried again, whether the lane is
parked, whether the destination is paused. Pure: no clock, no I/O; the caller passes the
time (monotonic seconds) and the randomness of the jitter.

- **Retry.** A lane keeps the failed batch in flight and resends it, byte for byte, after
  a delay: the jittered backoff (:class:`runtime.backoff.Backoff`, shared with the writer),
  at least what the destination asked for in ``Retry-After`` (:func:`sinks.retry.next_delay`);
  a permanent error (:class:`~sinks.senders.base.PermanentDeliveryError`: a 4xx, a missing
  bucket) waits the longest backoff, as someone may fix the destination; an error of the
  base class (an unmapped client error) the backoff alone.
- **Park.** A failing destination never holds the others back: a lane fed by the group
  (``live``) is parked at once on a permanent error, and after ``park_after_s`` of failures
  in a row otherwise. Parking drops the lane's unsent records from memory, writes its
  position to the progress topic and lets the group commit past it; the lane retries its
  batch alone, then catches up on its own reader (:mod:`sinks.catchup`). A lane behind the
  group already is not parked again. A live lane whose backlog is full is parked too, by
  :mod:`sinks.dispatch`, without a failure.
- **Pause.** A destination failing for ``auto_pause_after_s`` is paused through the store
  (published as an audit event), once per worker until it is deliverable again; resume
  continues from where it stopped while the topic still holds the events.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.backoff import Backoff, UniformSource
from sinks.lane import LaneMode
from sinks.retry import next_delay
from sinks.senders.base import DeliveryError, PermanentDeliveryError, RetryableDeliveryError


@dataclass(frozen=True)
class Failure:
    """A failed delivery of a lane's batch, and the lane's history before it."""

    error: DeliveryError
    attempt: int  # failed attempts of this batch before this one (0: its first failure)
    failing_since_s: float | None  # the first failure in a row; None: this is the first
    mode: LaneMode  # the lane's mode when the delivery failed
    now_s: float
    pause_requested: bool = False  # this worker already asked to pause the destination


@dataclass(frozen=True)
class Decision:
    """What to do: retry after ``retry_in_s``; ``park`` the lane; ``pause`` the
    destination. ``failing_for_s``: how long the lane has failed, this failure included."""

    permanent: bool
    retry_in_s: float
    park: bool
    pause: bool
    failing_for_s: float

    def park_reason(self, error: DeliveryError) -> str:
        return f"{'permanent error' if self.permanent else 'failing'}: {error}"


@dataclass(frozen=True)
class FailurePolicy:
    """See the module docstring."""

    backoff: Backoff
    park_after_s: float
    auto_pause_after_s: float

    def decide(self, failure: Failure, rng: UniformSource) -> Decision:
        error = failure.error
        permanent = isinstance(error, PermanentDeliveryError)
        if permanent:
            delay = self.backoff.max_s
        elif isinstance(error, RetryableDeliveryError):
            delay = next_delay(error, failure.attempt, self.backoff, rng)
        else:  # a sender raised the base class: retry as if no Retry-After was given
            delay = self.backoff.delay(failure.attempt, rng)
        since = failure.now_s if failure.failing_since_s is None else failure.failing_since_s
        failing_for = failure.now_s - since
        return Decision(
            permanent=permanent,
            retry_in_s=delay,
            park=failure.mode == "live" and (permanent or failing_for >= self.park_after_s),
            pause=failing_for >= self.auto_pause_after_s and not failure.pause_requested,
            failing_for_s=failing_for,
        )
