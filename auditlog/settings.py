"""Settings read once, at the edge, from ``AUDITLOG_*`` environment variables.

Nothing below the command line reads the environment: commands build an
:class:`AuditlogSettings` and pass the pieces each component needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

StackBackend = Literal["auto", "local", "docker", "external"]


class AuditlogSettings(BaseSettings):
    """Every setting of the product; one environment variable each (``AUDITLOG_<NAME>``)."""

    model_config = SettingsConfigDict(env_prefix="AUDITLOG_", extra="ignore", frozen=True)

    kafka_bootstrap: str = Field(
        default="127.0.0.1:19092",
        description="Kafka bootstrap servers, comma separated host:port.",
    )
    clickhouse_url: str = Field(
        default="http://127.0.0.1:18123",
        description="ClickHouse HTTP endpoint, optionally with user:password@.",
    )
    s3_endpoint: str = Field(
        default="http://127.0.0.1:19000",
        description="S3 endpoint override for S3-compatible stores; empty means AWS.",
    )
    s3_region: str = Field(default="us-east-1", description="Region for S3 requests.")
    stack_dir: Path = Field(
        default=Path(".stack"),
        description="Where the local stack keeps its data, logs, pid files and state.",
    )
    cache_dir: Path = Field(
        default=Path(".cache"),
        description="Where downloaded artifacts (the Kafka jars) are cached.",
    )
    test_stack: StackBackend = Field(
        default="auto",
        description=(
            "What the tests run against: 'local' (java + embedded engine), 'docker' "
            "(testcontainers), 'external' (the endpoints above), or 'auto' (docker when a "
            "Docker engine answers, local otherwise)."
        ),
    )
