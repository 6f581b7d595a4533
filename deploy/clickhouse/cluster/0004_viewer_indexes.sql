-- Cluster variant of consumers/migrations/0004_viewer_indexes.sql: the same skip indexes,
-- added to audit.events_local (the replicated tables that hold the rows; the Distributed
-- audit.events holds none and needs no index). Not run by `auditlog migrate`; apply after
-- 0002, by hand, with clickhouse-client --multiquery. On a Replicated table an ALTER ON
-- CLUSTER runs on one replica of each shard and reaches the others through Keeper (ADD
-- INDEX as a metadata change, MATERIALIZE INDEX as a replicated mutation).
--
-- Skip indexes for the viewer's reads (viewer/query). Every read is already confined to one
-- tenant's key range and an occurred_at range by the primary key (tenant_id, occurred_at,
-- event_id); these indexes let the reads that do not follow that order skip granules
-- inside it. ADD INDEX changes metadata only (new parts get the index at insert and merge);
-- MATERIALIZE INDEX builds it for stored parts with a mutation that runs in the background
-- (the migration does not wait for it) and rereads the indexed column of every stored part
-- once. Both are idempotent: applied again, the ADD is a no-op and the MATERIALIZE rebuilds.

-- One event by id (GET /api/activity_logs/{id}). Ids are random UUIDv4s (schemas/event.py),
-- so the id says nothing about occurred_at and the primary key only narrows to the tenant's
-- range, which is every granule of a large tenant's retention. A bloom filter per granule
-- (GRANULARITY 1, 8192 rows) at a 0.1% false-positive rate costs about 14.4 bits per row
-- (about 1.8 bytes/row, ~18 MB per 10M rows, under 2% of the compressed table) and some
-- insert CPU; a lookup then reads the id column's filter of the tenant's granules and
-- about one granule of data instead of all of them.
ALTER TABLE audit.events_local ON CLUSTER '{cluster}' ADD INDEX IF NOT EXISTS idx_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 1;
ALTER TABLE audit.events_local ON CLUSTER '{cluster}' MATERIALIZE INDEX idx_event_id;

-- Ingest-order polling (order=ingested) reads rows ingested after the cursor among those
-- that occurred in the last max event age (30 days): within that occurred_at range,
-- ingested_at rises with occurred_at except for late events, so a min/max of ingested_at
-- per granule skips most granules that were all ingested before the cursor. Cost: 16 bytes
-- per granule (negligible); benefit: a poll reads about the granules written since its last
-- poll instead of 30 days of the tenant.
ALTER TABLE audit.events_local ON CLUSTER '{cluster}' ADD INDEX IF NOT EXISTS idx_ingested_at ingested_at TYPE minmax GRANULARITY 1;
ALTER TABLE audit.events_local ON CLUSTER '{cluster}' MATERIALIZE INDEX idx_ingested_at;

-- Filters by actor e-mail (actor_emails[]) compare lower(actor.email): a bloom filter over
-- that expression skips granules without the address, like idx_actor_id does for ids.
-- Cost: about 1.2 bytes per row at 1%, GRANULARITY 4 as the other bloom filters.
ALTER TABLE audit.events_local ON CLUSTER '{cluster}' ADD INDEX IF NOT EXISTS idx_actor_email lower(ifNull(actor.email, '')) TYPE bloom_filter(0.01) GRANULARITY 4;
ALTER TABLE audit.events_local ON CLUSTER '{cluster}' MATERIALIZE INDEX idx_actor_email;

-- Not added: an n-gram index for the text search q (positionCaseInsensitiveUTF8 over the
-- resource name and actor e-mail). ngrambf_v1 is not used by positionCaseInsensitive and a
-- case-insensitive one needs lower() on both sides; within one tenant's 7-day key range the
-- substring scan reads two short string columns. No projection either: a projection on a
-- ReplacingMergeTree needs deduplicate_merge_projection_mode and doubles the storage of
-- what it projects; the reads above are all within the primary key's tenant range.
