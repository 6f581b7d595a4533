-- Cluster variant of consumers/migrations/0006_integrity_prune.sql: the same columns, key
-- and engine, replicated to every node (a shard-independent Keeper path, as 0005's
-- integrity tables): the appender signs from wherever it connects and `auditlog verify`
-- reads from any node. NOT EXECUTED HERE (no Keeper on a single embedded engine). Not run
-- by `auditlog migrate`.
CREATE TABLE IF NOT EXISTS audit.integrity_prune_statements ON CLUSTER '{cluster}'
(
    tenant_id LowCardinality(String),
    time DateTime64(3, 'UTC'),
    below UInt64,
    retention_days UInt16,
    note String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/audit/integrity_prune_statements', '{shard}-{replica}')
ORDER BY (tenant_id, time)
SETTINGS replicated_deduplication_window = 10000;
