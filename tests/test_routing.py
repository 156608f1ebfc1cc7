"""The router on its own: which failures fall back, candidate order by weight and health, cooldowns that
start and end, fallback models that cannot take a request left out. Adapters here are scripted in-process;
tests/test_fallbacks.py runs the same rules through the whole gateway against real fake upstreams."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from gateway.errors import InvalidRequest
from gateway.providers.base import (ChatChunk, ChatRequest, ChatResult, Choice, Message, Provider, TextPart, UpstreamError,
                                    UpstreamInvalidRequest, UpstreamRateLimited, UpstreamTimeout, Usage)
from gateway.providers.registry import ProviderRegistry, Upstream
from gateway.services import upstream_health
from gateway.services.catalog import Deployment, ModelCatalog, ModelEntry
from gateway.services.routing import Router, falls_back
from gateway.services.upstream_health import CooldownPolicy, DeploymentHealth

RESULT = ChatResult(id="r", model="m", choices=(Choice(content=(TextPart("hi"),), finish_reason="stop"),),
                    usage=Usage(3, 1))


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(upstream_health, "monotonic", fake)
    return fake


class Scripted(Provider):
    """Answers, or raises the next queued error; records the models it was asked for."""

    name = "scripted"

    def __init__(self, refuse_above_temperature: float | None = None) -> None:
        self.failures: list[Exception] = []
        self.calls: list[str] = []
        self.refuse_above = refuse_above_temperature

    def validate(self, request: ChatRequest) -> None:
        if self.refuse_above is not None and (request.temperature or 0) > self.refuse_above:
            raise UpstreamInvalidRequest("temperature too high for this upstream", param="temperature")

    def complete(self, request: ChatRequest) -> ChatResult:
        self.calls.append(request.model)
        if self.failures:
            raise self.failures.pop(0)
        return RESULT

    def stream(self, request: ChatRequest):
        self.calls.append(request.model)
        if self.failures:
            raise self.failures.pop(0)
        yield ChatChunk(delta="hi")
        yield ChatChunk(finish_reason="stop", usage=Usage(3, 1))


def model(model_id: str, *deployments: Deployment, fallbacks=(), max_output=100, price="1") -> ModelEntry:
    first = deployments[0]
    return ModelEntry(id=model_id, provider=first.upstream, upstream_id=first.upstream_id, aliases=(),
                      context_window=1000, max_output_tokens=max_output, input_price=Decimal(price),
                      cached_input_price=Decimal(price), output_price=Decimal(price), cache_write_price=None,
                      price_version="t", deployments=deployments, fallbacks=tuple(fallbacks))


def router(entries, adapters: dict[str, Provider], failures=2, seconds=30.0, rng=None) -> Router:
    kinds = {"a": "anthropic", "b": "openai", "c": "openai"}
    registry = ProviderRegistry({name: Upstream(name, kinds.get(name, "openai"), lambda _m, p=p: p)
                                 for name, p in adapters.items()})
    catalog = ModelCatalog(entries, upstreams=["a", "b", "c", "nokey"])
    kwargs = {"rng": rng} if rng else {}
    return Router(catalog, registry, CooldownPolicy(failures, seconds), **kwargs)


def build(entry: ModelEntry, temperature: float | None = None, max_tokens: int | None = None) -> ChatRequest:
    wanted = max_tokens or entry.max_output_tokens
    if wanted > entry.max_output_tokens:
        raise InvalidRequest("max_tokens too large", param="max_tokens")
    return ChatRequest(model=entry.upstream_id, messages=(Message("user", "hi"),), max_tokens=wanted,
                       temperature=temperature)


def plan(table: Router, model_id: str, provider: str = "auto", **options):
    entry = table._catalog.resolve(model_id)
    return table.plan(entry, lambda e: build(e, **options), provider)


@pytest.mark.parametrize("error, expected", [
    (UpstreamError("could not connect to x"), True),
    (UpstreamTimeout("x did not respond"), True),
    (UpstreamRateLimited("slow down", upstream_status=429), True),
    (UpstreamError("HTTP 500", upstream_status=500), True),
    (UpstreamError("HTTP 503", upstream_status=503), True),
    (UpstreamError("overloaded", upstream_status=529), True),
    (UpstreamError("HTTP 408", upstream_status=408), True),
    (UpstreamError("a completion without choices"), True),
    (UpstreamInvalidRequest("bad param", upstream_status=400), False),
    (UpstreamInvalidRequest("too large", upstream_status=413), False),
    (UpstreamError("rejected the gateway's provider credentials", upstream_status=401), False),
    (UpstreamError("rejected the gateway's provider credentials", upstream_status=403), False),
    (UpstreamError("payment required", upstream_status=402), False),
])
def test_what_falls_back(error, expected):
    assert falls_back(error) is expected


def test_weighted_split_within_ten_percent_over_1000_routes():
    a, b = Scripted(), Scripted()
    table = router([model("m", Deployment("a", "m-a", 3), Deployment("b", "m-b", 1))], {"a": a, "b": b})
    firsts = Counter(plan(table, "m").current.target.deployment.upstream for _ in range(1000))
    assert abs(firsts["a"] - 750) <= 75 and firsts["a"] + firsts["b"] == 1000, firsts  # 10% of 750 = 5.5 sigma


def test_every_deployment_of_a_model_is_a_candidate_before_its_fallbacks():
    table = router([model("m", Deployment("a", "m-a", 1), Deployment("b", "m-b", 1), fallbacks=["f"]),
                    model("f", Deployment("c", "f-c"))], {"a": Scripted(), "b": Scripted(), "c": Scripted()})
    orders = {tuple(c.target.deployment.upstream for c in plan(table, "m").candidates) for _ in range(200)}
    assert orders == {("a", "b", "c"), ("b", "a", "c")}


def test_fallback_answers_and_the_route_says_so():
    a, c = Scripted(), Scripted()
    a.failures = [UpstreamError("overloaded", upstream_status=529)]
    table = router([model("m", Deployment("a", "m-a"), fallbacks=["f"]), model("f", Deployment("c", "f-c"))],
                   {"a": a, "c": c})
    route = plan(table, "m")
    assert table.complete(route) is RESULT
    assert (a.calls, c.calls) == (["m-a"], ["f-c"])
    assert (route.entry.id, route.entry.provider, route.fallback_from, route.rerouted) == ("f", "c", "m", True)
    assert [(x.upstream, x.model, x.error_type, x.upstream_status) for x in route.attempts] == \
        [("a", "m", "upstream_error", 529), ("c", "f", None, None)]


def test_a_refusal_is_the_callers_answer_and_the_last_failure_is_raised():
    a, c = Scripted(), Scripted()
    a.failures = [UpstreamInvalidRequest("bad", upstream_status=400)]
    table = router([model("m", Deployment("a", "m-a"), fallbacks=["f"]), model("f", Deployment("c", "f-c"))],
                   {"a": a, "c": c})
    with pytest.raises(UpstreamInvalidRequest):
        table.complete(plan(table, "m"))
    assert c.calls == []
    a.failures, c.failures = [UpstreamTimeout("slow")], [UpstreamError("down", upstream_status=502)]
    with pytest.raises(UpstreamError, match="down"):
        table.complete(plan(table, "m"))


def test_a_stream_falls_back_only_before_its_first_chunk():
    a, c = Scripted(), Scripted()
    a.failures = [UpstreamError("overloaded", upstream_status=529)]
    table = router([model("m", Deployment("a", "m-a"), fallbacks=["f"]), model("f", Deployment("c", "f-c"))],
                   {"a": a, "c": c})
    route = plan(table, "m")
    first, rest = table.open_stream(route)
    assert (first.delta, [chunk.finish_reason for chunk in rest]) == ("hi", ["stop"])
    assert (a.calls, c.calls, route.entry.id) == (["m-a"], ["f-c"], "f")


def test_fallback_models_that_cannot_take_the_request_are_left_out():
    table = router([model("m", Deployment("b", "m-b"), fallbacks=["small", "strict", "nokey", "ok"], max_output=500),
                    model("small", Deployment("c", "s-c"), max_output=100),
                    model("strict", Deployment("a", "x-a")),
                    model("nokey", Deployment("nokey", "n")),
                    model("ok", Deployment("c", "ok-c"), max_output=500)],
                   {"a": Scripted(refuse_above_temperature=1.0), "b": Scripted(), "c": Scripted()})
    route = plan(table, "m", temperature=1.5, max_tokens=300)
    assert [c.target.entry.id for c in route.candidates] == ["m", "ok"]


def test_the_requested_models_own_refusal_is_raised():
    table = router([model("m", Deployment("a", "m-a"), fallbacks=["f"]), model("f", Deployment("b", "f-b"))],
                   {"a": Scripted(refuse_above_temperature=1.0), "b": Scripted()})
    with pytest.raises(UpstreamInvalidRequest, match="temperature"):
        plan(table, "m", temperature=1.5)
    with pytest.raises(InvalidRequest, match="max_tokens"):
        plan(table, "m", max_tokens=101)


def test_a_pinned_provider_keeps_only_its_candidates():
    table = router([model("m", Deployment("a", "m-a"), fallbacks=["f"]), model("f", Deployment("b", "f-b"))],
                   {"a": Scripted(), "b": Scripted()})
    assert [c.target.entry.id for c in plan(table, "m", provider="anthropic").candidates] == ["m"]
    with pytest.raises(InvalidRequest) as raised:
        plan(table, "f", provider="anthropic")
    assert raised.value.code == "provider_mismatch"


def test_a_model_without_any_callable_candidate_is_unavailable():
    table = router([model("m", Deployment("nokey", "m")), model("n", Deployment("nokey", "n"), fallbacks=["f"]),
                    model("f", Deployment("b", "f-b"))], {"b": Scripted()})
    with pytest.raises(InvalidRequest) as raised:
        plan(table, "m")
    assert raised.value.code == "provider_unavailable" and "Available models: n, f." in raised.value.message
    assert [c.target.entry.id for c in plan(table, "n").candidates] == ["f"]
    assert [table.availability(table._catalog.resolve(m)) for m in ("m", "n", "f")] == \
        ["unavailable", "fallback_only", "available"]


def test_cooldown_starts_after_failures_in_a_row_and_ends(clock):
    a, c = Scripted(), Scripted()
    table = router([model("m", Deployment("a", "m-a"), fallbacks=["f"]), model("f", Deployment("c", "f-c"))],
                   {"a": a, "c": c}, failures=2, seconds=30)
    a.failures = [UpstreamError("down", upstream_status=503)] * 2
    for _ in range(2):
        table.complete(plan(table, "m"))
    [health] = [t.health for t in table.targets("m")]
    snapshot = health.snapshot()
    assert (snapshot["state"], snapshot["failures_in_a_row"], snapshot["cooldowns"]) == ("cooling_down", 2, 1)
    assert snapshot["last_error"]["upstream_status"] == 503 and snapshot["cooldown_until"].endswith("Z")
    assert table.availability(table._catalog.resolve("m")) == "fallback_only"

    route = plan(table, "m")
    assert [x.target.entry.id for x in route.candidates] == ["f"]
    table.complete(route)
    assert a.calls == ["m-a", "m-a"]

    clock.now += 30
    assert health.snapshot()["state"] == "ok"
    a.failures = [UpstreamError("still down", upstream_status=503)]
    table.complete(plan(table, "m"))
    assert (health.snapshot()["state"], health.cooldowns) == ("cooling_down", 2)  # half open: one more failure
    clock.now += 30
    table.complete(plan(table, "m"))
    assert (a.calls[-1], health.snapshot()["failures_in_a_row"], health.snapshot()["state"]) == ("m-a", 0, "ok")


def test_when_every_candidate_is_cooling_down_all_are_tried(clock):
    a, b = Scripted(), Scripted()
    table = router([model("m", Deployment("a", "m-a"), fallbacks=["f"]), model("f", Deployment("b", "f-b"))],
                   {"a": a, "b": b}, failures=1)
    a.failures = [UpstreamError("down", upstream_status=500)]
    b.failures = [UpstreamError("down", upstream_status=500)]
    with pytest.raises(UpstreamError):
        table.complete(plan(table, "m"))
    assert table.availability(table._catalog.resolve("m")) == "cooling_down"
    route = plan(table, "m")
    assert [x.target.entry.id for x in route.candidates] == ["m", "f"]
    assert table.complete(route) is RESULT


def test_a_refusal_never_counts_toward_a_cooldown(clock):
    a = Scripted()
    table = router([model("m", Deployment("a", "m-a"))], {"a": a}, failures=1)
    a.failures = [UpstreamInvalidRequest("bad", upstream_status=400)]
    with pytest.raises(UpstreamInvalidRequest):
        table.complete(plan(table, "m"))
    assert table.targets("m")[0].health.snapshot()["failures"] == 0
    a.failures = [UpstreamError("down", upstream_status=500)]
    with pytest.raises(UpstreamError):
        table.complete(plan(table, "m"))
    assert table.targets("m")[0].health.cooling()


def test_zero_seconds_never_cools_down(clock):
    health = DeploymentHealth(CooldownPolicy(failures=1, seconds=0))
    assert [health.failed("upstream_error", "x", 500) for _ in range(3)] == [False, False, False]
    assert not health.cooling()
