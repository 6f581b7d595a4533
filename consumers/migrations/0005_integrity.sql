-- Tamper evidence (docs/integrity.md): one Merkle log per account, kept apart from the
-- events and untouched by their TTL. Written by `auditlog integrity run` (integrity/), read
-- by `auditlog verify`. Every table is a ReplacingMergeTree whose key names one fact, so a
-- row written twice (a retried insert under another token, a zombie appender computing the
-- same leaves) replaces itself; readers use FINAL or argMax. No TTL: a leaf outlives its
-- event (32 bytes of hash per event).

-- One row per leaf: an account's events in Kafka order (partition, offset), every record.
CREATE TABLE IF NOT EXISTS {database}.integrity_leaves
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
ENGINE = ReplacingMergeTree
ORDER BY (tenant_id, leaf_index)
SETTINGS non_replicated_deduplication_window = 10000;

-- The appender's state per account: the tree's size, root and frontier (the roots of its
-- perfect subtrees), and the last offset appended. Versioned by size, not by updated_at:
-- every stored head is a state of the one deterministic log, so the largest is the
-- furthest along whatever the clocks of the processes that wrote them.
CREATE TABLE IF NOT EXISTS {database}.integrity_heads
(
    tenant_id LowCardinality(String),
    size UInt64,
    root FixedString(32),
    frontier Array(FixedString(32)),
    partition UInt32,
    last_offset UInt64,
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(size)
ORDER BY tenant_id
SETTINGS non_replicated_deduplication_window = 10000;

-- Signed checkpoints (C2SP signed notes), handed to customers; one per (account, size,
-- time): the same checkpoint signed twice is the same note (Ed25519 is deterministic).
CREATE TABLE IF NOT EXISTS {database}.integrity_checkpoints
(
    tenant_id LowCardinality(String),
    size UInt64,
    root FixedString(32),
    time DateTime64(3, 'UTC'),
    note String
)
ENGINE = ReplacingMergeTree
ORDER BY (tenant_id, size, time)
SETTINGS non_replicated_deduplication_window = 10000;
