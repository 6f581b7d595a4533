"""Consumer-group state of the fake broker, and its deterministic assignor.

The assignor is cooperative-sticky-like: members keep the partitions they hold, a partition
without a member goes to the member holding the fewest (the earliest joined on a tie), then
partitions move (highest first) from the most to the least loaded member until loads differ
by at most one. Each topic is balanced over the members subscribed to it. The real
assignor's choice may differ; the contract test checks only what both promise.

A rebalance changes a member's *target*; the member sees the change at its next
``consume``/``poll``: first its revocations (``on_revoke``), then the partitions of its
target that no other member holds any more (``on_assign``). A partition moving from A to B
therefore reaches B only after A gave it up, as in the cooperative protocol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field

from tests.fakes.kafka_log import PartitionKey


def sticky_assignment(
    partitions: Sequence[PartitionKey],
    members: Sequence[str],
    previous: Mapping[str, Set[PartitionKey]],
) -> dict[str, set[PartitionKey]]:
    """The next target of each of ``members`` (in join order) for one topic's
    ``partitions``, keeping as much of ``previous`` as balance allows."""
    if not members:
        return {}
    rank = {member: position for position, member in enumerate(members)}
    valid = set(partitions)
    result: dict[str, set[PartitionKey]] = {}
    taken: set[PartitionKey] = set()
    for member in members:
        result[member] = (set(previous.get(member, set())) & valid) - taken
        taken |= result[member]
    for key in sorted(valid - taken):
        fewest = min(members, key=lambda m: (len(result[m]), rank[m]))
        result[fewest].add(key)
    while True:
        most = max(members, key=lambda m: (len(result[m]), rank[m]))
        least = min(members, key=lambda m: (len(result[m]), rank[m]))
        if len(result[most]) - len(result[least]) <= 1:
            return result
        moved = max(result[most])
        result[most].remove(moved)
        result[least].add(moved)


@dataclass
class GroupState:
    """One consumer group: its members (in join order), their targets and what each holds
    (has seen assigned and not yet revoked), and its committed offsets."""

    group_id: str
    subscriptions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    target: dict[str, set[PartitionKey]] = field(default_factory=dict)
    owned: dict[str, set[PartitionKey]] = field(default_factory=dict)
    lost: dict[str, set[PartitionKey]] = field(default_factory=dict)  # expired, not told
    committed: dict[PartitionKey, int] = field(default_factory=dict)
    generation: int = 0

    @property
    def members(self) -> list[str]:
        return list(self.subscriptions)

    def owner_of(self, key: PartitionKey) -> str | None:
        for member, held in self.owned.items():
            if key in held:
                return member
        return None

    def join(self, member: str, topics: Sequence[str]) -> None:
        self.subscriptions.pop(member, None)
        self.subscriptions[member] = tuple(topics)
        self.owned.setdefault(member, set())

    def leave(self, member: str) -> set[PartitionKey]:
        """Remove ``member``; returns what it held (now free for the others)."""
        self.subscriptions.pop(member, None)
        self.target.pop(member, None)
        self.lost.pop(member, None)
        return self.owned.pop(member, set())

    def rebalance(
        self,
        partitions_of: Mapping[str, Sequence[PartitionKey]],
        explicit: Mapping[str, Set[PartitionKey]] | None = None,
    ) -> None:
        """New targets: ``explicit`` ones, or the assignor's over ``partitions_of`` (the
        partitions of each subscribed topic)."""
        self.generation += 1
        if explicit is not None:
            self.target = {m: set(explicit.get(m, set())) for m in self.members}
            return
        target: dict[str, set[PartitionKey]] = {m: set() for m in self.members}
        topics = sorted({t for topics in self.subscriptions.values() for t in topics})
        for topic in topics:
            members = [m for m in self.members if topic in self.subscriptions[m]]
            previous = {m: {k for k in self.target.get(m, set()) if k[0] == topic} for m in members}
            for member, keys in sticky_assignment(partitions_of[topic], members, previous).items():
                target[member] |= keys
        self.target = target
