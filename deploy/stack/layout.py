"""Where the local stack keeps things, and the ports it prefers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StackLayout:
    """The stack's directories: ``root`` holds data, logs, pid files and the state file;
    ``cache_dir`` holds downloaded artifacts shared between stacks (the Kafka jars)."""

    root: Path
    cache_dir: Path

    @property
    def kafka_dir(self) -> Path:
        return self.root / "kafka"

    @property
    def clickhouse_dir(self) -> Path:
        return self.root / "clickhouse"

    @property
    def s3_dir(self) -> Path:
        return self.root / "s3"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"


@dataclass(frozen=True)
class PreferredPorts:
    """Ports tried first; a busy one is replaced by a free port chosen by the OS.
    Zero means "any free port" (what the tests use, to never meet a developer's stack)."""

    kafka: int = 19092
    kafka_controller: int = 19093
    clickhouse: int = 18123
    s3: int = 19000

    @classmethod
    def any_free(cls) -> PreferredPorts:
        return cls(kafka=0, kafka_controller=0, clickhouse=0, s3=0)
