"""A batch's shape: what decides its records and bytes besides its offsets.

Two batches of one destination over the same offset range are byte-identical (same
records, same body, same S3 key, same idempotency key) when they have the same shape:

- ``filters``: which records of the tenant in the range it holds;
- ``format`` and ``compression``: how its body is encoded (and the S3 file extension);
- ``prefix_template``: the S3 object key's prefix (None for other kinds);
- ``accounts`` (partner destinations): which of the partner's accounts it holds.

A lane takes the shape of its destination when a batch opens; the batch keeps it through
every retry, whatever changes meanwhile. The shape is announced with the batch's range in
the progress topic, so a worker that restarts re-forms the batch with it rather than with
the destination as it is now. Batch limits are not part of it: a re-formed batch ends at
its announced last offset, never at a limit. The target itself (bucket, endpoint, URL,
credentials, headers, Splunk index and source) is not either: a re-formed batch goes where
the destination points now (see ``README.md``, "At least once").

``revision`` (the destination's revision the shape was taken from) is kept for logs and is
not compared: a change that leaves the shape alone (a pause, new batch limits, a new URL)
does not make a new shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sinks.destinations.model import (
    ALL_ACCOUNTS,
    AccountSelection,
    Compression,
    Destination,
    Filters,
    PayloadFormat,
    S3Target,
)


@dataclass(frozen=True)
class BatchShape:
    filters: Filters
    format: PayloadFormat
    compression: Compression
    prefix_template: str | None = None
    revision: int = field(default=0, compare=False)
    accounts: AccountSelection = ALL_ACCOUNTS

    @classmethod
    def of(cls, destination: Destination) -> BatchShape:
        target = destination.target
        return cls(
            destination.filters,
            destination.format,
            destination.compression,
            target.prefix_template if isinstance(target, S3Target) else None,
            destination.revision,
            destination.accounts,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping (for the progress record)."""
        return {
            "filters": self.filters.model_dump(mode="json"),
            "format": self.format,
            "compression": self.compression,
            "prefix_template": self.prefix_template,
            "revision": self.revision,
            **(
                {}
                if self.accounts.everyone
                else {"accounts": self.accounts.model_dump(mode="json")}
            ),
        }

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> BatchShape:
        """The inverse of :meth:`to_json`; raises ``ValueError`` (pydantic's
        ``ValidationError`` among them) for values this release cannot use."""
        fmt, compression = values["format"], values["compression"]
        if fmt not in ("ndjson", "json_array") or compression not in ("gzip", "none"):
            raise ValueError(f"unknown format or compression: {fmt!r}, {compression!r}")
        prefix = values.get("prefix_template")
        if prefix is not None and not isinstance(prefix, str):
            raise ValueError(f"prefix_template is not a string: {prefix!r}")
        return cls(
            Filters.model_validate(values.get("filters") or {}),
            fmt,
            compression,
            prefix,
            int(values.get("revision") or 0),
            AccountSelection.model_validate(values.get("accounts") or {}),
        )
