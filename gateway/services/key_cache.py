"""In-process cache of keys whose argon2 check already passed, so repeat callers skip argon2.

Keyed by SHA-256 of the presented key (never the key itself), bounded, with a TTL. It caches only
"this string is key N": status (revoked, expired, suspended) is still read from the database.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict


class VerifiedKeyCache:
    """Thread-safe LRU of sha256(key) -> key id with expiry."""

    def __init__(self, max_size: int, ttl_s: float, clock=time.monotonic) -> None:
        self._max_size = max_size
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def digest(presented: str) -> bytes:
        return hashlib.sha256(presented.encode()).digest()

    def get(self, digest: bytes) -> int | None:
        """The key id verified for this digest, if still fresh."""
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            key_id, expires = entry
            if expires < self._clock():
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
            return key_id

    def put(self, digest: bytes, key_id: int) -> None:
        """Remember a successful verification."""
        if self._max_size <= 0 or self._ttl_s <= 0:
            return
        with self._lock:
            self._entries[digest] = (key_id, self._clock() + self._ttl_s)
            self._entries.move_to_end(digest)
            while len(self._entries) > self._max_size:
                self._entries.popitem(last=False)

    def forget_key(self, key_id: int) -> None:
        """Drop every entry of a key (after revocation in this process)."""
        with self._lock:
            for digest in [d for d, (k, _) in self._entries.items() if k == key_id]:
                del self._entries[digest]

    def __len__(self) -> int:
        return len(self._entries)
