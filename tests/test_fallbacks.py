"""Routing through the whole gateway, on SQLite and on PostgreSQL + Redis, with two real fake upstreams:
"A" (the session's, behind the built-in `openai` and `anthropic`) and "B" (behind upstreams defined in a
PROVIDERS_FILE: openai-b, azure-b). One of them is told to fail.

Catalog of these tests: claude-haiku-4-5 on anthropic (A) falls back to gpt-4o-mini on openai-b (B), and
gpt-4o-mini falls back to claude-haiku-4-5; gpt-4o is an Azure deployment on B.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlalchemy import select

from gateway.extensions import db
from gateway.models import UsageRecord
from gateway.providers.base import ChatRequest, Message
from gateway.providers.registry import build_providers
from gateway.services import upstream_health
from gateway.services.catalog import Deployment, ModelCatalog
from gateway.services.routing import Router
from gateway.services.upstream_health import CooldownPolicy
from gateway.upstream_config import UpstreamDefinition
from tests.conftest import counters_match_audit, create_account, redis_url
from tests.fake_upstream import Behavior, FakeUpstream
from tests.test_observability import scrape, value

B_KEY, AZURE_KEY = "sk-b-0123456789", "azure-key-0123456789"
CATALOG = [{"id": "claude-haiku-4-5", "fallbacks": ["gpt-4o-mini"]},
           {"id": "gpt-4o-mini", "upstream": "openai-b", "fallbacks": ["claude-haiku-4-5"]},
           {"id": "gpt-4o", "deployments": [{"upstream": "azure-b", "upstream_id": "gpt4o-prod"}]}]
HI = [{"role": "user", "content": "hi"}]


class Clock:
    """The monotonic clock of upstream_health, moved by hand."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def upstream_b():
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def gateway(app_factory, database_url, tmp_path, admin_headers, upstream_b):
    """gateway(catalog, **settings) -> (app, client, account): the app with both upstreams and this catalog."""
    upstream_b.reset()

    def build(catalog=CATALOG, **settings):
        providers = {"upstreams": [
            {"name": "openai-b", "kind": "openai", "base_url": upstream_b.openai_base_url, "api_key_env": "B_KEY"},
            {"name": "azure-b", "kind": "azure_openai", "base_url": upstream_b.url, "api_key_env": "AZURE_KEY",
             "api_version": "2024-10-21"}]}
        (tmp_path / "providers.json").write_text(json.dumps(providers))
        (tmp_path / "models.json").write_text(json.dumps({"models": catalog}))
        if database_url.startswith("postgresql"):
            settings.setdefault("RATELIMIT_STORAGE_URI", redis_url())
        app = app_factory(**{"PROVIDERS_FILE": tmp_path / "providers.json",
                             "MODEL_CATALOG_FILE": tmp_path / "models.json", "B_KEY": B_KEY, "AZURE_KEY": AZURE_KEY,
                             "RATE_LIMIT_MAX": 100000, "IP_RATE_LIMIT_MAX": 100000, **settings})
        client = app.test_client()
        return app, client, create_account(client, admin_headers)

    return build


def post(client, account, model, path="/v1/llm/complete", **body):
    return client.post(path, json={"model": model, "messages": HI, **body}, headers=account.headers)


def records(app) -> list[UsageRecord]:
    with app.app_context():
        return db.session.execute(select(UsageRecord).order_by(UsageRecord.id)).scalars().all()


def events(response) -> list[tuple[str, dict]]:
    frames = response.get_data(as_text=True).strip().split("\n\n")
    return [(lines["event"], json.loads(lines["data"])) for lines in
            (dict(line.split(": ", 1) for line in frame.split("\n")) for frame in frames)]


def attempts(record) -> list[tuple]:
    return [(a["upstream"], a["model"], a["outcome"], a["upstream_status"]) for a in record.attempts]


def test_anthropic_falls_back_to_openai_and_back(gateway, fake_upstream, upstream_b):
    app, client, account = gateway()
    fake_upstream.set_default(Behavior(status=529))
    upstream_b.set_default(Behavior(reply="from B", prompt_tokens=1000, completion_tokens=100))
    response = post(client, account, "claude-haiku-4-5")
    body = response.get_json()
    assert response.status_code == 200, body
    assert (body["provider"], body["model"], body["content"]) == ("openai-b", "gpt-4o-mini", "from B")
    assert body["cost_usd"] == 0.00021  # at gpt-4o-mini's prices: 1000 x $0.15 + 100 x $0.60 per 1M
    assert [r.path for r in fake_upstream.requests] == ["/v1/messages"]
    assert [(r.path, r.headers["Authorization"], r.body["model"]) for r in upstream_b.requests] == \
        [("/v1/chat/completions", f"Bearer {B_KEY}", "gpt-4o-mini")]

    fake_upstream.set_default(Behavior(reply="from A", prompt_tokens=10, completion_tokens=2))
    upstream_b.set_default(Behavior(status=503))
    body = post(client, account, "gpt-4o-mini").get_json()
    assert (body["provider"], body["model"], body["content"]) == ("anthropic", "claude-haiku-4-5", "from A")

    there, back = records(app)
    assert (there.status, there.provider, there.model, there.fallback_from, there.cost_nanousd) == \
        ("ok", "openai-b", "gpt-4o-mini", "claude-haiku-4-5", 210_000)
    assert there.price_snapshot["model"] == "gpt-4o-mini"
    assert attempts(there) == [("anthropic", "claude-haiku-4-5", "upstream_error", 529),
                               ("openai-b", "gpt-4o-mini", "ok", None)]
    assert (back.provider, back.model, back.fallback_from) == ("anthropic", "claude-haiku-4-5", "gpt-4o-mini")
    assert attempts(back) == [("openai-b", "gpt-4o-mini", "upstream_error", 503),
                              ("anthropic", "claude-haiku-4-5", "ok", None)]
    assert counters_match_audit(app) == []


def test_streams_fall_back_before_the_first_byte_both_ways(gateway, fake_upstream, upstream_b):
    app, client, account = gateway()
    fake_upstream.set_default(Behavior(status=529))
    upstream_b.set_default(Behavior(chunks=["from ", "B"], prompt_tokens=5, completion_tokens=2))
    there = events(post(client, account, "claude-haiku-4-5", stream=True))
    assert there[0] == ("start", {"id": there[0][1]["id"], "provider": "openai-b", "model": "gpt-4o-mini"})
    assert [e[1]["content"] for e in there if e[0] == "delta"] == ["from ", "B"] and there[-1][0] == "done"

    fake_upstream.set_default(Behavior(chunks=["from ", "A"], prompt_tokens=5, completion_tokens=2))
    upstream_b.set_default(Behavior(status=500))
    back = events(post(client, account, "gpt-4o-mini", stream=True))
    assert back[0][1]["provider"] == "anthropic" and back[0][1]["model"] == "claude-haiku-4-5"
    assert [e[1]["content"] for e in back if e[0] == "delta"] == ["from ", "A"] and back[-1][0] == "done"
    assert [(r.status, r.model, r.fallback_from, r.prompt_tokens, r.completion_tokens) for r in records(app)] == \
        [("ok", "gpt-4o-mini", "claude-haiku-4-5", 5, 2), ("ok", "claude-haiku-4-5", "gpt-4o-mini", 5, 2)]
    assert counters_match_audit(app) == []


def test_the_drop_in_endpoints_fall_back_too(gateway, fake_upstream, upstream_b):
    app, client, account = gateway()
    fake_upstream.set_default(Behavior(status=529))
    upstream_b.set_default(Behavior(reply="from B"))
    openai = post(client, account, "claude-haiku-4-5", path="/v1/chat/completions", max_tokens=20).get_json()
    assert (openai["model"], openai["choices"][0]["message"]["content"]) == ("gpt-4o-mini", "from B")
    fake_upstream.set_default(Behavior(reply="from A"))
    upstream_b.set_default(Behavior(status=429))
    anthropic = post(client, account, "gpt-4o-mini", path="/v1/messages", max_tokens=20).get_json()
    assert (anthropic["model"], anthropic["content"][0]["text"]) == ("claude-haiku-4-5", "from A")
    assert [(r.endpoint, r.model, r.fallback_from) for r in records(app)] == \
        [("chat.completions", "gpt-4o-mini", "claude-haiku-4-5"), ("messages", "claude-haiku-4-5", "gpt-4o-mini")]


def test_no_fallback_once_a_stream_has_begun(gateway, fake_upstream, upstream_b):
    app, client, account = gateway()
    fake_upstream.set_default(Behavior(chunks=["partial ", "answer"], error_midstream=True))
    sent = events(post(client, account, "claude-haiku-4-5", stream=True))
    assert [name for name, _ in sent] == ["start", "delta", "error"]
    assert sent[0][1]["provider"] == "anthropic" and upstream_b.hits == 0
    [record] = records(app)
    assert (record.status, record.model, record.attempts, record.fallback_from) == \
        ("upstream_error", "claude-haiku-4-5", None, None)
    assert counters_match_audit(app) == []


def test_a_400_from_the_first_upstream_reaches_the_caller_and_nothing_else_is_tried(gateway, fake_upstream,
                                                                                     upstream_b):
    app, client, account = gateway()
    fake_upstream.set_default(Behavior(status=400, error_message="messages: too many images"))
    for stream in (False, True):
        response = post(client, account, "claude-haiku-4-5", stream=stream)
        error = response.get_json()["error"]
        assert (response.status_code, error["type"]) == (400, "invalid_request_error")
        assert "too many images" in error["message"]
    assert (fake_upstream.hits, upstream_b.hits) == (2, 0)
    assert [(r.status, r.http_status, r.attempts, r.counted) for r in records(app)] == \
        [("upstream_error", 400, None, False)] * 2
    assert counters_match_audit(app) == []


def test_azure_deployment_url_key_header_and_api_version(gateway, upstream_b):
    app, client, account = gateway()
    upstream_b.set_default(Behavior(reply="from Azure", prompt_tokens=10, completion_tokens=3))
    body = post(client, account, "gpt-4o", max_tokens=50).get_json()
    assert (body["provider"], body["model"], body["content"]) == ("azure-b", "gpt-4o", "from Azure")
    streamed = events(post(client, account, "gpt-4o", stream=True))
    assert streamed[-1][0] == "done" and streamed[-1][1]["usage"]["prompt_tokens"] == 10
    for sent in upstream_b.requests:
        assert (sent.path, sent.query) == ("/openai/deployments/gpt4o-prod/chat/completions", "api-version=2024-10-21")
        assert sent.headers["api-key"] == AZURE_KEY and "Authorization" not in sent.headers
        assert sent.body["messages"] == HI
    assert upstream_b.requests[0].body["max_completion_tokens"] == 50
    assert upstream_b.requests[1].body["stream_options"] == {"include_usage": True}
    assert [(r.provider, r.model, r.status) for r in records(app)] == [("azure-b", "gpt-4o", "ok")] * 2


def test_cooldown_starts_shows_and_ends(gateway, fake_upstream, upstream_b, admin_headers, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(upstream_health, "monotonic", clock)
    app, client, account = gateway(UPSTREAM_COOLDOWN_FAILURES=2, UPSTREAM_COOLDOWN_S=30)
    before = scrape(client)
    fake_upstream.set_default(Behavior(status=529))
    for _ in range(3):
        assert post(client, account, "claude-haiku-4-5").get_json()["model"] == "gpt-4o-mini"
    assert (fake_upstream.hits, upstream_b.hits) == (2, 3)  # the third request skipped the cooling deployment

    report = client.get("/admin/upstreams", headers=admin_headers).get_json()
    anthropic = next(u for u in report["data"] if u["name"] == "anthropic")
    haiku = next(d for d in anthropic["deployments"] if d["model"] == "claude-haiku-4-5")
    assert (anthropic["state"], anthropic["requests"], anthropic["failures"]) == ("degraded", 2, 2)
    assert (haiku["state"], haiku["failures_in_a_row"], haiku["cooldowns"]) == ("cooling_down", 2, 1)
    assert haiku["cooldown_until"] and haiku["last_error"]["upstream_status"] == 529
    models = {m["id"]: m for m in client.get("/v1/llm/models", headers=account.headers).get_json()["data"]}
    assert (models["claude-haiku-4-5"]["status"], models["claude-haiku-4-5"]["available"]) == ("fallback_only", True)
    after = scrape(client)
    for name, upstream, expected in (("gateway_upstream_requests_total", "anthropic", 2),
                                     ("gateway_upstream_fallbacks_total", "anthropic", 2),
                                     ("gateway_upstream_cooldowns_total", "anthropic", 1),
                                     ("gateway_upstream_requests_total", "openai-b", 3)):
        model = "claude-haiku-4-5" if upstream == "anthropic" else "gpt-4o-mini"
        labels = {"upstream": upstream, "model": model}
        assert value(after, name, **labels) - value(before, name, **labels) == expected, name
    labels = {"upstream": "anthropic", "model": "claude-haiku-4-5", "error_type": "upstream_error"}
    assert value(after, "gateway_upstream_failures_total", **labels) - \
        value(before, "gateway_upstream_failures_total", **labels) == 2

    clock.now += 30
    fake_upstream.set_default(Behavior(reply="recovered"))
    body = post(client, account, "claude-haiku-4-5").get_json()
    assert (body["provider"], body["content"], fake_upstream.hits) == ("anthropic", "recovered", 3)
    report = client.get("/admin/upstreams", headers=admin_headers).get_json()
    haiku = next(d for u in report["data"] if u["name"] == "anthropic" for d in u["deployments"]
                 if d["model"] == "claude-haiku-4-5")
    assert (haiku["state"], haiku["cooldown_until"], haiku["failures_in_a_row"]) == ("ok", None, 0)
    assert counters_match_audit(app) == []


def test_the_spend_cap_holds_when_the_fallback_is_pricier(gateway, fake_upstream, upstream_b, admin_headers):
    """The reservation covers claude-opus-4-1 ($15 / $75 per 1M), not just gpt-4o-mini ($0.15 / $0.60): with a
    prompt estimate of 8 tokens and max_tokens 100 that is $0.00762, against $0.0000612 for gpt-4o-mini."""
    catalog = [{"id": "gpt-4o-mini", "upstream": "openai-b", "fallbacks": ["claude-opus-4-1"]}]
    app, client, account = gateway(catalog)
    limits = {"user_id": account.user_id, "monthly_spend_cap_usd": "0.005"}
    assert client.post("/admin/limits", json=limits, headers=admin_headers).status_code == 200
    refused = post(client, account, "gpt-4o-mini", max_tokens=100)
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (429, "monthly_spend_cap_usd")
    assert (fake_upstream.hits, upstream_b.hits) == (0, 0)

    limits["monthly_spend_cap_usd"] = "0.01"
    assert client.post("/admin/limits", json=limits, headers=admin_headers).status_code == 200
    upstream_b.set_default(Behavior(status=503))
    fake_upstream.set_default(Behavior(prompt_tokens=8, completion_tokens=100))
    answered = post(client, account, "gpt-4o-mini", max_tokens=100).get_json()
    assert (answered["model"], answered["cost_usd"]) == ("claude-opus-4-1", 0.00762)
    again = post(client, account, "gpt-4o-mini", max_tokens=100)
    assert (again.status_code, again.get_json()["error"]["code"]) == (429, "monthly_spend_cap_usd")
    assert (fake_upstream.hits, upstream_b.hits) == (1, 1)
    quota = client.get("/v1/llm/quota", headers=account.headers).get_json()["monthly_spend_usd"]
    assert quota["used"] == 0.00762 and quota["used"] <= quota["limit"]
    assert counters_match_audit(app) == []


def test_weighted_split_within_ten_percent_over_1000_calls(fake_upstream, upstream_b):
    """1,000 real calls through the router and the adapters (no database: that part is the same per call and
    is covered below), weights 3:1 between upstream A and upstream B."""
    fake_upstream.reset()
    upstream_b.reset()
    upstreams = [UpstreamDefinition("openai", "openai", fake_upstream.openai_base_url, "K", "sk-a", 1, 5, 0),
                 UpstreamDefinition("openai-b", "openai", upstream_b.openai_base_url, "K", "sk-b", 1, 5, 0)]
    entry = ModelCatalog.load().resolve("gpt-4o-mini")
    weighted = replace(entry, deployments=(Deployment("openai", "gpt-4o-mini", 3),
                                           Deployment("openai-b", "gpt-4o-mini", 1)))
    router = Router(ModelCatalog([weighted], upstreams=["openai", "openai-b"]), build_providers(upstreams, False),
                    CooldownPolicy(3, 30))
    request = ChatRequest(model="gpt-4o-mini", messages=(Message("user", "hi"),), max_tokens=5)
    for _ in range(1000):
        router.complete(router.plan(weighted, lambda _entry: request))
    assert fake_upstream.hits + upstream_b.hits == 1000
    assert abs(fake_upstream.hits - 750) <= 75, fake_upstream.hits  # within 10% of 750 (5.5 sigma); B has the rest


def test_weighted_deployments_through_the_gateway(gateway, fake_upstream, upstream_b):
    catalog = [{"id": "gpt-4o-mini", "deployments": [{"upstream": "openai", "weight": 3},
                                                     {"upstream": "openai-b", "weight": 1}]}]
    app, client, account = gateway(catalog)
    answered = [post(client, account, "gpt-4o-mini", max_tokens=5).get_json()["provider"] for _ in range(40)]
    assert set(answered) == {"openai", "openai-b"}  # each misses all 40 with probability < 1e-5
    assert (fake_upstream.hits, upstream_b.hits) == (answered.count("openai"), answered.count("openai-b"))
    assert [r.provider for r in records(app)] == answered and {r.attempts for r in records(app)} == {None}


def test_usage_groups_by_the_model_that_answered(gateway, fake_upstream, upstream_b, admin_headers):
    app, client, account = gateway()
    upstream_b.set_default(Behavior(prompt_tokens=10, completion_tokens=1))
    fake_upstream.set_default(Behavior(status=502))
    assert post(client, account, "claude-haiku-4-5").status_code == 200
    fake_upstream.set_default(Behavior(prompt_tokens=10, completion_tokens=1))
    assert post(client, account, "claude-haiku-4-5").status_code == 200
    report = client.get("/admin/usage?group_by=model", headers=admin_headers).get_json()
    assert {g["key"]: (g["requests"], g["total_tokens"]) for g in report["groups"]} == \
        {"claude-haiku-4-5": (1, 11), "gpt-4o-mini": (1, 11)}
    page = client.get("/admin/usage/records", headers=admin_headers).get_json()["data"]
    assert [(r["model"], r["fallback_from"], len(r["attempts"] or [])) for r in page] == \
        [("claude-haiku-4-5", None, 0), ("gpt-4o-mini", "claude-haiku-4-5", 2)]


def test_retrieving_a_model_answers_as_the_list_does(gateway):
    """GET /v1/models/<model> finds what /v1/models lists: gpt-4.1 through its fallback; gpt-4o, Azure only
    without AZURE_KEY, is a 404 naming what is available."""
    catalog = [*CATALOG, {"id": "gpt-4.1", "deployments": [{"upstream": "azure-b", "upstream_id": "gpt41-prod"}],
                          "fallbacks": ["gpt-4o-mini"]}]
    _app, client, account = gateway(catalog, AZURE_KEY="")
    found = client.get("/v1/models/gpt-4.1", headers=account.headers)
    assert (found.status_code, found.get_json()["id"]) == (200, "gpt-4.1")
    missing = client.get("/v1/models/gpt-4o", headers=account.headers)
    error = missing.get_json()["error"]
    assert (missing.status_code, error["code"], error["param"]) == (404, "model_not_found", "model")
    assert "gpt-4.1" in error["message"] and "gpt-4o-mini" in error["message"]


def test_model_lists_show_routable_models_with_availability(gateway, upstream_b, admin_headers):
    """Without AZURE_KEY, gpt-4o (Azure only) is unavailable; gpt-4.1 (Azure, falling back to gpt-4o-mini)
    is still routable, through its fallback."""
    catalog = [*CATALOG, {"id": "gpt-4.1", "deployments": [{"upstream": "azure-b", "upstream_id": "gpt41-prod"}],
                          "fallbacks": ["gpt-4o-mini"]}]
    app, client, account = gateway(catalog, AZURE_KEY="")
    models = {m["id"]: m for m in client.get("/v1/llm/models", headers=account.headers).get_json()["data"]}
    assert [(models[m]["available"], models[m]["status"], models[m]["fallbacks"]) for m in
            ("gpt-4o", "gpt-4.1", "gpt-4o-mini")] == [(False, "unavailable", []),
                                                       (True, "fallback_only", ["gpt-4o-mini"]),
                                                       (True, "available", ["claude-haiku-4-5"])]
    listed = [m["id"] for m in client.get("/v1/models", headers=account.headers).get_json()["data"]]
    assert "gpt-4o" not in listed and {"gpt-4.1", "gpt-4o-mini", "claude-haiku-4-5"} <= set(listed)
    refused = post(client, account, "gpt-4o")
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (400, "provider_unavailable")
    body = post(client, account, "gpt-4.1").get_json()
    assert (body["provider"], body["model"], upstream_b.requests[-1].path) == \
        ("openai-b", "gpt-4o-mini", "/v1/chat/completions")
    report = client.get("/admin/upstreams", headers=admin_headers).get_json()
    azure = next(u for u in report["data"] if u["name"] == "azure-b")
    assert (azure["state"], azure["unavailable_reason"], azure["api_key_env"]) == \
        ("unavailable", "AZURE_KEY is not set", "AZURE_KEY")
    assert AZURE_KEY not in json.dumps(report) and B_KEY not in json.dumps(report)


@pytest.mark.parametrize("rule", ["prompt", "none"])
def test_a_failed_attempt_the_upstream_had_is_billed_by_the_ledger_rule(gateway, fake_upstream, upstream_b, rule):
    """claude-haiku-4-5 times out after the upstream had the prompt, gpt-4o-mini answers: under
    BILL_FAILED_UPSTREAM=prompt the row costs the answer plus the timed-out attempt's prompt estimate at
    claude-haiku-4-5's prices; under none, the answer only. A 529 refusal before it is never billed."""
    from gateway.current import gateway_state
    from gateway.providers.base import Usage
    from gateway.services.pricing import cost_nanousd, estimate_prompt_tokens

    app, client, account = gateway(UPSTREAM_TIMEOUT_S="0.3", UPSTREAM_MAX_RETRIES="0", BILL_FAILED_UPSTREAM=rule)
    fake_upstream.set_default(Behavior(delay_s=1.5))
    upstream_b.set_default(Behavior(reply="from B", prompt_tokens=9, completion_tokens=100))
    response = post(client, account, "claude-haiku-4-5")
    assert response.status_code == 200, response.get_json()
    record = records(app)[-1]
    assert attempts(record) == [("anthropic", "claude-haiku-4-5", "upstream_timeout", None),
                                ("openai-b", "gpt-4o-mini", "ok", None)]
    with app.app_context():
        haiku, mini = (gateway_state().catalog.resolve(name) for name in ("claude-haiku-4-5", "gpt-4o-mini"))
    estimate = estimate_prompt_tokens(ChatRequest(model="m", messages=(Message("user", "hi"),), max_tokens=1))
    answer = cost_nanousd(Usage(prompt_tokens=9, completion_tokens=100), mini)
    expected = answer + (cost_nanousd(Usage(prompt_tokens=estimate), haiku) if rule == "prompt" else 0)
    assert (record.status, record.model, record.cost_nanousd) == ("ok", "gpt-4o-mini", expected)
    assert record.cost_nanousd <= record.reserved_cost_nanousd
    assert counters_match_audit(app) == []

    fake_upstream.set_default(Behavior(status=529))
    post(client, account, "claude-haiku-4-5")
    assert records(app)[-1].cost_nanousd == answer  # the refusal cost nothing
    assert counters_match_audit(app) == []
