-- Cluster variant of consumers/migrations/0005_integrity.sql: the same columns, keys and
-- engines, replicated. Each table is replicated to every node (a shard-independent Keeper
-- path, as audit.tenant_retention): the appender of a partition writes an account's leaves
-- and head from wherever it connects, and its next owner must read them back from any
-- node, so they are not sharded. Read heads with select_sequential_consistency = 1 (or
-- from the replica that took the insert) so a new owner never starts from a stale head.
-- NOT EXECUTED HERE (no Keeper on a single embedded engine). Not run by `auditlog migrate`.
CREATE TABLE IF NOT EXISTS audit.integrity_leaves ON CLUSTER '{cluster}'
(
    tenant_id LowCardinality(String) CODEC(ZSTD(1)),
    leaf_index UInt64 CODEC(Delta, ZSTD(1)),
    partition UInt32 CODEC(ZSTD(1)),
    kafka_offset UInt64 CODEC(Delta, ZSTD(1)),
    event_id UUID CODEC(ZSTD(1)),
    leaf_hash FixedString(32) CODEC(NONE),
    leaf_version UInt8 CODEC(ZSTD(1)),
    appended_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1))
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/audit/integrity_leaves', '{shard}-{replica}')
ORDER BY (tenant_id, leaf_index)
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS audit.integrity_heads ON CLUSTER '{cluster}'
(
    tenant_id LowCardinality(String),
    size UInt64,
    root FixedString(32),
    frontier Array(FixedString(32)),
    partition UInt32,
    last_offset UInt64,
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/audit/integrity_heads', '{shard}-{replica}', size)
ORDER BY tenant_id
SETTINGS replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS audit.integrity_checkpoints ON CLUSTER '{cluster}'
(
    tenant_id LowCardinality(String),
    size UInt64,
    root FixedString(32),
    time DateTime64(3, 'UTC'),
    note String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/audit/integrity_checkpoints', '{shard}-{replica}')
ORDER BY (tenant_id, size, time)
SETTINGS replicated_deduplication_window = 10000;
