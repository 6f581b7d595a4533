-- The writer's progress log on a cluster (single node: consumers/migrations/0003).
-- Every writer, on whichever node it connects to, must read the latest announcement of a
-- partition, so the log lives in Keeper (KeeperMap: linearizable per key) rather than in a
-- replicated MergeTree whose replicas may lag. One key per (target, topic, partition); an
-- announcement overwrites the previous one. NOT EXECUTED HERE (no Keeper on a single
-- embedded engine): check keeper_map_strict_mode = 0 (overwrites allowed) on the cluster.
CREATE TABLE IF NOT EXISTS audit.writer_progress ON CLUSTER '{cluster}'
(
    key String DEFAULT concat(target, '/', topic, '/', toString(partition)),
    target LowCardinality(String),
    topic LowCardinality(String),
    partition UInt32,
    first_offset UInt64,
    last_offset UInt64,
    announced_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = KeeperMap('/auditlog/writer_progress')
PRIMARY KEY key;
