"""The admin console in real headless Chromium against a live gateway: sign-in, the overview's numbers and
charts against the ledger, a key's whole life, limits, the audit log's filters, stored strings as inert
text, and no Content-Security-Policy violation on any page. A screenshot of every page is kept in
CONSOLE_SCREENSHOT_DIR (default: <tmp>/console-screenshots)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import pytest
import requests
from selenium.webdriver.support.ui import Select
from sqlalchemy import func, select

from gateway.extensions import db
from gateway.models import UsageRecord
from tests.conftest import ADMIN_TOKEN, base_config, make_app
from tests.console_browser import Console, start_chromium, usd_text
from tests.fake_upstream import Behavior
from tests.test_admin_usage import add_records

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_KEY = "<script>alert(2)</script>"


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    """One Chromium for the module, with a fresh profile; each test gets a new gateway (a new origin)."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    browser = start_chromium(str(profile))
    yield browser
    browser.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def gateway(tmp_path, fake_upstream, live_server_factory):
    """A gateway on SQLite served over real HTTP (the report queries are tested on both databases elsewhere)."""
    fake_upstream.reset()
    app = make_app(base_config(f"sqlite:///{tmp_path / 'gateway.db'}", fake_upstream))
    yield live_server_factory(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def console(driver, gateway):
    console = Console(driver, gateway.url)
    yield console
    assert console.alert_text() is None
    assert console.policy_violations() == []


class Api:
    """The admin and /v1 APIs over HTTP, as an operator's script would call them."""

    def __init__(self, url: str) -> None:
        self.url = url

    def admin(self, method: str, path: str, **kwargs):
        response = requests.request(method, self.url + path, headers=ADMIN, timeout=10, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    def user_with_key(self, name: str, email: str) -> tuple[int, str]:
        user = self.admin("POST", "/admin/users", json={"name": name, "email": email})
        key = self.admin("POST", "/admin/keys", json={"user_id": user["id"], "name": "laptop"})
        return user["id"], key["api_key"]

    def complete(self, key: str, model: str = "mock-1", text: str = "hello") -> requests.Response:
        return requests.post(self.url + "/v1/llm/complete", headers={"Authorization": f"Bearer {key}"}, timeout=10,
                             json={"model": model, "max_tokens": 30, "messages": [{"role": "user", "content": text}]})


def seed(api: Api, fake_upstream) -> dict:
    """Two users' traffic today through /v1: successes on two models and one upstream failure."""
    ada, ada_key = api.user_with_key("Ada Lovelace", "ada@example.com")
    bob, bob_key = api.user_with_key("Bob Babbage", "bob@example.com")
    for number in range(3):
        assert api.complete(ada_key, text="tell me about engines " * (number + 1)).status_code == 200
    assert api.complete(bob_key, model="gpt-4o-mini").status_code == 200
    fake_upstream.enqueue(Behavior(status=500, error_type="server_error", error_message="upstream broke"))
    assert api.complete(bob_key, model="gpt-4o-mini", text="this one fails").status_code == 502
    return {"ada": ada, "ada_key": ada_key, "bob": bob, "bob_key": bob_key}


def test_a_wrong_token_is_refused_and_the_right_one_signs_in_and_out(console):
    console.sign_in("not-the-admin-token")
    console.wait(lambda d: console.find("#signin-error").is_displayed(), "the refusal")
    assert "admin token was refused" in console.text("#signin-error")
    assert console.driver.execute_script("return sessionStorage.length") == 0
    console.screenshot("signin-refused")

    console.sign_in()
    console.wait_page("overview")
    stored = console.driver.execute_script("return Object.entries(sessionStorage)")
    assert stored == [["dominion.adminToken", ADMIN_TOKEN]]
    assert ADMIN_TOKEN not in console.driver.current_url
    assert console.driver.execute_script("return document.cookie") == ""
    assert console.driver.get_cookies() == []

    console.find("#signout").click()
    console.wait(lambda d: console.find("#signin").is_displayed(), "the sign-in form")
    assert console.driver.execute_script("return sessionStorage.length") == 0
    console.driver.refresh()
    console.wait(lambda d: d.execute_script("return document.body.dataset.state") == "signin", "sign-in after reload")


def test_overview_shows_the_ledger_numbers(console, gateway, fake_upstream):
    api = Api(gateway.url)
    people = seed(api, fake_upstream)
    today = datetime.now(UTC).date()
    earlier = [today - timedelta(days=days) for days in (3, 11)]
    add_records(gateway.app, *({"day": day, "user_id": people["ada"], "model": "mock-1", "provider": "mock",
                                "prompt_tokens": 40, "completion_tokens": 20, "cost_nanousd": 123_456_789 * n}
                               for n, day in enumerate(earlier, start=1)))
    console.sign_in()
    console.wait_page("overview")
    console.screenshot("overview")

    month = api.admin("GET", "/admin/usage")
    with gateway.app.app_context():
        ledger = db.session.execute(select(func.sum(UsageRecord.cost_nanousd)).where(
            UsageRecord.counted.is_(True), UsageRecord.month_start == today.replace(day=1))).scalar_one()
    assert console.text("#kpi-spend-month .card-value") == usd_text(month["totals"]["cost_usd"]) \
        == usd_text(str(ledger / 10**9))
    today_totals = api.admin("GET", f"/admin/usage?from={today}&to={today}")["totals"]
    assert today_totals["requests"] >= 4 and today_totals["errors"] == 1
    assert console.text("#kpi-requests-today .card-value") == str(today_totals["requests"])
    assert console.text("#kpi-errors-today .card-value") == "1"

    window = [(today - timedelta(days=29 - n)).isoformat() for n in range(30)]
    days = api.admin("GET", f"/admin/usage?from={window[0]}&to={today}&group_by=day")["groups"]
    daily = console.chart("chart-daily")
    assert daily["labels"] == window
    drawn = {label: value for label, value in zip(daily["labels"], daily["datasets"][0], strict=True) if value}
    assert drawn == {group["key"]: group["cost_usd"] for group in days}
    assert len(drawn) == 3

    models = api.admin("GET", "/admin/usage?group_by=model")["groups"]
    assert console.chart("chart-models") == {"labels": [g["key"] for g in models],
                                             "datasets": [[g["cost_usd"] for g in models],
                                                          [g["requests"] for g in models]]}
    top = api.admin("GET", "/admin/usage/users?limit=10")["data"]
    assert console.column("top-users", 0) == [row["name"] for row in top] == ["Ada Lovelace", "Bob Babbage"]
    assert console.column("top-users", 4) == [usd_text(row["cost_usd"]) for row in top]


def test_a_key_is_created_shown_once_used_and_revoked(console, gateway):
    api = Api(gateway.url)
    console.sign_in()
    console.open("users")
    console.find("#create-user input[name=name]").send_keys("Grace Hopper")
    console.find("#create-user input[name=email]").send_keys("grace@example.com")
    console.find("#create-user button[type=submit]").click()
    console.wait_page("user")
    user_id = int(console.driver.current_url.rsplit("/", 1)[1])
    assert console.text(".page-header h1") == "Grace Hopper"

    console.find("#new-key-name").send_keys("ci runner")
    console.find("#create-key button[type=submit]").click()
    console.wait(lambda d: console.find_all("#new-key-value"), "the new key")
    plaintext = console.find("#new-key-value").get_attribute("value")
    assert plaintext.startswith("dom_") and "shown only this once" in console.text("#new-key")
    console.screenshot("user-new-key")
    assert api.complete(plaintext).status_code == 200

    console.driver.refresh()
    console.wait_page("user")
    assert console.find_all("#new-key") == [] and plaintext not in console.driver.page_source
    assert plaintext not in json.dumps(api.admin("GET", f"/admin/keys?user_id={user_id}"))
    revoke = console.find("[data-revoke]")
    revoke.click()
    assert revoke.text == "Confirm revoke"
    revoke.click()
    console.wait(lambda d: console.column("keys-table", 2) == ["revoked"], "the key to show as revoked")
    refused = api.complete(plaintext)
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"


def test_limits_are_edited_and_reset_and_a_user_suspended(console, gateway):
    api = Api(gateway.url)
    user_id, key = api.user_with_key("Linus", "linus@example.com")
    console.sign_in()
    console.open(f"users/{user_id}", "user")
    field = console.find("#limit-daily_requests")
    field.clear()
    field.send_keys("7")
    console.find("#limits-form button[type=submit]").click()
    console.wait(lambda d: "Limits saved." in console.text("#view"), "the save")
    console.wait_page("user")
    limits = api.admin("GET", f"/admin/limits/{user_id}")["limits"]
    assert limits["daily_requests"] == 7 and limits["overrides"] == ["daily_requests"]
    assert console.find("#limit-daily_requests").get_attribute("value") == "7"
    assert "0 of 7" in console.text("#user-quotas")
    console.screenshot("user-detail")

    console.find("#reset-daily_requests").click()
    console.wait(lambda d: "back to the default" in console.text("#view"), "the reset")
    assert api.admin("GET", f"/admin/limits/{user_id}")["limits"]["overrides"] == []

    console.find("#user-status-action").click()
    console.wait(lambda d: console.text(".page-header .badge") == "suspended", "the suspension")
    assert api.admin("GET", f"/admin/users/{user_id}")["status"] == "suspended"
    assert api.complete(key).status_code == 403
    console.find("#user-status-action").click()
    console.wait(lambda d: console.text(".page-header .badge") == "active", "the activation")
    assert api.complete(key).status_code == 200


def test_the_audit_log_filters_down_to_the_failed_request(console, gateway, fake_upstream):
    api = Api(gateway.url)
    people = seed(api, fake_upstream)
    failed = api.admin("GET", f"/admin/usage/records?user_id={people['bob']}&status=upstream_error")["data"]
    assert len(failed) == 1
    today = datetime.now(UTC).date().isoformat()
    console.sign_in()
    console.open("audit")
    assert len(console.find_all("#audit-table tbody tr")) == 5
    console.find("#audit-filter input[name=user_id]").send_keys(str(people["bob"]))
    Select(console.find("#audit-filter select[name=status]")).select_by_value("upstream_error")
    console.find("#audit-filter input[name=model]").send_keys("gpt-4o-mini")
    console.driver.execute_script(
        "for (const name of ['from', 'to']) document.querySelector(`#audit-filter input[name=${name}]`).value = "
        "arguments[0];", today)
    console.find("#audit-filter button[type=submit]").click()
    console.wait(lambda d: "status=upstream_error" in d.current_url, "the filtered address")
    console.wait_page("audit")
    assert console.column("audit-table", 1) == [failed[0]["request_id"]]
    assert console.column("audit-table", 4) == ["upstream_error"] and console.column("audit-table", 5) == ["502"]

    console.find(f"[data-request-id='{failed[0]['request_id']}']").click()
    shown = console.driver.execute_script(
        "return [...document.querySelectorAll('#price-snapshot dt')].map(dt => [dt.innerText, "
        "dt.nextElementSibling.innerText]);")
    snapshot = failed[0]["price_snapshot"]
    assert snapshot["model"] == "gpt-4o-mini" and snapshot["input"] == "0.15"
    assert shown == [[name, "null" if value is None else str(value)] for name, value in snapshot.items()]
    assert "upstream_error" in console.text("#record-fields")
    assert console.text("#prompt-record") == json.dumps(failed[0]["prompt_record"], indent=2, ensure_ascii=False)
    console.screenshot("audit")


def test_stored_strings_render_as_inert_text(console, gateway):
    api = Api(gateway.url)
    user_id, key = api.user_with_key(XSS_NAME, "xss@example.com")
    api.admin("POST", "/admin/keys", json={"user_id": user_id, "name": XSS_KEY})
    assert api.complete(key).status_code == 200
    console.sign_in()
    for route, page in (("overview", "overview"), ("users", "users"), (f"users/{user_id}", "user"),
                        (f"audit?user_id={user_id}", "audit")):
        console.open(route, page)
        assert console.alert_text() is None, route
        injected = console.driver.execute_script(
            "return document.querySelectorAll('img, #view script, #view [onerror]').length")
        assert injected == 0, route
    console.open(f"users/{user_id}", "user")
    assert console.text(".page-header h1") == XSS_NAME
    assert XSS_KEY in console.column("keys-table", 0)
    console.open("users")
    assert XSS_NAME in console.column("users-table", 0)
    console.screenshot("users")


def test_models_and_upstreams_pages(console, gateway, fake_upstream):
    api = Api(gateway.url)
    seed(api, fake_upstream)
    console.sign_in()
    console.open("models")
    models = api.admin("GET", "/admin/models")["data"]
    assert console.column("models-table", 0) == [model["id"] for model in models]
    mock = console.column("models-table", 0).index("mock-1")
    assert console.column("models-table", 6)[mock] == "$1.00" and console.column("models-table", 8)[mock] == "$2.00"
    console.screenshot("models")

    console.open("upstreams")
    live = api.admin("GET", "/admin/upstreams")["data"]
    assert console.column("upstreams-table", 0) == [u["name"] for u in live]
    routed = [(u["name"], d["model"]) for u in live for d in u["deployments"]]
    assert list(zip(console.column("deployments-table", 0), console.column("deployments-table", 1))) == routed
    providers = api.admin("GET", "/admin/usage/upstreams")["providers"]
    assert console.column("outcomes-table", 0) == [p["name"] for p in providers]
    openai = [p["name"] for p in providers].index("openai")
    assert console.column("outcomes-table", 3)[openai] == "2" and console.column("outcomes-table", 4)[openai] == "1"
    console.screenshot("upstreams")


def test_an_admin_token_that_stops_working_signs_the_console_out(console, gateway):
    console.sign_in()
    console.wait_page("overview")
    console.driver.execute_script("sessionStorage.setItem('dominion.adminToken', 'rotated-away')")
    console.driver.get(f"{gateway.url}/console#/users")
    console.wait(lambda d: d.execute_script("return document.body.dataset.state") == "signin", "the sign-out")
    assert "no longer accepted" in console.text("#signin-error")
    assert console.driver.execute_script("return sessionStorage.length") == 0

