"""Admin API limits: partial updates, null back to default, strict numbers, exact money."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from gateway.extensions import db
from gateway.models import User
from tests.test_admin_users import assert_error, new_user

DEFAULTS = {"daily_requests": 1000, "daily_tokens": 100000, "monthly_spend_cap_usd": 50.0, "rate_limit_max": 60,
            "max_concurrent_requests": 0}


@pytest.fixture
def user_id(client, admin_headers):
    return new_user(client, admin_headers).get_json()["id"]


def set_limits(client, headers, user_id, **changes):
    return client.post("/admin/limits", json={"user_id": user_id, **changes}, headers=headers)


def test_get_limits_of_new_user_are_defaults(client, admin_headers, user_id):
    response = client.get(f"/admin/limits/{user_id}", headers=admin_headers)
    assert response.status_code == 200
    assert response.get_json() == {"user_id": user_id, "limits": {**DEFAULTS, "overrides": []}}


def test_only_present_fields_change_and_null_resets(app, client, admin_headers, user_id):
    body = set_limits(client, admin_headers, user_id, daily_requests=5, monthly_spend_cap_usd="12.345678").get_json()
    assert body["limits"] == {**DEFAULTS, "daily_requests": 5, "monthly_spend_cap_usd": 12.345678,
                              "overrides": ["daily_requests", "monthly_spend_cap_usd"]}
    body = set_limits(client, admin_headers, user_id, rate_limit_max=7).get_json()
    assert body["limits"]["daily_requests"] == 5 and body["limits"]["rate_limit_max"] == 7
    body = set_limits(client, admin_headers, user_id, daily_requests=None, daily_tokens=0).get_json()
    assert body["limits"] == {**DEFAULTS, "daily_tokens": 0, "monthly_spend_cap_usd": 12.345678, "rate_limit_max": 7,
                              "overrides": ["daily_tokens", "monthly_spend_cap_usd", "rate_limit_max"]}
    assert client.get(f"/admin/limits/{user_id}", headers=admin_headers).get_json() == body
    with app.app_context():
        stored = db.session.execute(select(User.monthly_spend_cap_usd, User.daily_requests)).one()
    assert stored == (Decimal("12.345678"), None)


def test_money_as_json_number_is_exact(app, client, admin_headers, user_id):
    assert set_limits(client, admin_headers, user_id, monthly_spend_cap_usd=0.1).status_code == 200
    with app.app_context():
        assert db.session.execute(select(User.monthly_spend_cap_usd)).scalar_one() == Decimal("0.1")


def test_user_view_shows_overrides(client, admin_headers, user_id):
    set_limits(client, admin_headers, user_id, daily_tokens=123)
    limits = client.get(f"/admin/users/{user_id}", headers=admin_headers).get_json()["limits"]
    assert limits["daily_tokens"] == 123 and limits["overrides"] == ["daily_tokens"]


@pytest.mark.parametrize("field, value", [
    ("daily_requests", -1), ("daily_requests", "5"), ("daily_requests", 1.5), ("daily_requests", True),
    ("daily_requests", 2**31), ("daily_tokens", -5), ("daily_tokens", False), ("daily_tokens", [1]),
    ("rate_limit_max", 0), ("rate_limit_max", "lots"), ("max_concurrent_requests", -1),
    ("max_concurrent_requests", "4"), ("max_concurrent_requests", 2.5),
    ("monthly_spend_cap_usd", -0.01), ("monthly_spend_cap_usd", "abc"), ("monthly_spend_cap_usd", "NaN"),
    ("monthly_spend_cap_usd", "Infinity"), ("monthly_spend_cap_usd", True), ("monthly_spend_cap_usd", "0.0000001"),
    ("monthly_spend_cap_usd", 1e9), ("monthly_spend_cap_usd", {"usd": 1}), ("burst", 5),
])
def test_invalid_values_are_400_naming_the_field_and_change_nothing(client, admin_headers, user_id, field, value):
    response = set_limits(client, admin_headers, user_id, **{"rate_limit_max": 9, field: value})
    assert_error(response, 400, "invalid_request_error", field)
    assert client.get(f"/admin/limits/{user_id}", headers=admin_headers).get_json()["limits"]["overrides"] == []


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_json_nan_and_infinity_literals_are_400(client, admin_headers, user_id, literal):
    for field in ("daily_requests", "monthly_spend_cap_usd"):
        response = client.post("/admin/limits", data=f'{{"user_id": {user_id}, "{field}": {literal}}}',
                               content_type="application/json", headers=admin_headers)
        assert_error(response, 400, "invalid_request_error", field)


def test_missing_user_id_is_400(client, admin_headers):
    response = client.post("/admin/limits", json={"daily_requests": 5}, headers=admin_headers)
    assert_error(response, 400, "invalid_request_error", "user_id")


@pytest.mark.parametrize("method, path", [("post", None), ("get", "/admin/limits/42"), ("get", "/admin/limits/x")])
def test_unknown_user_is_404(client, admin_headers, method, path):
    if method == "post":
        response = set_limits(client, admin_headers, 42, daily_requests=5)
    else:
        response = client.get(path, headers=admin_headers)
    assert_error(response, 404, "not_found_error", "user_id")
