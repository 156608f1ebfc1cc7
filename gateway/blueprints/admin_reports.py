"""Admin reports the console's pages read: usage per user and per day, quota use, models, upstreams.

Same door as the admin API (Bearer ADMIN_TOKEN, failures throttled), same /admin prefix; kept apart from
admin.py so each stays one screen of thin routes.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from gateway.blueprints.admin import path_id
from gateway.blueprints.admin_guard import require_admin
from gateway.blueprints.body import load_query
from gateway.schemas.reports import (DailySeriesQuerySchema, NearCapsQuerySchema, QuotaListQuerySchema,
                                     UsageByUserQuerySchema)
from gateway.services import quota_board, upstream_outcomes, usage_reports
from gateway.services.model_listing import list_models
from gateway.current import gateway_state

admin_reports_bp = Blueprint("admin_reports", __name__, url_prefix="/admin")
admin_reports_bp.before_request(require_admin)


@admin_reports_bp.get("/usage/users")
def usage_by_user():
    """Usage totals per user for a period, biggest spenders first."""
    query = load_query(UsageByUserQuerySchema())
    return jsonify(usage_reports.usage_by_user(query["start"], query["end"], query["limit"]))


@admin_reports_bp.get("/usage/daily")
def usage_daily():
    """Usage per UTC day, one entry per day (zeros included), for everyone or one user."""
    query = load_query(DailySeriesQuerySchema())
    return jsonify(usage_reports.daily_series(query["user_id"], query["start"], query["end"]))


@admin_reports_bp.get("/quotas")
def list_quotas():
    """Users with each quota's use against its limit, paginated, searchable."""
    query = load_query(QuotaListQuerySchema())
    return jsonify(quota_board.list_quotas(gateway_state().settings, **query))


@admin_reports_bp.get("/quotas/near-caps")
def near_caps():
    """Active users with a quota at or past a fraction of its limit, fullest first."""
    query = load_query(NearCapsQuerySchema())
    return jsonify(quota_board.near_caps(gateway_state().settings, query["threshold"], query["limit"]))


@admin_reports_bp.get("/quotas/<user_id>")
def show_quotas(user_id: str):
    """One user's quota use."""
    return jsonify(quota_board.user_quotas(path_id(user_id, "user"), gateway_state().settings))


@admin_reports_bp.get("/models")
def models():
    """The whole model catalog with prices and whether its provider is configured."""
    return jsonify(data=list_models(gateway_state()))


@admin_reports_bp.get("/usage/upstreams")
def upstream_outcomes_today():
    """Today's requests per upstream that answered, from the audit log (every worker's)."""
    return jsonify(upstream_outcomes.upstream_status(gateway_state()))
