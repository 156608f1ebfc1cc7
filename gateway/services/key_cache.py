"""In-process cache of keys whose argon2 check already passed, so repeat callers skip argon2.

Keyed by SHA-256 of the presented key (never the key itself), bounded, with a TTL. An entry is what
authentication last read of the key (services/auth.py's Caller): its id, its user and the user's limits.
Authentication reads the key's status again on every request, or, on the completion endpoints, leaves that
to the reservation statement, which admits only while the key is live and the limits are still these.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class _OfAKey(Protocol):
    key_id: int


Entry = TypeVar("Entry", bound=_OfAKey)


class VerifiedKeyCache(Generic[Entry]):
    """Thread-safe LRU of sha256(key) -> what was read of that key, with expiry."""

    def __init__(self, max_size: int, ttl_s: float, clock=time.monotonic) -> None:
        self._max_size = max_size
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[Entry, float]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def digest(presented: str) -> bytes:
        return hashlib.sha256(presented.encode()).digest()

    def get(self, digest: bytes) -> Entry | None:
        """The entry verified for this digest, if still fresh."""
        with self._lock:
            found = self._entries.get(digest)
            if found is None:
                return None
            entry, expires = found
            if expires < self._clock():
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
            return entry

    def put(self, digest: bytes, entry: Entry, *, renew: bool = True) -> None:
        """Remember a verified key; renew=False stores a fresher read of it under the expiry it already has
        (argon2 runs again once that passes), or a new one if it has none any more."""
        if self._max_size <= 0 or self._ttl_s <= 0:
            return
        with self._lock:
            found = self._entries.get(digest)
            expires = found[1] if found is not None and not renew else self._clock() + self._ttl_s
            self._entries[digest] = (entry, expires)
            self._entries.move_to_end(digest)
            while len(self._entries) > self._max_size:
                self._entries.popitem(last=False)

    def forget_key(self, key_id: int) -> None:
        """Drop every entry of a key (after revocation in this process, or when its status changed)."""
        with self._lock:
            for digest in [d for d, (entry, _) in self._entries.items() if entry.key_id == key_id]:
                del self._entries[digest]

    def __len__(self) -> int:
        return len(self._entries)


class OneAtATime:
    """Runs a check once for callers that ask for the same digest at the same time; they share its answer.

    A key's first requests in a process all miss the cache: a burst of them (a worker's first second under
    load) ran argon2 once each, every one holding its 19 MiB and a core for tens of milliseconds, and the
    memory stayed with the process. The first caller checks; the others wait for its answer. A check that
    raised gives no answer: each waiter then checks for itself.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[bytes, _Shared] = {}

    def run(self, digest: bytes, check: Callable[[], bool]) -> bool:
        with self._lock:
            shared = self._running.get(digest)
            first = shared is None
            if first:
                shared = self._running[digest] = _Shared()
        if not first:
            shared.done.wait()
            return shared.answer if shared.answer is not None else check()
        try:
            shared.answer = check()
            return shared.answer
        finally:
            with self._lock:
                del self._running[digest]
            shared.done.set()


class _Shared:
    """One running check: set when it ended; answer None if it raised."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.answer: bool | None = None
