"""Builds the integrity appender from settings (as :mod:`auditlog.wiring` does for the
writer and the sinks): the one place its settings become constructor arguments."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import Producer

from auditlog import wiring
from auditlog.settings import AuditlogSettings
from integrity.appender import IntegrityAppender
from integrity.appender_config import AppenderConfig
from integrity.checkpoint_store import CheckpointStore
from integrity.checkpointer import CheckpointPolicy, NoSigningKey, Signers
from integrity.copy_publisher import CopyPublisher
from integrity.heads import LogStore
from integrity.keys import KeyRing, SigningKey
from integrity.keystore import KeyStore, KeyStoreError
from integrity.metrics import IntegrityMetrics
from integrity.prune_store import ClickHousePruneStore
from integrity.pruner import Pruner
from runtime.health import HealthState


def appender_config(
    settings: AuditlogSettings, *, exit_when_idle_s: float | None
) -> AppenderConfig:
    return AppenderConfig(
        kafka=wiring.kafka_connection(settings),
        topic=settings.events_topic,
        group_id=settings.integrity_group_id,
        database=settings.clickhouse_database,
        batch_max_records=settings.integrity_batch_max_records,
        flush_interval_s=settings.integrity_flush_interval_s,
        checkpoints=CheckpointPolicy(
            interval_s=settings.integrity_checkpoint_interval_s,
            heartbeat_s=settings.integrity_heartbeat_s,
        ),
        exit_when_idle_s=exit_when_idle_s,
        publish_timeout_s=settings.integrity_publish_timeout_s,
    )


def appender(
    settings: AuditlogSettings,
    signers: Signers,
    *,
    exit_when_idle_s: float | None,
    metrics: IntegrityMetrics | None = None,
    health: HealthState | None = None,
) -> IntegrityAppender:
    """The appender, with a ClickHouse client of its own (connects now; raises as
    :func:`~auditlog.wiring.clickhouse_client`). Its prune statements check old checkpoints
    against the public keys of ``AUDITLOG_INTEGRITY_KEYS_DIR``."""
    config = appender_config(settings, exit_when_idle_s=exit_when_idle_s)
    client = wiring.clickhouse_client(settings)
    keys = KeyStore(settings.integrity_keys_dir)
    return IntegrityAppender(
        config,
        LogStore(client, config.database),
        CheckpointStore(client, config.database),
        signers,
        decoder=wiring.decoder(settings),
        metrics=metrics,
        health=health,
        pruner=Pruner(ClickHousePruneStore(client, config.database), signers, ring(keys)),
        copies=CopyPublisher(
            config.topic,
            Producer(config.producer_properties()),
            flush_timeout_s=config.publish_timeout_s + 5.0,
        ),
    )


def signers(store: KeyStore) -> Signers:
    """``store``'s keys valid at a time; a key file gone bad while running is no signing
    key (:class:`~integrity.checkpointer.NoSigningKey`: logged, the log goes on unsigned
    until it is fixed)."""

    def active(now_ms: int) -> list[SigningKey]:
        try:
            return store.active_signers(now_ms)
        except KeyStoreError as exc:
            raise NoSigningKey(str(exc)) from exc

    return active


def ring(store: KeyStore) -> Callable[[], KeyRing]:
    """``store``'s public keys, read anew at each call; a key document gone bad is
    :class:`~integrity.checkpointer.NoSigningKey` (logged; the statements wait)."""

    def read() -> KeyRing:
        try:
            return store.ring()
        except KeyStoreError as exc:
            raise NoSigningKey(str(exc)) from exc

    return read
