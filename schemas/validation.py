"""Validation of audit events at the producer's edge, with errors that say what is wrong.

:class:`EventValidator` runs the model's checks (types, sizes, formats; see
:mod:`schemas.event`) and the rules that need context: the action must be in the activity
catalog (or an allowed ``custom.*`` action), its category and resource type must be the
catalog's, and ``occurred_at`` must lie within the policy's window around now. Every
problem is reported at once, each naming the field and the rule it broke.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from schemas.catalog import Catalog, load_catalog
from schemas.datum_validation import DatumValidator, utc_now
from schemas.event import AuditEvent

CUSTOM_PREFIX = "custom."
CUSTOM_CATEGORY = "custom"


@dataclass(frozen=True)
class Problem:
    """One broken rule: the field (dotted path), a stable rule name, and a message."""

    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} [{self.rule}]"


class InvalidEventError(ValueError):
    """An event that must not be published; ``problems`` lists every broken rule."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid audit event: " + "; ".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class ValidationPolicy:
    """What the validator accepts beyond the schema's own limits."""

    max_future_skew: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=30)
    allow_custom_actions: bool = False
    max_encoded_bytes: int = 64 * 1024


def problems_from(error: ValidationError) -> list[Problem]:
    """pydantic's errors as :class:`Problem` values."""
    return [
        Problem(".".join(str(part) for part in e["loc"]) or "(event)", e["type"], e["msg"])
        for e in error.errors(include_url=False)
    ]


class EventValidator:
    """Validates input (a mapping or an :class:`AuditEvent`) into a complete event.

    ``clock`` returns the current UTC time (injectable for tests). Thread-safe.
    """

    def __init__(
        self,
        policy: ValidationPolicy | None = None,
        catalog: Catalog | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.policy = policy or ValidationPolicy()
        self._catalog = catalog or load_catalog()
        self._clock = clock
        self._fast = DatumValidator(
            self._catalog,
            max_future_skew=self.policy.max_future_skew,
            max_age=self.policy.max_age,
            allow_custom_actions=self.policy.allow_custom_actions,
            clock=clock,
        )

    def validate_datum(self, data: Mapping[str, Any] | AuditEvent) -> dict[str, Any]:
        """The Avro datum of the validated event (what ``validate(data).to_avro()`` encodes
        to, byte for byte); raises :class:`InvalidEventError` as :meth:`validate` does.

        Plain dicts go through :class:`~schemas.datum_validation.DatumValidator` (no model
        instances); anything it does not take, valid or not, goes through :meth:`validate`,
        so rejections are the model's, word for word. Optional fields the input left out
        may be absent from the datum (the encoder writes them as null)."""
        datum = self._fast.datum(data)
        if datum is None:
            datum = self.validate(data).to_avro()
        return datum

    def validate(self, data: Mapping[str, Any] | AuditEvent) -> AuditEvent:
        """The validated event, with ``category`` filled in; raises :class:`InvalidEventError`."""
        if isinstance(data, AuditEvent):
            event = data
        else:
            try:
                event = AuditEvent.model_validate(data)
            except ValidationError as exc:
                raise InvalidEventError(problems_from(exc)) from None
        problems: list[Problem] = []
        category = self._check_action(event, problems)
        self._check_time(event.occurred_at, problems)
        if problems:
            raise InvalidEventError(problems)
        if category != event.category:
            event = event.model_copy(update={"category": category})
        return event

    def _check_action(self, event: AuditEvent, problems: list[Problem]) -> str | None:
        activity = self._catalog.activity(event.action)
        if activity is None:
            if not event.action.startswith(CUSTOM_PREFIX):
                problems.append(
                    Problem(
                        "action",
                        "unknown_action",
                        f"{event.action!r} is not in the activity catalog "
                        f"(docs/activities.md); custom activities are named "
                        f"'{CUSTOM_PREFIX}<resource>.<verb>' and must be allowed explicitly",
                    )
                )
            elif not self.policy.allow_custom_actions:
                problems.append(
                    Problem(
                        "action",
                        "custom_action_not_allowed",
                        f"{event.action!r} is a custom action; this producer does not allow "
                        "them (ValidationPolicy.allow_custom_actions)",
                    )
                )
            return event.category or CUSTOM_CATEGORY
        if event.category is not None and event.category != activity.category:
            problems.append(
                Problem(
                    "category",
                    "category_mismatch",
                    f"{event.action!r} belongs to category {activity.category!r}, "
                    f"not {event.category!r} (or leave category out)",
                )
            )
        if event.resource.type != activity.resource_type:
            problems.append(
                Problem(
                    "resource.type",
                    "resource_type_mismatch",
                    f"{event.action!r} acts on resource type {activity.resource_type!r}, "
                    f"not {event.resource.type!r}",
                )
            )
        return activity.category

    def _check_time(self, occurred_at: datetime, problems: list[Problem]) -> None:
        now = self._clock()
        if occurred_at > now + self.policy.max_future_skew:
            problems.append(
                Problem(
                    "occurred_at",
                    "in_future",
                    f"{occurred_at.isoformat()} is more than {self.policy.max_future_skew} "
                    f"ahead of now ({now.isoformat()}); check the producer's clock",
                )
            )
        elif occurred_at < now - self.policy.max_age:
            problems.append(
                Problem(
                    "occurred_at",
                    "too_old",
                    f"{occurred_at.isoformat()} is more than {self.policy.max_age.days} days "
                    f"old; older events are not accepted (ValidationPolicy.max_age)",
                )
            )
