-- Cluster variant of consumers/migrations/0001_tenant_retention.sql. Not run by
-- `auditlog migrate` (which targets a single node); apply by hand, in file order, with
-- clickhouse-client --multiquery. Needs the macros {cluster}, {shard}, {replica}.
CREATE DATABASE IF NOT EXISTS audit ON CLUSTER '{cluster}';

-- Every replica of every shard holds all settings (one shard per replica set would leave
-- other shards' dictionaries empty): replicate to all with a shard-independent ZK path.
CREATE TABLE IF NOT EXISTS audit.tenant_retention ON CLUSTER '{cluster}'
(
    tenant_id String,
    retention_days UInt16,
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3),
    updated_by String DEFAULT ''
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/audit/tenant_retention', '{shard}-{replica}', updated_at)
ORDER BY tenant_id;

-- Reads the local replica; add USER/PASSWORD to CLICKHOUSE(...) when the default user has none.
CREATE DICTIONARY IF NOT EXISTS audit.tenant_retention_dict ON CLUSTER '{cluster}'
(
    tenant_id String,
    retention_days UInt16 DEFAULT 365
)
PRIMARY KEY tenant_id
SOURCE(CLICKHOUSE(QUERY 'SELECT tenant_id, argMax(retention_days, updated_at) AS retention_days FROM audit.tenant_retention GROUP BY tenant_id'))
LIFETIME(MIN 30 MAX 60)
LAYOUT(COMPLEX_KEY_HASHED());
