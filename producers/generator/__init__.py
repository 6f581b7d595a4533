"""Realistic, deterministic synthetic audit activity, for demos and benchmarks.

``generate(GeneratorConfig(events=..., tenants=..., seed=...))`` yields events as plain
dicts in the NDJSON input shape: tenants of Zipf-distributed sizes whose members sign in
(sometimes after failed attempts), work on recipes, connections, packages and the account,
and sign out; admins administer; the platform stops failing recipes and provisions users;
API clients pull the audit log and deploy; attackers spray passwords. ``paced`` replays any
iterable at a steady rate.
"""

from producers.generator.config import DEFAULT_START, GeneratorConfig
from producers.generator.engine import EMITTED_ACTIONS, generate
from producers.generator.pacing import paced
from producers.generator.world import Event, is_modification

__all__ = [
    "DEFAULT_START",
    "EMITTED_ACTIONS",
    "Event",
    "GeneratorConfig",
    "generate",
    "is_modification",
    "paced",
]
