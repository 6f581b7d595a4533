-- Cluster variant of consumers/migrations/0002_events.sql: the same columns, key, TTL and
-- indexes on ReplicatedReplacingMergeTree (audit.events_local, one per shard, replicated),
-- and a Distributed table audit.events over it, sharded by tenant so that one tenant's
-- events (and its retention mutations) live on one shard. Not run by `auditlog migrate`.
CREATE TABLE IF NOT EXISTS audit.events_local ON CLUSTER '{cluster}'
(
    event_id UUID CODEC(ZSTD(1)),
    tenant_id LowCardinality(String) CODEC(ZSTD(1)),
    occurred_at DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    action LowCardinality(String) CODEC(ZSTD(1)),
    category LowCardinality(String) CODEC(ZSTD(1)),
    actor Tuple(
        type LowCardinality(String),
        id String,
        name Nullable(String),
        email Nullable(String)) CODEC(ZSTD(1)),
    resource Tuple(
        type LowCardinality(String),
        id String,
        name Nullable(String)) CODEC(ZSTD(1)),
    workspace Tuple(
        id Nullable(String),
        name Nullable(String),
        environment Nullable(String)) CODEC(ZSTD(1)),
    request Tuple(
        ip Nullable(String),
        user_agent Nullable(String),
        request_id Nullable(String),
        session_id Nullable(String)) CODEC(ZSTD(1)),
    outcome Tuple(
        status LowCardinality(String),
        reason Nullable(String)) CODEC(ZSTD(1)),
    details Map(String, String) CODEC(ZSTD(3)),
    changes Array(Tuple(field String, before Nullable(String), after Nullable(String))) CODEC(ZSTD(3)),
    source Nullable(String) CODEC(ZSTD(1)),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1)),
    -- The tenant's retention; computed at insert, rewritten by `auditlog retention set`.
    retention_days UInt16
        DEFAULT dictGetOrDefault('audit.tenant_retention_dict', 'retention_days', tenant_id, toUInt16(365))
        CODEC(ZSTD(1)),
    -- Storage grouping only: the retention rounded up to a class, fixed at insert (a key
    -- column, never updated), so that parts hold rows that expire together.
    retention_class UInt16
        DEFAULT multiIf(retention_days <= 30, 30, retention_days <= 90, 90, retention_days <= 180, 180,
                        retention_days <= 365, 365, retention_days <= 730, 730, retention_days <= 1095, 1095,
                        retention_days <= 1825, 1825, 3650)
        CODEC(ZSTD(1)),
    INDEX idx_actor_id actor.id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_resource_id resource.id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_action action TYPE set(512) GRANULARITY 4,
    INDEX idx_resource_type resource.type TYPE set(512) GRANULARITY 4,
    INDEX idx_session_id request.session_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/audit/events_local', '{replica}', ingested_at)
PARTITION BY (toYYYYMM(occurred_at), retention_class)
ORDER BY (tenant_id, occurred_at, event_id)
TTL toDateTime(toStartOfMonth(occurred_at)) + toIntervalMonth(1) + toIntervalDay(retention_days)
SETTINGS replicated_deduplication_window = 10000, merge_with_ttl_timeout = 14400;

-- Writers and readers use audit.events. Sharding by tenant keeps a tenant's queries on one
-- shard; the writer's dedup token is checked per shard by replicated_deduplication_window
-- (for exactly-once, insert into events_local of the shard directly, or keep
-- insert_distributed_sync = 1 so the token travels with the synchronous insert).
CREATE TABLE IF NOT EXISTS audit.events ON CLUSTER '{cluster}' AS audit.events_local
ENGINE = Distributed('{cluster}', audit, events_local, cityHash64(tenant_id));
