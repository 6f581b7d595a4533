-- The ClickHouse writer's progress log (consumers/progress.py): before each insert the
-- writer announces the offset range it is about to insert, so that after a crash between
-- insert and offset commit the partition's next owner re-forms exactly that range and
-- its insert deduplicates. One row per announcement; readers take the newest per
-- partition. Old announcements are worthless: a week of them is kept.
CREATE TABLE IF NOT EXISTS {database}.writer_progress
(
    target LowCardinality(String),
    topic LowCardinality(String),
    partition UInt32,
    first_offset UInt64,
    last_offset UInt64,
    announced_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(announced_at)
ORDER BY (target, topic, partition)
TTL toDateTime(announced_at) + INTERVAL 7 DAY;
