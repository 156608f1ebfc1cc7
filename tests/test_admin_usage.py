"""Admin usage: totals and groups summed in SQL from audit rows, exact cost, and the audit-row listing."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from gateway.extensions import db
from gateway.models import UsageRecord
from tests.conftest import create_account
from tests.test_admin_users import assert_error, new_user

RECORD_FIELDS = {"request_id", "user_id", "key_id", "endpoint", "provider", "model", "status", "http_status",
                 "error_type", "stream", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd",
                 "price_snapshot", "billing_rule", "fallback_from", "attempts", "latency_ms", "upstream_latency_ms", "client_ip",
                 "prompt_record", "created_at", "finished_at"}


def add_records(app, *rows):
    """Insert audit rows directly (the completion pipeline is tested elsewhere)."""
    with app.app_context():
        for number, row in enumerate(rows):
            day = row.pop("day")
            values = {"request_id": f"req_{day}_{number}_{row.get('status', 'ok')}", "endpoint": "llm.complete",
                      "provider": "openai", "model": "gpt-4o-mini", "status": "ok", "counted": True,
                      "day_start": day, "month_start": day.replace(day=1), **row}
            db.session.add(UsageRecord(**values))
        db.session.commit()


@pytest.fixture
def users(client, admin_headers):
    return [new_user(client, admin_headers, email=f"{name}@example.com").get_json()["id"] for name in ("ada", "bob")]


@pytest.fixture
def march(app, users):
    ada, bob = users
    add_records(
        app,
        {"day": date(2026, 3, 1), "user_id": ada, "prompt_tokens": 100, "completion_tokens": 50,
         "cost_nanousd": 1_500_000_000},
        {"day": date(2026, 3, 1), "user_id": ada, "model": "claude-haiku", "provider": "anthropic",
         "prompt_tokens": 10, "completion_tokens": 5, "cost_nanousd": 1},
        {"day": date(2026, 3, 2), "user_id": ada, "status": "upstream_error", "counted": False, "http_status": 502},
        {"day": date(2026, 3, 2), "user_id": ada, "status": "pending", "reserved_prompt_tokens": 99},
        {"day": date(2026, 3, 2), "user_id": ada, "status": "quota_exceeded", "counted": False, "model": None},
        {"day": date(2026, 3, 3), "user_id": ada, "status": "client_disconnected", "prompt_tokens": 7,
         "completion_tokens": 3, "cost_nanousd": 2},
        {"day": date(2026, 4, 1), "user_id": ada, "prompt_tokens": 1000, "cost_nanousd": 10**9},
        {"day": date(2026, 3, 15), "user_id": bob, "prompt_tokens": 1, "completion_tokens": 1, "cost_nanousd": 5},
    )
    return ada, bob


def usage(client, headers, query):
    return client.get(f"/admin/usage?{query}", headers=headers)


def test_totals_for_one_user_and_period(client, admin_headers, march):
    ada, _ = march
    response = usage(client, admin_headers, f"user_id={ada}&from=2026-03-01&to=2026-03-31")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["from"], body["to"], body["user_id"], body["groups"]) == ("2026-03-01", "2026-03-31", ada, [])
    # requests: ok, ok, pending, client_disconnected (counted); errors: upstream_error, quota_exceeded, disconnect
    assert body["totals"] == {"requests": 4, "errors": 3, "prompt_tokens": 117, "completion_tokens": 58,
                              "total_tokens": 175, "cost_usd": float(Decimal("1.500000003"))}


def test_totals_for_everyone(client, admin_headers, march):
    body = usage(client, admin_headers, "from=2026-03-01&to=2026-03-31").get_json()
    assert body["user_id"] is None
    assert body["totals"]["requests"] == 5 and body["totals"]["cost_usd"] == float(Decimal("1.500000008"))


def test_group_by_day_uses_day_start_and_is_inclusive(client, admin_headers, march):
    ada, _ = march
    groups = usage(client, admin_headers, f"user_id={ada}&from=2026-03-02&to=2026-04-01&group_by=day").get_json()
    assert [(g["key"], g["requests"], g["errors"], g["total_tokens"], g["cost_usd"]) for g in groups["groups"]] == [
        ("2026-03-02", 1, 2, 0, 0.0), ("2026-03-03", 1, 1, 10, 2e-09), ("2026-04-01", 1, 0, 1000, 1.0)]
    assert groups["totals"]["requests"] == 3


def test_group_by_model_puts_unknown_model_last(client, admin_headers, march):
    ada, _ = march
    body = usage(client, admin_headers, f"user_id={ada}&from=2026-03-01&to=2026-03-31&group_by=model").get_json()
    assert [(g["key"], g["requests"], g["prompt_tokens"]) for g in body["groups"]] == [
        ("claude-haiku", 1, 10), ("gpt-4o-mini", 3, 107), (None, 0, 0)]
    assert sum(g["requests"] for g in body["groups"]) == body["totals"]["requests"]


def test_default_period_is_the_current_month_so_far(app, client, admin_headers, users):
    today = datetime.now(UTC).date()
    previous = date(today.year - 1, 12, 31) if today.month == 1 else today.replace(day=1, month=today.month - 1)
    add_records(app, {"day": today, "user_id": users[0], "cost_nanousd": 7},
                {"day": previous, "user_id": users[0], "cost_nanousd": 1000})
    body = usage(client, admin_headers, "").get_json()
    assert (body["from"], body["to"]) == (today.replace(day=1).isoformat(), today.isoformat())
    assert body["totals"]["requests"] == 1 and body["totals"]["cost_usd"] == 7e-09


@pytest.mark.parametrize("query, param", [
    ("from=2026-03-05&to=2026-03-01", "from"), ("from=2026-02-30", "from"), ("to=tomorrow", "to"),
    ("group_by=week", "group_by"), ("user_id=abc", "user_id"), ("since=2026-01-01", "since"),
])
def test_bad_usage_query_is_400(client, admin_headers, query, param):
    assert_error(usage(client, admin_headers, query), 400, "invalid_request_error", param)


def test_usage_of_unknown_user_is_404(client, admin_headers):
    assert_error(usage(client, admin_headers, "user_id=404"), 404, "not_found_error", "user_id")


def test_records_newest_first_with_pagination(client, admin_headers, march):
    first = client.get("/admin/usage/records?limit=3", headers=admin_headers).get_json()
    assert [r["request_id"].split("_")[2] for r in first["data"]] == ["7", "6", "5"]
    rest = client.get(f"/admin/usage/records?cursor={first['next_cursor']}", headers=admin_headers).get_json()
    assert [r["request_id"].split("_")[2] for r in rest["data"]] == ["4", "3", "2", "1", "0"]
    assert rest["next_cursor"] is None
    assert set(first["data"][0]) == RECORD_FIELDS


def test_records_view_values(client, admin_headers, march):
    ada, _ = march
    rows = client.get(f"/admin/usage/records?user_id={ada}&status=ok&from=2026-03-01&to=2026-03-01",
                      headers=admin_headers).get_json()["data"]
    assert [(r["model"], r["cost_usd"], r["prompt_tokens"], r["stream"]) for r in rows] == [
        ("claude-haiku", 1e-09, 10, False), ("gpt-4o-mini", 1.5, 100, False)]
    assert rows[0]["created_at"].endswith("Z") and rows[0]["finished_at"] is None


@pytest.mark.parametrize("query, param", [
    ("status=exploded", "status"), ("limit=0", "limit"), ("limit=500", "limit"), ("cursor=%%%", "cursor"),
    ("cursor=eyJhZnRlciI6IngifQ", "cursor"), ("from=2026-03-02&to=2026-03-01", "from"), ("model=a%00b", "model"),
])
def test_bad_records_query_is_400(client, admin_headers, query, param):
    response = client.get(f"/admin/usage/records?{query}", headers=admin_headers)
    assert_error(response, 400, "invalid_request_error", param)


def test_records_of_unknown_user_is_404(client, admin_headers):
    response = client.get("/admin/usage/records?user_id=404", headers=admin_headers)
    assert_error(response, 404, "not_found_error", "user_id")


def test_a_real_completion_shows_up_in_usage_and_records(client, admin_headers):
    account = create_account(client, admin_headers)
    response = client.post("/v1/llm/complete", headers=account.headers,
                           json={"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200
    totals = usage(client, admin_headers, f"user_id={account.user_id}").get_json()["totals"]
    completion = response.get_json()
    assert totals["requests"] == 1 and totals["errors"] == 0
    assert totals["total_tokens"] == completion["usage"]["total_tokens"]
    assert totals["cost_usd"] == completion["cost_usd"]
    record = client.get("/admin/usage/records", headers=admin_headers).get_json()["data"][0]
    assert (record["key_id"], record["status"], record["http_status"]) == (account.key_id, "ok", 200)


def test_tokens_and_cost_come_only_from_counted_rows(app, client, admin_headers, users):
    add_records(app, {"day": date(2026, 5, 1), "user_id": users[0], "prompt_tokens": 3, "cost_nanousd": 4},
                {"day": date(2026, 5, 1), "user_id": users[0], "status": "released", "counted": False,
                 "prompt_tokens": 999, "cost_nanousd": 999})
    totals = usage(client, admin_headers, "from=2026-05-01&to=2026-05-01").get_json()["totals"]
    assert totals == {"requests": 1, "errors": 1, "prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3,
                      "cost_usd": 4e-09}
