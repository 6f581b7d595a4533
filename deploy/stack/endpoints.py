"""Where a running stack answers: what ``auditlog stack up`` prints and tests connect to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StackEndpoints:
    """Addresses of the three services, in the form the ``AUDITLOG_*`` settings take."""

    kafka_bootstrap: str
    clickhouse_url: str
    s3_endpoint: str

    def exports(self) -> list[str]:
        """Shell ``export`` lines that point the ``auditlog`` commands at this stack."""
        return [
            f"export AUDITLOG_KAFKA_BOOTSTRAP={self.kafka_bootstrap}",
            f"export AUDITLOG_CLICKHOUSE_URL={self.clickhouse_url}",
            f"export AUDITLOG_S3_ENDPOINT={self.s3_endpoint}",
        ]
