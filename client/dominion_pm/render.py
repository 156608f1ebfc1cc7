"""How results read in a terminal: the quota and model tables, money, reset times, the usage line."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from rich.table import Table

QUOTAS = (("daily_requests", "daily requests"), ("daily_tokens", "daily tokens"),
          ("monthly_spend_usd", "monthly spend (USD)"))


def usd(value: float | int | None) -> str:
    """Dollars as the gateway reported them, never rounded away: 50.0 -> $50.00, 2.6e-06 -> $0.0000026."""
    if value is None:
        return "-"
    text = format(Decimal(str(value)), "f")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def count(value: int | None) -> str:
    """A whole number with thousands separators."""
    return "-" if value is None else f"{value:,}"


def when(iso: str | None, now: datetime | None = None) -> str:
    """An ISO time as 'YYYY-MM-DD HH:MM UTC (in 5h 12m)'."""
    if not iso:
        return "-"
    try:
        moment = datetime.fromisoformat(iso).astimezone(timezone.utc)
    except ValueError:
        return iso
    minutes = max(0, int((moment - (now or datetime.now(timezone.utc))).total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    wait = f"{days}d {hours}h" if days else f"{hours}h {minutes}m" if hours else f"{minutes}m"
    return f"{moment:%Y-%m-%d %H:%M} UTC (in {wait})"


def quota_table(quota: dict) -> Table:
    """One row per quota: limit, used, reserved, remaining, resets at."""
    table = Table(title="Quotas", title_justify="left")
    table.add_column("quota")
    for name in ("limit", "used", "reserved", "remaining"):
        table.add_column(name, justify="right")
    table.add_column("resets at")
    for key, label in QUOTAS:
        entry = quota.get(key)
        if not isinstance(entry, dict):
            continue
        show = usd if key == "monthly_spend_usd" else count
        table.add_row(label, *(show(entry.get(n)) for n in ("limit", "used", "reserved", "remaining")),
                      when(entry.get("resets_at")))
    return table


def models_table(models: list[dict]) -> Table:
    """One row per model: provider, context, max output and USD per 1M tokens in, cached in, out."""
    table = Table(title="Models (USD per 1M tokens)", title_justify="left")
    table.add_column("model", no_wrap=True)
    table.add_column("provider")
    for name in ("context", "max output", "input", "cached input", "output"):
        table.add_column(name, justify="right")
    for model in models:
        pricing = model.get("pricing") or {}
        name = model["id"] if model.get("available", True) else f"{model['id']} (unavailable)"
        table.add_row(name, model.get("provider", "-"), count(model.get("context_window")),
                      count(model.get("max_output_tokens")), usd(pricing.get("input_per_1m")),
                      usd(pricing.get("cached_input_per_1m")), usd(pricing.get("output_per_1m")))
    return table


def usage_line(model: str | None, usage: dict, cost_usd: float | None, latency_ms: int | None) -> str:
    """'gpt-4o-mini · 9 in + 2 out tokens · $0.0000026 · 380 ms', for after an answer."""
    parts = [model or "?",
             f"{usage.get('prompt_tokens', 0)} in + {usage.get('completion_tokens', 0)} out tokens",
             usd(cost_usd)]
    if latency_ms is not None:
        parts.append(f"{latency_ms} ms")
    return " · ".join(parts)
