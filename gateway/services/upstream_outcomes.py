"""How today's requests to each upstream went, from the audit log: the same answer from every worker.

GET /admin/upstreams (services/upstream_health.py) says what this process's router sees right now
(states, cooldowns); this says what all workers' requests came to, by the upstream that answered.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import case, func, select

from gateway.extensions import db
from gateway.models import UsageRecord
from gateway.models.types import utcnow
from gateway.services.views import iso
from gateway.state import GatewayState

REACHED_UPSTREAM = ("ok", "upstream_error", "client_disconnected")


def upstream_status(state: GatewayState, today: date | None = None) -> dict:
    """Each upstream known to the catalog or configured: configured?, models, today's outcomes."""
    today = today or utcnow().date()
    models: dict[str, int] = {}
    for entry in state.catalog.entries():
        models[entry.provider] = models.get(entry.provider, 0) + 1
    outcomes = {row.provider: row for row in db.session.execute(_outcomes_query(today))}
    db.session.rollback()
    providers = []
    for name in sorted(set(models) | set(state.providers.names())):
        row = outcomes.get(name)
        providers.append({
            "name": name,
            "configured": state.providers.available(name),
            "models": models.get(name, 0),
            "requests_today": int(row.requests) if row else 0,
            "upstream_errors_today": int(row.errors or 0) if row else 0,
            "last_upstream_error_at": iso(row.last_error) if row else None,
            "mean_upstream_latency_ms": int(round(row.latency)) if row and row.latency is not None else None,
        })
    return {"day": today.isoformat(), "providers": providers}


def _outcomes_query(today: date):
    """Per provider, today's rows that reached the upstream: count, upstream errors, last error, mean latency."""
    failed = UsageRecord.status == "upstream_error"
    return (select(UsageRecord.provider.label("provider"), func.count().label("requests"),
                   func.sum(case((failed, 1), else_=0)).label("errors"),
                   func.max(case((failed, UsageRecord.created_at), else_=None)).label("last_error"),
                   func.avg(UsageRecord.upstream_latency_ms).label("latency"))
            .where(UsageRecord.day_start == today, UsageRecord.status.in_(REACHED_UPSTREAM),
                   UsageRecord.provider.is_not(None))
            .group_by(UsageRecord.provider))
