"""Fixed-window rate limiting whose X-RateLimit-* headers come from the hit itself, not two more storage reads.

Flask-Limiter fills the headers by asking the strategy for the window after the request's hit: on Redis a
GET of the counter and a TTL, two round trips per request. The counter's value is what the hit's INCR
returned, and a window's reset time never changes while the window lives, so this strategy remembers both:
the count per thread (the headers are written by the thread that hit), the reset per process (read once per
window with the storage's own get_expiry). Whatever it does not remember it reads as the stock one does.

On memory:// (and Flask-Limiter's in-memory fallback) the hit increments the counter itself: limits'
MemoryStorage.incr starts a new timer thread whenever its last 10 ms timer has run, so under steady
traffic every few requests pay for starting a thread (and wait for it to start). Here the hitting thread
drops expired counters, at most once a second, as that timer would; the storage keeps its own layout, so
its get, get_expiry and clear read the same counters.
"""

from __future__ import annotations

import threading
import time

from limits.storage import MemoryStorage
from limits.strategies import STRATEGIES, FixedWindowRateLimiter
from limits.util import WindowStats

NAME = "dominion-fixed-window"
_MAX_REMEMBERED_COUNTS = 8  # per thread: a request hits two limits (per IP, per user)
_MAX_REMEMBERED_RESETS = 10000  # per process: past windows are dropped when it is reached
_SWEEP_INTERVAL_S = 1.0


class CountingFixedWindow(FixedWindowRateLimiter):
    """limits' fixed window, with get_window_stats answered from the last hit where it can be."""

    def __init__(self, storage) -> None:
        super().__init__(storage)
        self._local = threading.local()
        self._resets: dict[str, float] = {}
        self._lock = threading.Lock()
        # Exactly MemoryStorage: a subclass may count differently.
        self._memory = storage if type(storage) is MemoryStorage else None
        self._next_sweep = time.time() + _SWEEP_INTERVAL_S

    def hit(self, item, *identifiers: str, cost: int = 1) -> bool:
        """Consume cost from the window, as the stock strategy does, and remember the count it reached."""
        key = item.key_for(*identifiers)
        if self._memory is not None:
            count = self._incr_in_memory(key, item.get_expiry(), cost)
        else:
            count = self.storage.incr(key, item.get_expiry(), amount=cost)
        counts = self._counts()
        if len(counts) >= _MAX_REMEMBERED_COUNTS:
            counts.clear()
        counts[key] = (count, cost)
        return count <= item.amount

    def get_window_stats(self, item, *identifiers: str) -> WindowStats:
        """(reset time, remaining) after this thread's last hit of the window; read from storage otherwise."""
        key = item.key_for(*identifiers)
        remembered = self._counts().pop(key, None)
        if remembered is None:
            return super().get_window_stats(item, *identifiers)
        count, cost = remembered
        return WindowStats(self._reset_at(key, opened_it=count <= cost), max(0, item.amount - count))

    def _reset_at(self, key: str, opened_it: bool) -> float:
        """The window's end: remembered while it lies ahead (the key cannot have expired and been recreated
        before then); read again for a window this hit opened or one not seen yet."""
        now = time.time()
        with self._lock:
            reset = self._resets.get(key)
        if reset is not None and reset > now and not opened_it:
            return reset
        reset = self.storage.get_expiry(key)
        with self._lock:
            if len(self._resets) >= _MAX_REMEMBERED_RESETS:
                self._resets = {k: v for k, v in self._resets.items() if v > now}
            self._resets[key] = reset
        return reset

    def _incr_in_memory(self, key: str, expiry: int, amount: int) -> int:
        """MemoryStorage.incr without scheduling its expiry timer thread; expired counters swept here."""
        memory = self._memory
        now = time.time()
        if now >= self._next_sweep:
            self._next_sweep = now + _SWEEP_INTERVAL_S
            self._sweep(memory, now)
        memory.get(key)  # drops the counter first if its window has ended
        with memory.locks[key]:
            memory.storage[key] += amount
            if memory.storage[key] == amount:
                memory.expirations[key] = time.time() + expiry
        return memory.storage.get(key, 0)

    @staticmethod
    def _sweep(memory: MemoryStorage, now: float) -> None:
        """Drop the counters whose window has ended, as MemoryStorage's timer does: memory stays bounded."""
        for key, expires_at in list(memory.expirations.items()):
            if expires_at <= now and memory.expirations.get(key, now + 1) <= now:
                memory.storage.pop(key, None)
                memory.expirations.pop(key, None)
                memory.locks.pop(key, None)

    def _counts(self) -> dict:
        counts = getattr(self._local, "counts", None)
        if counts is None:
            counts = self._local.counts = {}
        return counts


def register() -> str:
    """Make the strategy known to limits (and so to Flask-Limiter) by NAME; idempotent. Returns NAME."""
    STRATEGIES.setdefault(NAME, CountingFixedWindow)
    return NAME
