"""How many exports may run at once: per user, and in this process.

An export holds a ClickHouse query open for as long as its client reads (a slow reader, or
one that never reads, holds it longer). The per-user rate limit bounds how often exports
start, not how many stay open, so without this a single user could hold every query slot
ClickHouse has and starve every tenant's reads. :meth:`ExportSlots.take` gives a slot or
None (the API answers 429); the slot is released when the export's stream is closed, by
its end, its client leaving, or the response's background task, whichever comes first.
Thread-safe; releasing twice is harmless.
"""

from __future__ import annotations

import threading
from collections import Counter

from viewer.principal import Principal


class ExportSlot:
    def __init__(self, slots: ExportSlots, user: str) -> None:
        self._slots = slots
        self._user = user
        self._released = False

    def release(self) -> None:
        with self._slots._lock:
            if self._released:
                return
            self._released = True
            self._slots._running[self._user] -= 1
            if not self._slots._running[self._user]:
                del self._slots._running[self._user]
            self._slots._total -= 1


class ExportSlots:
    def __init__(self, *, per_user: int, total: int, retry_after_s: float = 10.0) -> None:
        if per_user < 1 or total < per_user:
            raise ValueError("export slots need 1 <= per_user <= total")
        self._per_user = per_user
        self._limit = total
        self.retry_after_s = retry_after_s
        self._lock = threading.Lock()
        self._running: Counter[str] = Counter()
        self._total = 0

    def take(self, principal: Principal) -> ExportSlot | None:
        """A slot for one export by ``principal``, or None when the user or the process
        runs as many exports as allowed."""
        user = f"{principal.account_id}\x00{principal.user_id}"
        with self._lock:
            if self._running[user] >= self._per_user or self._total >= self._limit:
                return None
            self._running[user] += 1
            self._total += 1
        return ExportSlot(self, user)

    @property
    def running(self) -> int:
        with self._lock:
            return self._total
