"""The reservations this process is serving right now, so its ledger thread can heartbeat them.

A pending audit row is left alone by the reconciler while its worker heartbeats it; the set is
in-process state (one per app), filled when a request is admitted and emptied when it is settled.
"""

from __future__ import annotations

import threading


class LiveReservations:
    """A thread-safe set of audit-row ids in flight in this process."""

    def __init__(self) -> None:
        self._ids: set[int] = set()
        self._lock = threading.Lock()

    def add(self, record_id: int) -> None:
        with self._lock:
            self._ids.add(record_id)

    def discard(self, record_id: int) -> None:
        with self._lock:
            self._ids.discard(record_id)

    def snapshot(self) -> frozenset[int]:
        """The ids in flight at this moment."""
        with self._lock:
            return frozenset(self._ids)

    def __len__(self) -> int:
        return len(self._ids)
