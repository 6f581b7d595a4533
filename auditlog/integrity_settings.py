"""The integrity appender's settings (``auditlog integrity run``): its consumer group, how
it batches, and how often it signs checkpoints. A part of
:class:`~auditlog.settings.AuditlogSettings`, which reads them with the others, once, at the
edge (``AUDITLOG_INTEGRITY_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IntegritySettings(BaseSettings):
    """The ``integrity_*`` settings of the appender; each its own variable."""

    model_config = SettingsConfigDict(env_prefix="AUDITLOG_", extra="ignore", frozen=True)

    integrity_group_id: str = Field(
        default="integrity-log", description="Consumer group of the integrity appender."
    )
    integrity_batch_max_records: int = Field(
        default=10_000,
        ge=1,
        description="Records of a partition per stored batch of leaves and heads, at most.",
    )
    integrity_flush_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="A partition's records wait at most this long before their leaves are stored.",
    )
    integrity_checkpoint_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="How often accounts whose log grew get a signed checkpoint.",
    )
    integrity_heartbeat_s: float = Field(
        default=3600.0,
        gt=0,
        description="An account's latest checkpoint older than this is signed again (same "
        "size, new time).",
    )
    integrity_publish_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="The streamed copy's records (into the events topic) must be acknowledged "
        "within this long, or the appender stops uncommitted (its next run publishes them).",
    )
