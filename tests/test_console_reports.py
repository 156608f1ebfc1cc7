"""Admin reports the console reads: usage per user and per day, quota use and users near caps, the model
catalog, upstreams, and the audit log's model filter; exact against /admin/usage and the counters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.extensions import db
from gateway.models import User
from gateway.services.limits import effective_limits
from gateway.services.quotas import ReservationFacts, reserve
from gateway.current import gateway_state
from tests.conftest import counters_match_audit, create_account
from tests.fake_upstream import Behavior
from tests.test_admin_usage import add_records
from tests.test_admin_users import assert_error, new_user

MARCH = "from=2026-03-01&to=2026-03-31"


def get(client, headers, path):
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def complete(client, account, model="mock-1", text="hello there"):
    return client.post("/v1/llm/complete", headers=account.headers,
                       json={"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": text}]})


@pytest.fixture
def trio(app, client, admin_headers):
    """Ada spends most, Bob a little, Cy nothing; rows in March 2026 and one in April."""
    ada, bob, cy = (new_user(client, admin_headers, name=name, email=f"{name.lower()}@example.com").get_json()["id"]
                    for name in ("Ada", "Bob", "Cy"))
    add_records(
        app,
        {"day": date(2026, 3, 1), "user_id": ada, "prompt_tokens": 100, "completion_tokens": 50,
         "cost_nanousd": 1_500_000_000},
        {"day": date(2026, 3, 3), "user_id": ada, "prompt_tokens": 10, "completion_tokens": 5, "cost_nanousd": 1},
        {"day": date(2026, 3, 3), "user_id": ada, "status": "upstream_error", "counted": False, "http_status": 502},
        {"day": date(2026, 3, 5), "user_id": bob, "prompt_tokens": 1, "completion_tokens": 1, "cost_nanousd": 5},
        {"day": date(2026, 4, 1), "user_id": bob, "prompt_tokens": 1000, "cost_nanousd": 10**10},
    )
    return ada, bob, cy


def test_usage_by_user_ranks_spenders_with_the_same_totals_as_usage(client, admin_headers, trio):
    ada, bob, _cy = trio
    body = get(client, admin_headers, f"/admin/usage/users?{MARCH}")
    assert body["from"] == "2026-03-01" and body["to"] == "2026-03-31"
    assert [row["user_id"] for row in body["data"]] == [ada, bob]
    for row in body["data"]:
        totals = get(client, admin_headers, f"/admin/usage?user_id={row['user_id']}&{MARCH}")["totals"]
        assert {name: row[name] for name in totals} == totals
        assert row["status"] == "active" and row["email"].endswith("@example.com")
    assert body["data"][0]["cost_usd"] == 1.500000001 and body["data"][0]["errors"] == 1
    assert [row["user_id"] for row in get(client, admin_headers, f"/admin/usage/users?{MARCH}&limit=1")["data"]] == [ada]


def test_usage_by_user_breaks_ties_by_requests_then_id(app, client, admin_headers):
    first, second, third = (new_user(client, admin_headers, email=f"u{n}@example.com").get_json()["id"]
                            for n in range(3))
    day = date(2026, 3, 2)
    add_records(app, *({"day": day, "user_id": user, "cost_nanousd": 7} for user in (third, second, second, first)))
    body = get(client, admin_headers, "/admin/usage/users?from=2026-03-01&to=2026-03-31")
    assert [row["user_id"] for row in body["data"]] == [second, first, third]


def test_daily_series_has_every_day_and_equals_group_by_day(client, admin_headers, trio):
    body = get(client, admin_headers, "/admin/usage/daily?from=2026-03-01&to=2026-03-06")
    assert [entry["day"] for entry in body["data"]] == [f"2026-03-0{n}" for n in range(1, 7)]
    grouped = get(client, admin_headers, "/admin/usage?from=2026-03-01&to=2026-03-06&group_by=day")["groups"]
    with_data = {group.pop("key"): group for group in grouped}
    assert sorted(with_data) == ["2026-03-01", "2026-03-03", "2026-03-05"]
    for entry in body["data"]:
        day = entry.pop("day")
        expected = with_data.get(day, {"requests": 0, "errors": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                       "total_tokens": 0, "cost_usd": 0.0})
        assert entry == expected, day


def test_daily_series_of_one_user_and_default_window(client, admin_headers, trio):
    ada, bob, _cy = trio
    bobs = get(client, admin_headers, f"/admin/usage/daily?user_id={bob}&from=2026-03-01&to=2026-04-01")
    assert bobs["user_id"] == bob and len(bobs["data"]) == 32
    assert [e["day"] for e in bobs["data"] if e["requests"]] == ["2026-03-05", "2026-04-01"]
    default = get(client, admin_headers, "/admin/usage/daily")
    today = datetime.now(UTC).date()
    assert default["to"] == today.isoformat() and default["from"] == (today - timedelta(days=29)).isoformat()
    assert len(default["data"]) == 30 and default["user_id"] is None


@pytest.mark.parametrize("query, status, param", [
    ("from=2026-03-05&to=2026-03-01", 400, "from"),
    ("from=2025-01-01&to=2026-03-01", 400, "from"),
    ("to=2026-13-01", 400, "to"),
    ("user_id=0", 400, "user_id"),
    ("user_id=999", 404, "user_id"),
    ("group_by=day", 400, "group_by"),
])
def test_bad_daily_series_query(client, admin_headers, query, status, param):
    response = client.get(f"/admin/usage/daily?{query}", headers=admin_headers)
    assert_error(response, status, "invalid_request_error" if status == 400 else "not_found_error", param)


def test_quota_use_equals_the_counters_and_the_usage_report(client, admin_headers, app):
    account = create_account(client, admin_headers, daily_requests=2, monthly_spend_cap_usd="1")
    assert complete(client, account).status_code == 200
    assert complete(client, account, text="a longer prompt " * 20).status_code == 200
    body = get(client, admin_headers, f"/admin/quotas/{account.user_id}")
    today = get(client, admin_headers, f"/admin/usage?user_id={account.user_id}")["totals"]
    quotas = body["quotas"]
    assert quotas["daily_requests"] == {"limit": 2, "used": 2, "reserved": 0, "fraction": 1.0}
    assert quotas["daily_tokens"]["used"] == today["total_tokens"] and quotas["daily_tokens"]["limit"] == 100000
    assert quotas["monthly_spend_usd"]["used"] == today["cost_usd"] and quotas["monthly_spend_usd"]["limit"] == 1.0
    assert quotas["concurrent_requests"] == {"limit": None, "used": 0, "reserved": 0, "fraction": None}
    assert counters_match_audit(app, account.user_id) == []


def test_requests_in_flight_show_as_reserved(app, client, admin_headers):
    account = create_account(client, admin_headers)
    with app.app_context():
        limits = effective_limits(db.session.get(User, account.user_id), gateway_state().settings)
        reserve(ReservationFacts(request_id="req_inflight", user_id=account.user_id, key_id=account.key_id,
                             endpoint="llm.complete", provider="mock", model="mock-1", stream=False,
                             client_ip="127.0.0.1", prompt_tokens=30, completion_tokens=70, cost_nanousd=170_000,
                             price_snapshot=None, prompt_record=None), limits)
    quotas = get(client, admin_headers, f"/admin/quotas/{account.user_id}")["quotas"]
    assert quotas["daily_requests"] == {"limit": 1000, "used": 0, "reserved": 1, "fraction": 0.001}
    assert quotas["daily_tokens"] == {"limit": 100000, "used": 0, "reserved": 100, "fraction": 0.001}
    assert quotas["monthly_spend_usd"] == {"limit": 50.0, "used": 0.0, "reserved": 0.00017, "fraction": 0.0}
    assert quotas["concurrent_requests"] == {"limit": None, "used": 1, "reserved": 0, "fraction": None}
    capped = {"user_id": account.user_id, "max_concurrent_requests": 4}
    assert client.post("/admin/limits", json=capped, headers=admin_headers).status_code == 200
    quotas = get(client, admin_headers, f"/admin/quotas/{account.user_id}")["quotas"]
    assert quotas["concurrent_requests"] == {"limit": 4, "used": 1, "reserved": 0, "fraction": 0.25}


def test_near_caps_lists_active_users_at_the_threshold_fullest_first(client, admin_headers):
    full = create_account(client, admin_headers, email="full@example.com", daily_requests=1)
    half = create_account(client, admin_headers, email="half@example.com", daily_requests=2)
    blocked = create_account(client, admin_headers, email="blocked@example.com", daily_tokens=0)
    idle = create_account(client, admin_headers, email="idle@example.com")
    gone = create_account(client, admin_headers, email="gone@example.com", daily_requests=1)
    for account in (full, half, gone):
        assert complete(client, account).status_code == 200
    client.post(f"/admin/users/{gone.user_id}/suspend", headers=admin_headers)
    body = get(client, admin_headers, "/admin/quotas/near-caps")
    assert body["threshold"] == 0.8
    assert [(row["user_id"], row["nearest"]) for row in body["data"]] == [
        (full.user_id, {"quota": "daily_requests", "fraction": 1.0}),
        (blocked.user_id, {"quota": "daily_tokens", "fraction": 1.0})]
    lower = get(client, admin_headers, "/admin/quotas/near-caps?threshold=0.5&limit=2")["data"]
    assert [row["user_id"] for row in lower] == [full.user_id, blocked.user_id]
    everyone = [row["user_id"] for row in get(client, admin_headers, "/admin/quotas/near-caps?threshold=0.5")["data"]]
    assert everyone == [full.user_id, blocked.user_id, half.user_id] and idle.user_id not in everyone


@pytest.mark.parametrize("query", ["threshold=0", "threshold=1.5", "threshold=nan", "limit=0", "limit=201", "x=1"])
def test_bad_near_caps_query_is_400(client, admin_headers, query):
    assert_error(client.get(f"/admin/quotas/near-caps?{query}", headers=admin_headers), 400, "invalid_request_error")


def test_quota_list_searches_filters_and_pages(client, admin_headers):
    ada = new_user(client, admin_headers, name="Ada Lovelace", email="ada@example.com").get_json()["id"]
    bob = new_user(client, admin_headers, name="Bob", email="bob@lovelace.org").get_json()["id"]
    cy = new_user(client, admin_headers, name="Cy 100%", email="cy@example.com").get_json()["id"]
    client.post(f"/admin/users/{bob}/suspend", headers=admin_headers)
    ids = lambda query: [row["user_id"] for row in get(client, admin_headers, f"/admin/quotas?{query}")["data"]]
    assert ids("") == [ada, bob, cy]
    assert ids("search=LOVELACE") == [ada, bob]
    assert ids("search=lovelace&status=active") == [ada]
    assert ids("search=%25") == [cy]
    assert ids("search=_") == []
    first = get(client, admin_headers, "/admin/quotas?limit=2")
    assert [row["user_id"] for row in first["data"]] == [ada, bob] and first["next_cursor"]
    assert ids(f"limit=2&cursor={first['next_cursor']}") == [cy]
    row = get(client, admin_headers, "/admin/quotas?search=Cy")["data"][0]
    assert row == {"user_id": cy, "name": "Cy 100%", "email": "cy@example.com", "status": "active", "quotas": {
        "daily_requests": {"limit": 1000, "used": 0, "reserved": 0, "fraction": 0.0},
        "daily_tokens": {"limit": 100000, "used": 0, "reserved": 0, "fraction": 0.0},
        "monthly_spend_usd": {"limit": 50.0, "used": 0.0, "reserved": 0.0, "fraction": 0.0},
        "concurrent_requests": {"limit": None, "used": 0, "reserved": 0, "fraction": None}}}


@pytest.mark.parametrize("query, param", [("search=a%00b", "search"), ("search=", "search"), ("status=gone", "status"),
                                          ("cursor=nope", "cursor")])
def test_bad_quota_list_query_is_400(client, admin_headers, query, param):
    assert_error(client.get(f"/admin/quotas?{query}", headers=admin_headers), 400, "invalid_request_error", param)


def test_quotas_of_unknown_user_is_404(client, admin_headers):
    for user_id in ("999", "0", "abc"):
        assert_error(client.get(f"/admin/quotas/{user_id}", headers=admin_headers), 404, "not_found_error")


def test_models_list_the_whole_catalog_with_prices(app, client, admin_headers):
    data = get(client, admin_headers, "/admin/models")["data"]
    with app.app_context():
        catalog = list(gateway_state().catalog.entries())
    assert [model["id"] for model in data] == [entry.id for entry in catalog]
    mock = next(model for model in data if model["id"] == "mock-1")
    assert mock["available"] is True and mock["pricing"] == {
        "input_per_1m": 1.0, "cached_input_per_1m": 0.1, "output_per_1m": 2.0, "currency": "USD",
        "price_version": "2025-11"}


def test_models_show_providers_without_a_key_as_unavailable(app_factory, admin_headers):
    client = app_factory(OPENAI_API_KEY="", ANTHROPIC_API_KEY="").test_client()
    data = get(client, admin_headers, "/admin/models")["data"]
    assert {m["provider"] for m in data if m["available"]} == {"mock"}
    assert any(m["provider"] == "openai" and not m["available"] for m in data)


def test_upstreams_report_configuration_and_todays_outcomes(client, admin_headers, fake_upstream):
    account = create_account(client, admin_headers)
    assert complete(client, account, model="gpt-4o-mini").status_code == 200
    fake_upstream.enqueue(Behavior(status=500, error_type="server_error", error_message="boom"))
    assert complete(client, account, model="gpt-4o-mini").status_code == 502
    assert complete(client, account).status_code == 200
    body = get(client, admin_headers, "/admin/usage/upstreams")
    assert body["day"] == datetime.now(UTC).date().isoformat()
    providers = {p["name"]: p for p in body["providers"]}
    assert set(providers) == {"anthropic", "mock", "openai"}
    openai = providers["openai"]
    assert (openai["configured"], openai["requests_today"], openai["upstream_errors_today"]) == (True, 2, 1)
    assert openai["last_upstream_error_at"].endswith("Z") and openai["mean_upstream_latency_ms"] >= 0
    assert providers["anthropic"]["requests_today"] == 0 and providers["anthropic"]["last_upstream_error_at"] is None
    assert providers["mock"]["requests_today"] == 1 and providers["mock"]["models"] == 1


def test_audit_rows_filter_by_model(client, admin_headers, trio, app):
    ada, _bob, _cy = trio
    add_records(app, {"day": date(2026, 3, 2), "user_id": ada, "model": "claude-haiku-4-5", "provider": "anthropic"})
    rows = get(client, admin_headers, "/admin/usage/records?model=claude-haiku-4-5")["data"]
    assert [row["model"] for row in rows] == ["claude-haiku-4-5"]
    failed = get(client, admin_headers, "/admin/usage/records?model=gpt-4o-mini&status=upstream_error")["data"]
    assert len(failed) == 1 and failed[0]["http_status"] == 502
    assert get(client, admin_headers, "/admin/usage/records?model=nope")["data"] == []
    assert_error(client.get("/admin/usage/records?model=a%00", headers=admin_headers), 400,
                 "invalid_request_error", "model")
