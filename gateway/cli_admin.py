"""`flask users|keys|limits|usage`: the admin API's operations from a shell, same schemas and services."""

from __future__ import annotations

import functools
from decimal import Decimal

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from marshmallow import Schema, ValidationError

from gateway.errors import GatewayError, validation_message
from gateway.models.user import USER_STATUSES
from gateway.schemas.admin import (GROUP_BY, KeyCreateSchema, LimitsSchema, UsageQuerySchema, UserCreateSchema,
                                   UserListQuerySchema)
from gateway.services import keys, usage_reports, users
from gateway.current import gateway_state

users_cli = AppGroup("users", help="Create, list, show, suspend and activate users.")
keys_cli = AppGroup("keys", help="Issue, list and revoke gateway keys.")
limits_cli = AppGroup("limits", help="Show and change a user's limits.")
RESET_WORDS = ("default", "none", "null")
KEY_COLUMNS = ("id", "user_id", "name", "prefix", "status", "created_at", "last_used_at", "expires_at",
               "revoked_at")
TOTAL_COLUMNS = ("requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd")


def cli_errors(command):
    """Turn a GatewayError or ValidationError into one line on stderr and exit code 1."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except GatewayError as error:
            fail(error.message)
        except ValidationError as error:
            fail(validation_message(error.messages)[0])
    return wrapper


def fail(message: str) -> None:
    """Print one error line and exit 1."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(1)


def load(schema: Schema, **values) -> dict:
    """Validate the given (non-None) options with the admin API's schema."""
    return schema.load({name: value for name, value in values.items() if value is not None})


def cell(value) -> str:
    """A value as table text: '-' for none, plain decimals for money."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(Decimal(repr(value)).normalize(), "f")
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value) or "-"
    return str(value)


def table(columns, rows: list[dict]) -> None:
    """Print rows as an aligned table with a header line."""
    texts = [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column), *(len(line[i]) for line in texts)]) for i, column in enumerate(columns)]
    for line in [list(columns), *texts]:
        click.echo("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip())


def fields_table(view: dict, names) -> None:
    """Print one record as aligned 'name  value' lines."""
    width = max(len(name) for name in names)
    for name in names:
        click.echo(f"{name.ljust(width)}  {cell(view.get(name))}")


def print_limits(limits: dict) -> None:
    """Each limit with its value and whether it is an override or the default."""
    rows = [{"limit": name, "value": value, "source": "override" if name in limits["overrides"] else "default"}
            for name, value in limits.items() if name != "overrides"]
    table(("limit", "value", "source"), rows)


def print_user(view: dict) -> None:
    """A user, its limits and (when shown) its keys."""
    fields_table(view, ("id", "name", "email", "status", "created_at"))
    click.echo()
    print_limits(view["limits"])
    if "keys" in view:
        click.echo()
        if view["keys"]:
            table(KEY_COLUMNS, view["keys"])
        else:
            click.echo("no keys")


def print_page(body: dict, columns) -> None:
    """A page of rows and how to get the next one."""
    table(columns, body["data"])
    if body["next_cursor"]:
        click.echo(f"\nmore: repeat with --cursor {body['next_cursor']}")


@users_cli.command("create")
@click.option("--name", required=True)
@click.option("--email", required=True)
@cli_errors
def users_create(name: str, email: str) -> None:
    """Create a user."""
    data = load(UserCreateSchema(), name=name, email=email)
    print_user(users.create_user(data["name"], data["email"], gateway_state().settings))


@users_cli.command("list")
@click.option("--status", type=click.Choice(USER_STATUSES))
@click.option("--limit", type=int)
@click.option("--cursor")
@cli_errors
def users_list(status: str | None, limit: int | None, cursor: str | None) -> None:
    """List users by id, a page at a time."""
    query = load(UserListQuerySchema(), status=status, limit=limit, cursor=cursor)
    body = users.list_users(gateway_state().settings, **query)
    rows = [{**user, **user["limits"]} for user in body["data"]]
    print_page({**body, "data": rows}, ("id", "name", "email", "status", "daily_requests", "daily_tokens",
                                        "monthly_spend_cap_usd", "rate_limit_max", "max_concurrent_requests",
                                        "created_at"))


@users_cli.command("show")
@click.argument("user_id", type=int)
@cli_errors
def users_show(user_id: int) -> None:
    """Show a user, its limits and its keys."""
    print_user(users.get_user(user_id, gateway_state().settings))


@users_cli.command("suspend")
@click.argument("user_id", type=int)
@cli_errors
def users_suspend(user_id: int) -> None:
    """Suspend a user: its keys are refused from the next request on."""
    print_user(users.set_user_status(user_id, "suspended", gateway_state().settings))


@users_cli.command("activate")
@click.argument("user_id", type=int)
@cli_errors
def users_activate(user_id: int) -> None:
    """Reactivate a suspended user."""
    print_user(users.set_user_status(user_id, "active", gateway_state().settings))


@keys_cli.command("create")
@click.option("--user-id", type=int, required=True)
@click.option("--name", required=True)
@click.option("--expires-at", help="ISO 8601 time in the future; without an offset it is UTC.")
@cli_errors
def keys_create(user_id: int, name: str, expires_at: str | None) -> None:
    """Issue a key and print it once."""
    data = load(KeyCreateSchema(), user_id=user_id, name=name, expires_at=expires_at)
    body = keys.create_key(data["user_id"], data["name"], data.get("expires_at"))
    fields_table(body, ("id", "user_id", "name", "prefix", "created_at", "expires_at"))
    click.echo(f"\napi_key  {body['api_key']}\n\n{body['message']}")


@keys_cli.command("list")
@click.option("--user-id", type=int)
@cli_errors
def keys_list(user_id: int | None) -> None:
    """List keys, all or one user's (never their secrets)."""
    table(KEY_COLUMNS, keys.list_keys(user_id))


@keys_cli.command("revoke")
@click.argument("key_id", type=int)
@cli_errors
def keys_revoke(key_id: int) -> None:
    """Revoke a key (revoking twice keeps the first revoked_at)."""
    fields_table(keys.revoke_key(key_id, gateway_state().key_cache), KEY_COLUMNS)


def limit_value(raw: str, integer: bool = True):
    """CLI text -> what the JSON API would get: 'default' is null, integers stay integers."""
    if raw.strip().lower() in RESET_WORDS:
        return None
    if not integer:
        return raw
    try:
        return int(raw)
    except ValueError:
        return raw


@limits_cli.command("set")
@click.argument("user_id", type=int)
@click.option("--daily-requests", help="Integer >= 0, or 'default'.")
@click.option("--daily-tokens", help="Integer >= 0, or 'default'.")
@click.option("--monthly-spend-cap-usd", help="USD, at most 6 decimals, or 'default'.")
@click.option("--rate-limit-max", help="Requests per window, >= 1, or 'default'.")
@click.option("--max-concurrent-requests", help="Requests in flight at once, >= 0 (0 = unlimited), or 'default'.")
@cli_errors
def limits_set(user_id: int, daily_requests, daily_tokens, monthly_spend_cap_usd, rate_limit_max,
               max_concurrent_requests) -> None:
    """Change only the limits given; 'default' puts one back to the configured default."""
    given = {"daily_requests": daily_requests, "daily_tokens": daily_tokens,
             "monthly_spend_cap_usd": monthly_spend_cap_usd, "rate_limit_max": rate_limit_max,
             "max_concurrent_requests": max_concurrent_requests}
    changes = {name: limit_value(raw, integer=name != "monthly_spend_cap_usd")
               for name, raw in given.items() if raw is not None}
    if not changes:
        fail("nothing to change: pass at least one of --daily-requests, --daily-tokens, "
             "--monthly-spend-cap-usd, --rate-limit-max, --max-concurrent-requests")
    data = LimitsSchema().load({"user_id": user_id, **changes})
    body = users.update_limits(data.pop("user_id"), data, gateway_state().settings)
    click.echo(f"limits of user {body['user_id']}")
    print_limits(body["limits"])


@limits_cli.command("show")
@click.argument("user_id", type=int)
@cli_errors
def limits_show(user_id: int) -> None:
    """Show a user's effective limits."""
    body = users.user_limits(user_id, gateway_state().settings)
    click.echo(f"limits of user {body['user_id']}")
    print_limits(body["limits"])


@click.command("usage")
@click.option("--user-id", type=int)
@click.option("--from", "start", help="First UTC day, YYYY-MM-DD (default: the 1st of the month).")
@click.option("--to", "end", help="Last UTC day, YYYY-MM-DD, inclusive (default: today).")
@click.option("--group-by", type=click.Choice(GROUP_BY))
@with_appcontext
@cli_errors
def usage_command(user_id: int | None, start: str | None, end: str | None, group_by: str | None) -> None:
    """Usage totals for a period (same numbers as GET /admin/usage)."""
    query = load(UsageQuerySchema(), user_id=user_id, group_by=group_by, **{"from": start, "to": end})
    body = usage_reports.usage_report(query["user_id"], query["start"], query["end"], query["group_by"])
    who = f"user {body['user_id']}" if body["user_id"] is not None else "all users"
    click.echo(f"usage of {who} from {body['from']} to {body['to']} (UTC, inclusive)\n")
    table(TOTAL_COLUMNS, [body["totals"]])
    if group_by:
        click.echo()
        table((group_by, *TOTAL_COLUMNS), [{group_by: group["key"], **group} for group in body["groups"]])


def register_admin_commands(app: Flask) -> None:
    """Attach the users, keys, limits and usage commands to the app's CLI."""
    for command in (users_cli, keys_cli, limits_cli, usage_command):
        app.cli.add_command(command)
