"""`flask ...` commands; each calls a service, prints a readable result, exits 1 with one line on error."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from gateway.cli_admin import register_admin_commands
from gateway.services.reconcile import counter_mismatches
from gateway.services.settlement import reconcile_stale_reservations
from gateway.current import gateway_state

quotas_cli = AppGroup("quotas", help="Quota reservations: charge abandoned ones, check counters against the audit log.")


@quotas_cli.command("sweep")
@click.option("--older-than", type=int, default=None,
              help="Charge pending reservations not heartbeated for this many seconds (default RESERVATION_TTL_S).")
def sweep_command(older_than: int | None) -> None:
    """Charge the reservations of requests whose worker died or lost the database at settlement."""
    ttl = older_than if older_than is not None else gateway_state().settings.reservation_ttl_s
    reconciled = reconcile_stale_reservations(ttl)
    click.echo(f"charged {reconciled} abandoned reservation(s) not heartbeated for {ttl}s")


@quotas_cli.command("check")
@click.option("--user-id", type=int, default=None)
def check_command(user_id: int | None) -> None:
    """Verify that every counter equals the sum of its audit rows."""
    mismatches = counter_mismatches(user_id)
    if not mismatches:
        click.echo("counters match the audit log")
        return
    for item in mismatches:
        click.echo(f"MISMATCH user {item['user_id']} {item['period']} {item['period_start']}: "
                   f"counter {item['counter']} audit {item['audit']}", err=True)
    raise SystemExit(1)


def register_commands(app: Flask) -> None:
    """Attach every command group to the app."""
    app.cli.add_command(quotas_cli)
    register_admin_commands(app)
