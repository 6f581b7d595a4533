"""The rules a destination must follow beyond the shape its model checks, for every front
end that adds or changes one (the command line today, the viewer API later).

:func:`check` raises :class:`DestinationRefused` at the first rule the destination breaks:

- filters name categories and actions of the activity catalog (or ``custom.*`` actions);
- secret references name only variables the operator allows;
- an S3 destination's static keys come as a pair; a KMS key needs ``aws:kms`` encryption;
- URLs (webhook, Splunk HEC, S3 endpoint) are https to public addresses
  (:func:`sinks.address_guard.vet_url`);
- an S3 role is assumed with the service's external id only, and without a role or keys of
  its own a destination is written with the workers' credentials only where the operator
  lends them;
- a webhook's extra headers have HTTP header names and one-line values;
- Splunk HEC takes NDJSON only.

Given ``before`` (the destination as stored, for a change), what did not change is not
judged again: a URL is vetted and a filter looked up only when new. Vetting a URL resolves
its host (``policy.resolve``); nothing else does I/O.

A refusal says what is wrong and what to do, naming settings as :class:`Setting` parts that
each front end spells its own way (:meth:`DestinationRefused.render`: ``--kms-key-id`` on
the command line); ``str()`` names them by their path in the model (``target.kms_key_id``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from runtime.redaction import redact_url
from schemas.catalog import Catalog
from sinks.address_guard import Resolver, UnsafeDestinationError, resolve_with_dns, vet_url
from sinks.destinations.model import Destination, Filters, S3Target, WebhookTarget, secrets_of
from sinks.destinations.references import ReferencePolicy, ReferenceRefused
from sinks.senders.http import FORBIDDEN_IN_VALUE, HEADER_NAME
from sinks.senders.s3_confinement import role_external_id

FILTER_FIELDS = ("include_categories", "exclude_categories", "include_actions", "exclude_actions")


@dataclass(frozen=True)
class Setting:
    """A setting of a destination named in a refusal: its path in the model
    (``target.kms_key_id``, ``filters.include_actions``, ``format``)."""

    path: str


class DestinationRefused(ValueError):
    """A destination breaks a rule; the message says which and what to do.

    ``parts`` is the message: text, and the :class:`Setting` s it names.
    """

    def __init__(self, *parts: str | Setting) -> None:
        self.parts = parts
        super().__init__(self.render())

    @property
    def settings(self) -> tuple[str, ...]:
        """The paths of the settings the message names, in order."""
        return tuple(part.path for part in self.parts if isinstance(part, Setting))

    def render(self, name: Callable[[str], str] = lambda path: path) -> str:
        """The message, each setting named by ``name(path)`` (default: the path)."""
        return "".join(part if isinstance(part, str) else name(part.path) for part in self.parts)


@dataclass(frozen=True)
class DestinationPolicy:
    """What the operator allows, read once from the settings at the edge
    (:func:`auditlog.wiring.destination_policy`).

    ``references``: the variables a secret reference may name. ``allow_local``: http and
    local addresses (local development only). ``s3_worker_credentials``: an S3 destination
    without a role or keys of its own is written with the workers' credentials.
    ``resolve``: how a URL's host is resolved when vetted.
    """

    references: ReferencePolicy
    allow_local: bool = False
    s3_worker_credentials: bool = False
    resolve: Resolver = resolve_with_dns


def check(
    destination: Destination,
    *,
    policy: DestinationPolicy,
    catalog: Catalog,
    before: Destination | None = None,
) -> None:
    """Raise :class:`DestinationRefused` at the first rule ``destination`` breaks (see the
    module); ``before``: the stored destination it changes, None for a new one."""
    old_filters = before.filters if before is not None else Filters()
    for field in FILTER_FIELDS:
        new = getattr(destination.filters, field) - getattr(old_filters, field)
        check_filter_values(f"filters.{field}", sorted(new), catalog)
    _check_secret_references(destination, policy.references)
    target = destination.target
    old = before.target if before is not None else None
    if isinstance(target, S3Target):
        _check_s3_keys(target)
        same = isinstance(old, S3Target) and old.endpoint_url == target.endpoint_url
        if target.endpoint_url and not same:
            _vet(target.endpoint_url, policy)
    elif old is None or getattr(old, "url", None) != target.url:
        _vet(target.url, policy)
    if isinstance(target, S3Target):
        _check_s3_credentials(destination, target, policy)
    if isinstance(target, WebhookTarget):
        for name, value in target.headers.items():
            check_header(name, value)
    if destination.kind == "splunk_hec" and destination.format != "ndjson":
        raise DestinationRefused("Splunk HEC takes ", Setting("format"), " ndjson only")


def check_filter_values(path: str, values: Iterable[str], catalog: Catalog) -> None:
    """Raise :class:`DestinationRefused` for a value of the filter at ``path``
    (``filters.include_categories``...) that names no category, or no action of the
    activity catalog nor a ``custom.*`` action."""
    for value in values:
        if path.endswith("categories"):
            if catalog.category(value) is None:
                known = ", ".join(c.id for c in catalog.categories)
                raise DestinationRefused(
                    Setting(path), f" {value!r}: not a category (known: {known})"
                )
        elif catalog.activity(value) is None and not value.startswith("custom."):
            raise DestinationRefused(
                Setting(path),
                f" {value!r}: not an action of the activity catalog (docs/activities.md) nor a "
                "custom.* action",
            )


def check_header(name: str, value: str) -> None:
    """Raise :class:`DestinationRefused` for an extra header of a webhook that is not an
    HTTP header name, or whose value holds a line break or NUL (it would forge headers)."""
    if not HEADER_NAME.fullmatch(name):
        raise DestinationRefused(
            Setting("target.headers"),
            f" {name!r}: not an HTTP header name (letters, digits and !#$%&'*+.^_`|~-)",
        )
    if FORBIDDEN_IN_VALUE.search(value):
        raise DestinationRefused(
            Setting("target.headers"), f" {name}: the value may not span lines nor hold NUL"
        )


def _check_secret_references(destination: Destination, references: ReferencePolicy) -> None:
    for value in secrets_of(destination.target).values():
        if value.ref is None:
            continue
        try:
            references.check(value.ref)
        except ReferenceRefused as exc:
            raise DestinationRefused(
                f"{exc} (AUDITLOG_SINK_SECRET_REF_PREFIX, AUDITLOG_SINK_SECRET_REF_NAMES)"
            ) from None


def _check_s3_keys(target: S3Target) -> None:
    if (target.access_key_id is None) != (target.secret_access_key is None):
        raise DestinationRefused(
            "give both ",
            Setting("target.access_key_id"),
            " and ",
            Setting("target.secret_access_key"),
            ", or neither (then the workers' own credentials or ",
            Setting("target.role_arn"),
            " are used)",
        )
    if target.kms_key_id is not None and target.server_side_encryption != "aws:kms":
        raise DestinationRefused(
            Setting("target.kms_key_id"),
            " needs ",
            Setting("target.server_side_encryption"),
            " aws:kms",
        )


def _vet(url: str, policy: DestinationPolicy) -> None:
    try:
        vet_url(url, allow_local=policy.allow_local, resolve=policy.resolve)
    except UnsafeDestinationError as exc:
        raise DestinationRefused(f"{redact_url(url)}: {exc}") from None


def _check_s3_credentials(
    destination: Destination, target: S3Target, policy: DestinationPolicy
) -> None:
    """A role is assumed with the service's external id only; without a role or keys of
    its own, a destination would be written with the workers' credentials."""
    if target.role_arn is not None:
        expected = role_external_id(destination.tenant_id)
        if target.external_id not in (None, expected):
            raise DestinationRefused(
                Setting("target.external_id"),
                f" {target.external_id!r}: the external id is chosen by the service, not the "
                f"tenant; the workers send {expected!r} for tenant {destination.tenant_id}: "
                "require it in the role's trust policy and leave ",
                Setting("target.external_id"),
                " out",
            )
    elif target.access_key_id is None and not policy.s3_worker_credentials:
        raise DestinationRefused(
            "an s3 destination needs credentials of its own: ",
            Setting("target.role_arn"),
            ", or ",
            Setting("target.access_key_id"),
            " and ",
            Setting("target.secret_access_key"),
            " (the workers' own AWS credentials are lent only with "
            "AUDITLOG_SINK_S3_ALLOW_WORKER_CREDENTIALS)",
        )
