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

On Redis a request's hits can share one round trip: the app names, for a hit, the hits the same request
will make next (`follow_ups`; the /v1 door names its per-user hit after the per-IP one, see
gateway/blueprints/caller.py). One script counts them all in order, stopping after the first over its limit
exactly as Flask-Limiter stops evaluating, and each later hit is answered with the count the script gave
it. A hit counted ahead that the request never makes (it failed in between) is given back when the request
ends, so every counter still holds exactly the hits Flask-Limiter made.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from limits import RateLimitItem
from limits.storage import MemoryStorage, RedisClusterStorage, RedisStorage
from limits.strategies import STRATEGIES, FixedWindowRateLimiter
from limits.util import WindowStats

log = logging.getLogger("gateway.limits")

NAME = "dominion-fixed-window"
_MAX_REMEMBERED_COUNTS = 8  # per thread: a request hits two limits (per IP, per user)
_MAX_REMEMBERED_RESETS = 10000  # per process: past windows are dropped when it is reached
_SWEEP_INTERVAL_S = 1.0
# A hit: the limit, the identifiers its key is made of, its cost.
Hit = tuple[RateLimitItem, tuple[str, ...], int]
# For a hit about to be counted: the hits the same request will make next if this one is admitted.
FollowUps = Callable[[RateLimitItem, tuple[str, ...]], Sequence[Hit]]
# KEYS the counters, ARGV (limit, expiry, cost) per key: limits' incr_expire.lua for each in turn, up to and
# including the first one over its limit (Flask-Limiter makes no hit after a refused one).
_INCR_IN_TURN = """
local counts = {}
for i, key in ipairs(KEYS) do
    local amount = tonumber(ARGV[3 * i])
    local current = redis.call("incrby", key, amount)
    if current == amount then
        redis.call("expire", key, ARGV[3 * i - 1])
    end
    counts[i] = current
    if current > tonumber(ARGV[3 * i - 2]) then
        break
    end
end
return counts
"""
# A counted hit taken back; a counter already expired is left alone (its window has ended).
_GIVE_BACK = """
if redis.call("exists", KEYS[1]) == 1 then
    return redis.call("decrby", KEYS[1], ARGV[1])
end
return 0
"""


class _ThreadState(threading.local):
    """One thread's hits counted ahead and last counts; None until its first. Class defaults, so reading one
    unset finds None instead of raising an AttributeError that getattr(..., None) would format and clear."""

    ahead: dict[str, tuple[int, int]] | None = None
    counts: dict | None = None


class CountingFixedWindow(FixedWindowRateLimiter):
    """limits' fixed window, with get_window_stats answered from the last hit where it can be."""

    def __init__(self, storage) -> None:
        super().__init__(storage)
        self._local = _ThreadState()
        self._resets: dict[str, float] = {}
        self._lock = threading.Lock()
        # Exactly MemoryStorage: a subclass may count differently.
        self._memory = storage if type(storage) is MemoryStorage else None
        self._next_sweep = time.time() + _SWEEP_INTERVAL_S
        # One server holds every key (a cluster would refuse a script over keys in different slots).
        self._batches = isinstance(storage, RedisStorage) and not isinstance(storage, RedisClusterStorage)
        self._scripts = None
        self.follow_ups: FollowUps | None = None  # set by the app; only Redis uses it

    def hit(self, item, *identifiers: str, cost: int = 1) -> bool:
        """Consume cost from the window, as the stock strategy does, and remember the count it reached."""
        key = item.key_for(*identifiers)
        ahead = self._local.ahead
        counted_ahead = ahead.pop(key, None) if ahead else None
        if counted_ahead is not None:
            count = counted_ahead[0]
        elif self._memory is not None:
            count = self._incr_in_memory(key, item.get_expiry(), cost)
        elif self._batches and self.follow_ups is not None and (follow := self.follow_ups(item, identifiers)):
            count = self._incr_with_follow_ups((item, identifiers, cost), follow)
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

    def _incr_with_follow_ups(self, first: Hit, follow: Sequence[Hit]) -> int:
        """Count first and the hits after it in one script; the later counts wait for their hits."""
        hits = [first, *follow]
        keys = [item.key_for(*identifiers) for item, identifiers, _ in hits]
        arguments = [value for item, _, cost in hits for value in (item.amount, item.get_expiry(), cost)]
        self.give_back_unclaimed()  # nothing, unless an earlier request on this thread ended without it
        counts = self._redis_scripts()[0]([self.storage.prefixed_key(key) for key in keys], arguments)
        ahead = self._counted_ahead()
        for key, (_, _, cost), count in zip(keys[1:], hits[1:], counts[1:]):
            ahead[key] = (int(count), cost)
        return int(counts[0])

    def give_back_unclaimed(self) -> None:
        """At the end of a request: take back the hits counted ahead that it never made."""
        ahead = self._local.ahead
        if not ahead:
            return
        unclaimed, self._local.ahead = ahead, {}
        give_back = self._redis_scripts()[1]
        for key, (_, cost) in unclaimed.items():
            try:
                give_back([self.storage.prefixed_key(key)], [cost])
            except Exception:  # storage down: the counter ends with its window
                log.warning("could not give back a rate-limit hit counted ahead", extra={"limit_key": key})

    def _redis_scripts(self):
        if self._scripts is None:
            connection = self.storage.get_connection()
            self._scripts = (connection.register_script(_INCR_IN_TURN), connection.register_script(_GIVE_BACK))
        return self._scripts

    def _counted_ahead(self) -> dict[str, tuple[int, int]]:
        ahead = self._local.ahead
        if ahead is None:
            ahead = self._local.ahead = {}
        return ahead

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
        counts = self._local.counts
        if counts is None:
            counts = self._local.counts = {}
        return counts


def register() -> str:
    """Make the strategy known to limits (and so to Flask-Limiter) by NAME; idempotent. Returns NAME."""
    STRATEGIES.setdefault(NAME, CountingFixedWindow)
    return NAME
