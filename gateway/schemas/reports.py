"""Query-string schemas of the admin report endpoints the console reads (usage per user, daily series, quotas)."""

from __future__ import annotations

from marshmallow import fields, validate

from gateway.models.types import MAX_ID
from gateway.models.user import USER_STATUSES
from gateway.schemas.admin import MAX_PAGE, PageQuerySchema, StrictSchema
from gateway.schemas.fields import check_text

DEFAULT_TOP = 10
DEFAULT_NEAR_CAPS = 20
DEFAULT_THRESHOLD = 0.8


def _storable(value: str) -> None:
    """No NUL or lone surrogates: PostgreSQL would refuse the comparison with a 500."""
    check_text(value, "search")


class UsageByUserQuerySchema(StrictSchema):
    """GET /admin/usage/users: inclusive UTC dates (default: this month so far), top `limit` spenders."""

    start = fields.Date(data_key="from", load_default=None)
    end = fields.Date(data_key="to", load_default=None)
    limit = fields.Integer(load_default=DEFAULT_TOP, validate=validate.Range(min=1, max=MAX_PAGE))


class DailySeriesQuerySchema(StrictSchema):
    """GET /admin/usage/daily: inclusive UTC dates (default: the 30 days ending today), one user or everyone."""

    user_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID))
    start = fields.Date(data_key="from", load_default=None)
    end = fields.Date(data_key="to", load_default=None)


class QuotaListQuerySchema(PageQuerySchema):
    """GET /admin/quotas: users by id, optionally by status and a name/email search."""

    search = fields.String(load_default=None, validate=[validate.Length(min=1, max=200),
                                                         _storable])
    status = fields.String(load_default=None, validate=validate.OneOf(USER_STATUSES))


class NearCapsQuerySchema(StrictSchema):
    """GET /admin/quotas/near-caps: threshold is a fraction of the limit (0.8 = 80 %)."""

    threshold = fields.Float(load_default=DEFAULT_THRESHOLD,
                             validate=validate.Range(min=0, max=1, min_inclusive=False))
    limit = fields.Integer(load_default=DEFAULT_NEAR_CAPS, validate=validate.Range(min=1, max=MAX_PAGE))
