"""The limiter's own pieces: memory:// without a timer thread per hit, limits parsed once per value."""

import threading
import time

import pytest
from flask_limiter import _limits as flask_limits
from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string

from gateway import rate_window
from gateway.rate_limits import ParsedOnceApplicationLimit


def test_memory_uri_maps_to_the_swept_storage_and_others_stay():
    assert rate_window.storage_uri("memory://") == "dominion-memory://"
    assert rate_window.storage_uri("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert isinstance(storage_from_string(rate_window.storage_uri("memory://")), rate_window.SweptMemoryStorage)


def test_swept_memory_storage_counts_and_expires_without_starting_threads(monkeypatch):
    storage = rate_window.SweptMemoryStorage()

    def no_thread(*args, **kwargs):
        raise AssertionError("a hit started a thread")

    monkeypatch.setattr(threading, "Timer", no_thread)
    clock = [time.time()]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    assert [storage.incr("a", 10) for _ in range(3)] == [1, 2, 3]
    assert storage.get_expiry("a") == pytest.approx(clock[0] + 10)
    storage.incr("idle", 5)
    clock[0] += 11  # both windows over: "a" restarts on its next hit; "idle" is swept by any hit
    assert storage.incr("a", 10) == 1
    assert "idle" not in storage.storage and "idle" not in storage.expirations


def test_window_strategy_on_swept_storage_refuses_past_the_limit():
    strategy = rate_window.CountingFixedWindow(rate_window.SweptMemoryStorage())
    item = RateLimitItemPerSecond(2, 60)
    assert [strategy.hit(item, "dominion", "ip", "x") for _ in range(3)] == [True, True, False]
    assert strategy.get_window_stats(item, "dominion", "ip", "x").remaining == 0


def test_limit_is_parsed_once_per_value_and_again_for_a_new_one(monkeypatch):
    parsed = []
    real_parse = flask_limits.parse_many
    monkeypatch.setattr(flask_limits, "parse_many", lambda value: parsed.append(value) or real_parse(value))
    current = ["5 per 60 second"]
    limit = ParsedOnceApplicationLimit(limit_provider=lambda: current[0], key_function=lambda: "k")
    first, second = list(limit), list(limit)
    assert first == second and first[0] is second[0] and first[0].limit.amount == 5
    current[0] = "7 per 60 second"
    assert [runtime.limit.amount for runtime in limit] == [7]
    assert parsed == ["5 per 60 second", "7 per 60 second"]
