-- Per-tenant retention settings and the dictionary the events table reads them through.
-- A tenant without a row keeps its events 365 days (the dictionary's default).
-- Every change is a new row; the newest row of a tenant (by updated_at) is the setting.
CREATE TABLE IF NOT EXISTS {database}.tenant_retention
(
    tenant_id String,
    retention_days UInt16,
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3),
    updated_by String DEFAULT ''
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY tenant_id;

-- Reloaded by `auditlog retention set` right after a change, and every 30-60 s anyway.
-- The query keeps the newest row per tenant, whatever merges have or have not happened.
CREATE DICTIONARY IF NOT EXISTS {database}.tenant_retention_dict
(
    tenant_id String,
    retention_days UInt16 DEFAULT 365
)
PRIMARY KEY tenant_id
SOURCE(CLICKHOUSE(QUERY 'SELECT tenant_id, argMax(retention_days, updated_at) AS retention_days FROM {database}.tenant_retention GROUP BY tenant_id'))
LIFETIME(MIN 30 MAX 60)
LAYOUT(COMPLEX_KEY_HASHED());
