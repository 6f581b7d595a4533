"""What an S3 destination's objects are named and labelled.

Object keys are deterministic (:func:`object_key`)::

    <prefix>/<yyyy>/<mm>/<dd>/<hh>/<tenant>_<destination>_<partition>_<first>-<last>.<ext>

with ``<prefix>`` the destination's ``prefix_template`` as it was when the batch was formed
(a batch announced before a restart keeps its key: :mod:`sinks.batch_shape`) and the time
parts from the payload's first event (its record time, in UTC, not the time of writing);
``<first>`` and ``<last>`` are the batch's first and last offsets (20 digits each),
followed by ``_replay-<id>`` for a replay's batch. The same payload always gives the same
key, so a retry or a re-formed batch overwrites its object instead of adding a duplicate,
and two batches of other ranges never share one: a replay's batch that starts where a live
batch started but ends elsewhere gets its own object instead of replacing the live one and
the events it held beyond the replay's end (docs/exactly-once.md, section 8). Objects
written before both offsets were in the name (first offset only) keep their names; a batch
announced by such a release and re-formed by this one is written once more under the new
name.

A batch holding integrity records (the account's log copy) gets a companion object beside
it (:func:`copy_key`): the same key with ``integrity.ndjson[.gz]`` in place of the events'
extension, holding those records as NDJSON (docs/integrity.md, "Streamed copies").


A partner destination writes each account's events of a batch to an object of its own
(:attr:`sinks.senders.base.Payload.parts`), the account's id as a key segment right under
the partner's prefix and in the object's name::

    <prefix>/<account>/<yyyy>/<mm>/<dd>/<hh>/<account>_<destination>_<partition>_<first>-<last>.<ext>

``<first>`` and ``<last>`` are the whole batch's offsets (every part of a batch has them),
the time parts from the account's first event in the batch: deterministic as well.

Metadata (:func:`metadata`): the payload's tenant (the account, for a part; its partner as
``auditlog-partner``), destination, topic, partition, offsets and record count as
``x-amz-meta-auditlog-*`` (ASCII only, as S3 requires).
"""

from __future__ import annotations

import re
from datetime import UTC
from urllib.parse import quote

from sinks.destinations.model import S3Target
from sinks.senders.base import Payload, PermanentDeliveryError

METADATA_PREFIX = "auditlog-"

# A tenant id as the event contract allows it (schemas.event.TenantId) is used as it is in
# a key; anything else is percent-encoded (see _key_segment).
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]*")


def _key_segment(value: str) -> str:
    """``value`` as one key segment: as it is when it is a plain id (letters, digits and
    ``._:@-``, starting with a letter or digit), else percent-encoded with only letters,
    digits, ``_`` and ``-`` left as they are, so it holds no ``/`` and is never ``.`` or
    ``..``. Distinct values stay distinct (plain ones never contain ``%`` nor start with
    ``_`` or ``-``)."""
    if _PLAIN_SEGMENT.fullmatch(value):
        return value
    return quote(value, safe="").replace(".", "%2E").replace("~", "%7E")


def object_key(target: S3Target, payload: Payload) -> str:
    """The payload's object key (see the module docstring), under the payload's prefix
    template (the one its batch was formed with) or else the target's; raises
    :class:`PermanentDeliveryError` should the prefix leave the bucket's root."""
    tenant = _key_segment(payload.tenant_id)
    destination = _key_segment(payload.destination_id)
    account = None if payload.account_id is None else _key_segment(payload.account_id)
    template = target.prefix_template
    if payload.prefix_template is not None:
        template = payload.prefix_template
    try:
        prefix = template.format_map({"tenant_id": tenant, "destination_id": destination})
    except (KeyError, ValueError, IndexError) as exc:
        raise PermanentDeliveryError(
            f"prefix template {template!r} cannot be filled in: {exc}"
        ) from exc
    prefix = prefix.strip("/")
    if prefix.startswith("/") or "//" in prefix or ".." in prefix.split("/"):
        raise PermanentDeliveryError(
            f"prefix {prefix!r} (from {template!r}) leaves the bucket's root"
        )
    at = payload.first_event_at
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    name = (
        f"{account or tenant}_{destination}_{payload.partition}_{payload.first_offset:020d}"
        f"-{payload.last_offset:020d}{_replay_suffix(payload)}.{payload.file_extension}"
    )
    parts = [prefix] if prefix else []
    if account is not None:
        parts.append(account)  # the account's own prefix inside the partner's
    parts += [f"{at:%Y}", f"{at:%m}", f"{at:%d}", f"{at:%H}", name]
    return "/".join(parts)


COPY_EXTENSION = "integrity.ndjson"


def copy_key(events_key: str, payload: Payload) -> str:
    """The companion object of the payload's integrity records: the events object's key
    with ``integrity.ndjson`` (``.gz`` when the payload is gzipped) in place of the events'
    extension."""
    stem = events_key[: -len(payload.file_extension)]
    gz = ".gz" if payload.content_encoding == "gzip" else ""
    return f"{stem}{COPY_EXTENSION}{gz}"


def _replay_suffix(payload: Payload) -> str:
    """A replay's batches get objects of their own: ``_replay-<replay id>``."""
    return "" if payload.replay_id is None else f"_replay-{_key_segment(payload.replay_id)}"


def metadata(payload: Payload) -> dict[str, str]:
    """The object's user metadata (ASCII only, as S3 requires)."""
    found = {
        f"{METADATA_PREFIX}tenant": quote(payload.account_id or payload.tenant_id, safe=":@"),
        f"{METADATA_PREFIX}destination": payload.destination_id,
        f"{METADATA_PREFIX}topic": quote(payload.topic, safe=""),
        f"{METADATA_PREFIX}partition": str(payload.partition),
        f"{METADATA_PREFIX}first-offset": str(payload.first_offset),
        f"{METADATA_PREFIX}last-offset": str(payload.last_offset),
        f"{METADATA_PREFIX}record-count": str(payload.record_count),
    }
    if payload.account_id is not None:
        found[f"{METADATA_PREFIX}partner"] = quote(payload.tenant_id, safe=":@")
    return found
