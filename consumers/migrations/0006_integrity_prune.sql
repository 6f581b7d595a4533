-- Prune statements (docs/integrity.md, "Prune statements"): signed notes saying which
-- prefix of an account's log the events' TTL has removed, with the retention days in force
-- when signed. Written by `auditlog integrity run` at most once a day per account, read by
-- `auditlog verify`, which takes the retention from them rather than from
-- tenant_retention. No TTL, like the other integrity tables; one row per (account, time):
-- a statement signed twice is the same note (Ed25519 is deterministic).
CREATE TABLE IF NOT EXISTS {database}.integrity_prune_statements
(
    tenant_id LowCardinality(String),
    time DateTime64(3, 'UTC'),
    below UInt64,
    retention_days UInt16,
    note String
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant_id, time)
SETTINGS non_replicated_deduplication_window = 10000;
