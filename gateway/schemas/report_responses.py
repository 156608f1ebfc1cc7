"""Response shapes of the admin report endpoints (usage per user, daily series, quotas, models, upstreams),
for the OpenAPI document only: the services build the dicts, these describe them."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from gateway.models.user import USER_STATUSES
from gateway.schemas.responses import ModelInfoSchema, UsageTotalsSchema, _nullable, _required

QUOTA_NAMES = ("daily_requests", "daily_tokens", "monthly_spend_usd", "concurrent_requests")


class UserUsageSchema(UsageTotalsSchema):
    user_id = _required(fields.Integer)
    name = _required(fields.String)
    email = _required(fields.String)
    status = _required(fields.String, validate=validate.OneOf(USER_STATUSES))


class UsageByUserSchema(Schema):
    """Totals per user, biggest spenders first."""

    start = _required(fields.Date, data_key="from")
    end = _required(fields.Date, data_key="to")
    data = _required(fields.List, fields.Nested(UserUsageSchema))


class DayUsageSchema(UsageTotalsSchema):
    day = _required(fields.Date)


class DailySeriesSchema(Schema):
    """One entry per UTC day from..to, zeros included."""

    start = _required(fields.Date, data_key="from")
    end = _required(fields.Date, data_key="to")
    user_id = _nullable(fields.Integer)
    data = _required(fields.List, fields.Nested(DayUsageSchema))


class QuotaUseSchema(Schema):
    """limit null = not limited; fraction = (used + reserved) / limit, 1 when the limit is 0."""

    limit = _nullable(fields.Float)
    used = _required(fields.Float)
    reserved = _required(fields.Float)
    fraction = _nullable(fields.Float)


class QuotaUsesSchema(Schema):
    daily_requests = _required(fields.Nested, QuotaUseSchema)
    daily_tokens = _required(fields.Nested, QuotaUseSchema)
    monthly_spend_usd = _required(fields.Nested, QuotaUseSchema)
    concurrent_requests = _required(fields.Nested, QuotaUseSchema)


class UserQuotasSchema(Schema):
    user_id = _required(fields.Integer)
    name = _required(fields.String)
    email = _required(fields.String)
    status = _required(fields.String, validate=validate.OneOf(USER_STATUSES))
    quotas = _required(fields.Nested, QuotaUsesSchema)


class QuotaPageSchema(Schema):
    data = _required(fields.List, fields.Nested(UserQuotasSchema))
    next_cursor = _nullable(fields.String)


class NearestQuotaSchema(Schema):
    quota = _required(fields.String, validate=validate.OneOf(QUOTA_NAMES))
    fraction = _required(fields.Float)


class NearCapUserSchema(UserQuotasSchema):
    nearest = _required(fields.Nested, NearestQuotaSchema)


class NearCapsSchema(Schema):
    threshold = _required(fields.Float)
    data = _required(fields.List, fields.Nested(NearCapUserSchema))


class AdminModelListSchema(Schema):
    """The whole catalog, available or not."""

    data = _required(fields.List, fields.Nested(ModelInfoSchema))


class UpstreamSchema(Schema):
    name = _required(fields.String)
    configured = _required(fields.Boolean)
    models = _required(fields.Integer)
    requests_today = _required(fields.Integer)
    upstream_errors_today = _required(fields.Integer)
    last_upstream_error_at = _nullable(fields.DateTime)
    mean_upstream_latency_ms = _nullable(fields.Integer)


class UpstreamStatusSchema(Schema):
    """Configured providers and today's outcomes; routing_configured is false until routing lands."""

    day = _required(fields.Date)
    routing_configured = _required(fields.Boolean)
    providers = _required(fields.List, fields.Nested(UpstreamSchema))
