"""Where a running stack answers, and the S3 keys it gives out: what ``auditlog stack up``
prints and tests connect to."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

# The export lines name the S3 keys under the default secret-reference prefix
# (sinks.destinations.references.DEFAULT_PREFIX), so a destination added in the shell that
# eval'd them may reference them: --access-key-id-ref env:AUDITLOG_DEST_SECRET_LOCAL_S3_ACCESS_KEY
S3_ACCESS_KEY_ENV = "AUDITLOG_DEST_SECRET_LOCAL_S3_ACCESS_KEY"
S3_SECRET_KEY_ENV = "AUDITLOG_DEST_SECRET_LOCAL_S3_SECRET_KEY"  # noqa: S105 - a variable name


@dataclass(frozen=True)
class S3Keys:
    """An S3 access key and its secret (never in a ``repr``)."""

    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)


@dataclass(frozen=True)
class StackEndpoints:
    """Addresses of the three services, in the form the ``AUDITLOG_*`` settings take, and
    the S3 server's keys: ``s3_keys`` are a development user's (read and write on every
    bucket, as the workers' and the demo's destinations use them); ``s3_admin`` the
    server's administrator, where the stack knows it (users and policies; tests only)."""

    kafka_bootstrap: str
    clickhouse_url: str
    s3_endpoint: str
    s3_keys: S3Keys
    s3_admin: S3Keys | None = None
    # A Kafka cluster's: what `auditlog topics ensure` creates topics with (None: one broker,
    # the broker's defaults).
    topic_replication_factor: int | None = None
    topic_min_insync_replicas: int | None = None

    def exports(self) -> list[str]:
        """Shell ``export`` lines that point the ``auditlog`` commands at this stack and
        hold the S3 keys under names a destination may reference (and, for a Kafka
        cluster, the topics' replication factor and ``min.insync.replicas``)."""
        values = {
            "AUDITLOG_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "AUDITLOG_CLICKHOUSE_URL": self.clickhouse_url,
            "AUDITLOG_S3_ENDPOINT": self.s3_endpoint,
            S3_ACCESS_KEY_ENV: self.s3_keys.access_key,
            S3_SECRET_KEY_ENV: self.s3_keys.secret_key,
        }
        if self.topic_replication_factor is not None:
            values["AUDITLOG_TOPIC_REPLICATION_FACTOR"] = str(self.topic_replication_factor)
        if self.topic_min_insync_replicas is not None:
            values["AUDITLOG_TOPIC_MIN_INSYNC_REPLICAS"] = str(self.topic_min_insync_replicas)
        return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
