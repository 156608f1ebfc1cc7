"""The limiter's own pieces: hits on memory:// without a timer thread per hit, limits parsed once per value."""

import threading
import time

import pytest
from flask_limiter import ExemptionScope
from flask_limiter import _limits as flask_limits
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage

from gateway import rate_window
from gateway.rate_limits import ParsedOnceApplicationLimit


def test_hits_on_memory_count_and_expire_without_starting_threads(monkeypatch):
    storage = MemoryStorage()
    strategy = rate_window.CountingFixedWindow(storage)

    def no_thread(*args, **kwargs):
        raise AssertionError("a hit started a thread")

    monkeypatch.setattr(threading, "Timer", no_thread)
    clock = [time.time()]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    item, idle = RateLimitItemPerSecond(2, 10), RateLimitItemPerSecond(5, 5)
    assert [strategy.hit(item, "dominion", "ip", "x") for _ in range(3)] == [True, True, False]
    key = item.key_for("dominion", "ip", "x")
    assert storage.get(key) == 3 and storage.get_expiry(key) == pytest.approx(clock[0] + 10)
    assert strategy.get_window_stats(item, "dominion", "ip", "x").remaining == 0
    strategy.hit(idle, "dominion", "ip", "idle")
    clock[0] += 11  # both windows over: "x" restarts on its next hit, "idle" is swept by any hit
    assert strategy.hit(item, "dominion", "ip", "x") and storage.get(key) == 1
    assert idle.key_for("dominion", "ip", "idle") not in storage.expirations


def test_hits_on_other_storages_go_through_their_incr():
    class Counting(MemoryStorage):
        calls = 0

        def incr(self, key, expiry, amount=1):
            Counting.calls += 1
            return super().incr(key, expiry, amount)

    strategy = rate_window.CountingFixedWindow(Counting())
    assert strategy.hit(RateLimitItemPerSecond(1, 60), "k") and Counting.calls == 1


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


def test_remembered_exemptions_equal_flask_limiters_for_every_route(tmp_path):
    from flask_limiter._manager import LimitManager

    from gateway.app import create_app
    from gateway.extensions import limiter

    app = create_app({"GATEWAY_ENV": "testing", "DATABASE_URL": f"sqlite:///{tmp_path}/gateway.db",
                      "MOCK_PROVIDER": "on"})
    manager = limiter.limit_manager
    routes = [(rule.endpoint, rule.endpoint.rpartition(".")[0] or None) for rule in app.url_map.iter_rules()]
    for endpoint, blueprint in routes + [(None, None)]:
        for _ in range(2):  # computed, then remembered
            assert manager.exemption_scope(app, endpoint, blueprint) == \
                LimitManager.exemption_scope(manager, app, endpoint, blueprint), endpoint
    assert manager.exemption_scope(app, "health.live", "health") != ExemptionScope.NONE
    assert manager.exemption_scope(app, "llm.complete", "llm") == ExemptionScope.NONE


def test_a_new_exemption_is_seen_by_remembered_scopes():
    from flask import Blueprint, Flask

    from gateway.rate_limits import GatewayLimiter

    app = Flask(__name__)
    app.config["RATELIMIT_STORAGE_URI"] = "memory://"
    limiter = GatewayLimiter(key_func=lambda: "k")
    limiter.init_app(app)
    blueprint = Blueprint("late", __name__)
    blueprint.add_url_rule("/late", "view", lambda: "ok")
    app.register_blueprint(blueprint)
    assert limiter.limit_manager.exemption_scope(app, "late.view", "late") == ExemptionScope.NONE
    limiter.exempt(blueprint)
    assert limiter.limit_manager.exemption_scope(app, "late.view", "late") != ExemptionScope.NONE
