"""`flask users|keys|limits|usage`: same services and numbers as the admin API, readable tables, one-line errors."""

from datetime import date

import pytest
from sqlalchemy import select

from gateway.extensions import db
from gateway.models import ApiKey
from tests.test_admin_usage import add_records


def run(runner, *args):
    return runner.invoke(args=list(args))


def ok(runner, *args) -> str:
    result = run(runner, *args)
    assert result.exit_code == 0, (result.output, result.stderr)
    return result.stdout


def fails(runner, *args) -> str:
    result = run(runner, *args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def user(runner):
    ok(runner, "users", "create", "--name", "Ada Lovelace", "--email", "Ada@Example.com")
    return "1"


def test_users_create_prints_user_and_limits(runner):
    out = ok(runner, "users", "create", "--name", "Ada Lovelace", "--email", "Ada@Example.com")
    assert "email       ada@example.com" in out and "status      active" in out
    assert "daily_requests           1000    default" in out
    assert "monthly_spend_cap_usd    50      default" in out


def test_users_create_errors(runner, user):
    assert "already exists" in fails(runner, "users", "create", "--name", "Ada", "--email", "ADA@example.com")
    assert "email: Not a valid email address." in fails(runner, "users", "create", "--name", "A", "--email", "nope")
    assert "name:" in fails(runner, "users", "create", "--name", " ", "--email", "b@example.com")


def test_users_list_is_an_aligned_table_with_paging(runner, user):
    ok(runner, "users", "create", "--name", "Bob", "--email", "bob@example.com")
    lines = ok(runner, "users", "list").splitlines()
    assert lines[0].split() == ["id", "name", "email", "status", "daily_requests", "daily_tokens",
                                "monthly_spend_cap_usd", "rate_limit_max", "max_concurrent_requests", "created_at"]
    assert lines[1].index("ada@example.com") == lines[0].index("email") == lines[2].index("bob@example.com")
    paged = ok(runner, "users", "list", "--limit", "1")
    assert "bob@example.com" not in paged and "more: repeat with --cursor " in paged
    cursor = paged.rsplit(" ", 1)[1].strip()
    assert "bob@example.com" in ok(runner, "users", "list", "--limit", "1", "--cursor", cursor)
    assert "limit:" in fails(runner, "users", "list", "--limit", "0")
    assert "cursor:" in fails(runner, "users", "list", "--cursor", "junk")


def test_users_suspend_activate_show(runner, user):
    assert "status      suspended" in ok(runner, "users", "suspend", user)
    assert "status      suspended" in ok(runner, "users", "suspend", user)
    assert "status      active" in ok(runner, "users", "activate", user)
    assert "no keys" in ok(runner, "users", "show", user)
    assert "No user with id 9" in fails(runner, "users", "show", "9")
    assert "No user with id 9" in fails(runner, "users", "suspend", "9")


def test_keys_create_prints_the_key_once_and_stores_its_hash(app, runner, user):
    out = ok(runner, "keys", "create", "--user-id", user, "--name", "laptop", "--expires-at", "2099-01-01T00:00")
    api_key = next(line.split()[1] for line in out.splitlines() if line.startswith("api_key"))
    assert api_key.startswith("dom_") and "Save this key now! It will not be shown again." in out
    assert "expires_at  2099-01-01T00:00:00Z" in out
    with app.app_context():
        stored = db.session.execute(select(ApiKey.key_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and api_key not in stored
    listing = ok(runner, "keys", "list") + ok(runner, "users", "show", user)
    assert api_key not in listing and api_key[:16] in listing and "laptop" in listing


def test_keys_create_errors(runner, user):
    assert "expires_at: must be in the future" in fails(runner, "keys", "create", "--user-id", user, "--name", "k",
                                                         "--expires-at", "2001-01-01")
    assert "expires_at:" in fails(runner, "keys", "create", "--user-id", user, "--name", "k", "--expires-at", "soon")
    assert "No user with id 5" in fails(runner, "keys", "create", "--user-id", "5", "--name", "k")


def test_keys_list_filter_and_revoke(runner, user):
    ok(runner, "keys", "create", "--user-id", user, "--name", "laptop")
    lines = ok(runner, "keys", "list", "--user-id", user).splitlines()
    assert lines[0].split()[:5] == ["id", "user_id", "name", "prefix", "status"] and "active" in lines[1]
    first = ok(runner, "keys", "revoke", "1")
    assert "status        revoked" in first
    assert ok(runner, "keys", "revoke", "1") == first
    assert "revoked" in ok(runner, "keys", "list").splitlines()[1]
    assert "No key with id 3" in fails(runner, "keys", "revoke", "3")
    assert "No user with id 8" in fails(runner, "keys", "list", "--user-id", "8")


def test_limits_set_and_show(runner, user):
    out = ok(runner, "limits", "set", user, "--daily-requests", "5", "--monthly-spend-cap-usd", "12.50")
    assert "daily_requests           5       override" in out and "monthly_spend_cap_usd    12.5    override" in out
    out = ok(runner, "limits", "set", user, "--daily-requests", "default", "--rate-limit-max", "3")
    assert "daily_requests           1000    default" in out and "rate_limit_max           3       override" in out
    assert ok(runner, "limits", "show", user) == out
    out = ok(runner, "limits", "set", user, "--max-concurrent-requests", "4")
    assert "max_concurrent_requests  4       override" in out
    assert "max_concurrent_requests  0       default" in ok(runner, "limits", "set", user,
                                                            "--max-concurrent-requests", "default")


@pytest.mark.parametrize("args, message", [
    (("--daily-requests", "-1"), "daily_requests: Must be greater than or equal to 0"),
    (("--daily-tokens", "lots"), "daily_tokens: Must be an integer."),
    (("--monthly-spend-cap-usd", "NaN"), "monthly_spend_cap_usd: Must be a finite number."),
    (("--monthly-spend-cap-usd", "0.0000001"), "monthly_spend_cap_usd: Must have at most 6 decimal places."),
    (("--rate-limit-max", "0"), "rate_limit_max: Must be greater than or equal to 1"),
    (("--max-concurrent-requests", "-1"), "max_concurrent_requests: Must be greater than or equal to 0"),
    ((), "nothing to change"),
])
def test_limits_set_errors(runner, user, args, message):
    assert message in fails(runner, "limits", "set", user, *args)


def test_limits_show_unknown_user(runner):
    assert "No user with id 4" in fails(runner, "limits", "show", "4")


def test_usage_prints_the_same_numbers_as_the_api(app, runner, client, admin_headers, user):
    add_records(app, {"day": date(2026, 3, 1), "user_id": 1, "prompt_tokens": 100, "completion_tokens": 50,
                      "cost_nanousd": 1_500_000_001},
                {"day": date(2026, 3, 2), "user_id": 1, "model": "claude-haiku", "status": "upstream_error",
                 "counted": False})
    out = ok(runner, "usage", "--user-id", user, "--from", "2026-03-01", "--to", "2026-03-31", "--group-by", "day")
    lines = out.splitlines()
    assert lines[0] == "usage of user 1 from 2026-03-01 to 2026-03-31 (UTC, inclusive)"
    assert lines[3].split() == ["1", "1", "100", "50", "150", "1.500000001"]
    assert [line.split()[0] for line in lines[6:]] == ["2026-03-01", "2026-03-02"]
    api = client.get("/admin/usage?user_id=1&from=2026-03-01&to=2026-03-31", headers=admin_headers).get_json()
    assert api["totals"] == {"requests": 1, "errors": 1, "prompt_tokens": 100, "completion_tokens": 50,
                             "total_tokens": 150, "cost_usd": 1.500000001}
    by_model = ok(runner, "usage", "--from", "2026-03-01", "--to", "2026-03-31", "--group-by", "model")
    assert "usage of all users" in by_model and "claude-haiku" in by_model


@pytest.mark.parametrize("args, message", [
    (("--from", "2026-03-05", "--to", "2026-03-01"), "from: 2026-03-05 is after to (2026-03-01)"),
    (("--from", "March"), "from: Not a valid date."),
    (("--user-id", "77"), "No user with id 77"),
])
def test_usage_errors(runner, user, args, message):
    assert message in fails(runner, "usage", *args)
