"""Response shapes of the admin report endpoints (usage per user, daily series, quotas, models, upstreams),
for the OpenAPI document only: the services build the dicts, these describe them."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from gateway.models.user import USER_STATUSES
from gateway.schemas.responses import ModelInfoSchema, UsageTotalsSchema, nullable, required

QUOTA_NAMES = ("daily_requests", "daily_tokens", "monthly_spend_usd", "concurrent_requests")


class UserUsageSchema(UsageTotalsSchema):
    user_id = required(fields.Integer)
    name = required(fields.String)
    email = required(fields.String)
    status = required(fields.String, validate=validate.OneOf(USER_STATUSES))


class UsageByUserSchema(Schema):
    """Totals per user, biggest spenders first."""

    start = required(fields.Date, data_key="from")
    end = required(fields.Date, data_key="to")
    data = required(fields.List, fields.Nested(UserUsageSchema))


class DayUsageSchema(UsageTotalsSchema):
    day = required(fields.Date)


class DailySeriesSchema(Schema):
    """One entry per UTC day from..to, zeros included."""

    start = required(fields.Date, data_key="from")
    end = required(fields.Date, data_key="to")
    user_id = nullable(fields.Integer)
    data = required(fields.List, fields.Nested(DayUsageSchema))


class QuotaUseSchema(Schema):
    """limit null = not limited; fraction = (used + reserved) / limit, 1 when the limit is 0."""

    limit = nullable(fields.Float)
    used = required(fields.Float)
    reserved = required(fields.Float)
    fraction = nullable(fields.Float)


class QuotaUsesSchema(Schema):
    daily_requests = required(fields.Nested, QuotaUseSchema)
    daily_tokens = required(fields.Nested, QuotaUseSchema)
    monthly_spend_usd = required(fields.Nested, QuotaUseSchema)
    concurrent_requests = required(fields.Nested, QuotaUseSchema)


class UserQuotasSchema(Schema):
    user_id = required(fields.Integer)
    name = required(fields.String)
    email = required(fields.String)
    status = required(fields.String, validate=validate.OneOf(USER_STATUSES))
    quotas = required(fields.Nested, QuotaUsesSchema)


class QuotaPageSchema(Schema):
    data = required(fields.List, fields.Nested(UserQuotasSchema))
    next_cursor = nullable(fields.String)


class NearestQuotaSchema(Schema):
    quota = required(fields.String, validate=validate.OneOf(QUOTA_NAMES))
    fraction = required(fields.Float)


class NearCapUserSchema(UserQuotasSchema):
    nearest = required(fields.Nested, NearestQuotaSchema)


class NearCapsSchema(Schema):
    threshold = required(fields.Float)
    data = required(fields.List, fields.Nested(NearCapUserSchema))


class AdminModelListSchema(Schema):
    """The whole catalog, available or not."""

    data = required(fields.List, fields.Nested(ModelInfoSchema))


class UpstreamSchema(Schema):
    name = required(fields.String)
    configured = required(fields.Boolean)
    models = required(fields.Integer)
    requests_today = required(fields.Integer)
    upstream_errors_today = required(fields.Integer)
    last_upstream_error_at = nullable(fields.DateTime)
    mean_upstream_latency_ms = nullable(fields.Integer)


class UpstreamOutcomesSchema(Schema):
    """Today's outcomes per upstream, from the audit log."""

    day = required(fields.Date)
    providers = required(fields.List, fields.Nested(UpstreamSchema))
