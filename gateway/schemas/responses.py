"""Response shapes, for the OpenAPI document only: the services build the dicts, these describe them.

Shape only (no dumping, no database). INCLUDE marks objects that may grow fields (additionalProperties);
error details like limit_scope or quota ride along in the envelope that way.
"""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

from gateway.models.usage_record import RECORD_STATUSES
from gateway.models.user import USER_STATUSES
from gateway.schemas.admin import GROUP_BY

KEY_STATUSES = ("active", "revoked", "expired")


def _nullable(field_class, **kwargs):
    return field_class(required=True, allow_none=True, **kwargs)


def _required(field_class, *args, **kwargs):
    return field_class(*args, required=True, **kwargs)


class OpenSchema(Schema):
    """An object that may carry more fields than listed."""

    class Meta:
        unknown = INCLUDE


class ErrorDetailSchema(OpenSchema):
    """What went wrong; extra fields (limit_scope, quota, upstream_status, ...) depend on the error."""

    type = _required(fields.String)
    message = _required(fields.String)
    code = _nullable(fields.String)
    param = _nullable(fields.String)
    request_id = _nullable(fields.String)


class ErrorSchema(Schema):
    """The one error envelope, shaped like OpenAI's."""

    error = _required(fields.Nested, ErrorDetailSchema)


class AnthropicErrorDetailSchema(OpenSchema):
    """Anthropic's error types; the gateway's own type, code and details may ride along."""

    type = _required(fields.String)
    message = _required(fields.String)


class AnthropicErrorSchema(Schema):
    """Anthropic's envelope, on /v1/messages."""

    type = _required(fields.String, validate=validate.OneOf(("error",)))
    error = _required(fields.Nested, AnthropicErrorDetailSchema)
    request_id = _nullable(fields.String)


class HealthSchema(Schema):
    status = _required(fields.String, validate=validate.OneOf(("ok",)))


class ReadinessCheckSchema(OpenSchema):
    status = _required(fields.String, validate=validate.OneOf(("ok", "failed", "degraded")))


class ReadinessChecksSchema(Schema):
    database = _required(fields.Nested, ReadinessCheckSchema)
    limiter_storage = _required(fields.Nested, ReadinessCheckSchema)


class ReadinessSchema(Schema):
    status = _required(fields.String, validate=validate.OneOf(("ready", "unavailable")))
    checks = _required(fields.Nested, ReadinessChecksSchema)


class NativeUsageSchema(Schema):
    prompt_tokens = _required(fields.Integer)
    completion_tokens = _required(fields.Integer)
    total_tokens = _required(fields.Integer)
    cached_tokens = fields.Integer()


class NativeToolCallSchema(Schema):
    id = _required(fields.String)
    name = _required(fields.String)
    arguments = _required(fields.String)


class NativeThinkingSchema(Schema):
    thinking = _required(fields.String)
    signature = _nullable(fields.String)


class CompletionSchema(Schema):
    """POST /v1/llm/complete without stream."""

    id = _required(fields.String)
    provider = _required(fields.String)
    model = _required(fields.String)
    content = _required(fields.String)
    finish_reason = _nullable(fields.String)
    usage = _required(fields.Nested, NativeUsageSchema)
    cost_usd = _required(fields.Float)
    latency_ms = _required(fields.Integer)
    tool_calls = fields.List(fields.Nested(NativeToolCallSchema))
    thinking = fields.List(fields.Nested(NativeThinkingSchema))


class PricingSchema(Schema):
    input_per_1m = _required(fields.Float)
    cached_input_per_1m = _required(fields.Float)
    output_per_1m = _required(fields.Float)
    currency = _required(fields.String)
    price_version = _nullable(fields.String)


class ModelInfoSchema(Schema):
    id = _required(fields.String)
    provider = _required(fields.String)
    available = _required(fields.Boolean)
    aliases = _required(fields.List, fields.String())
    context_window = _required(fields.Integer)
    max_output_tokens = _required(fields.Integer)
    pricing = _required(fields.Nested, PricingSchema)


class ModelListSchema(Schema):
    data = _required(fields.List, fields.Nested(ModelInfoSchema))


class QuotaEntrySchema(Schema):
    limit = _required(fields.Integer)
    used = _required(fields.Integer)
    reserved = _required(fields.Integer)
    remaining = _required(fields.Integer)
    resets_at = _required(fields.DateTime)


class MoneyQuotaEntrySchema(Schema):
    limit = _required(fields.Float)
    used = _required(fields.Float)
    reserved = _required(fields.Float)
    remaining = _required(fields.Float)
    resets_at = _required(fields.DateTime)


class RateLimitInfoSchema(Schema):
    limit = _required(fields.Integer)
    window_s = _required(fields.Integer)


class QuotaSchema(Schema):
    daily_requests = _required(fields.Nested, QuotaEntrySchema)
    daily_tokens = _required(fields.Nested, QuotaEntrySchema)
    monthly_spend_usd = _required(fields.Nested, MoneyQuotaEntrySchema)
    rate_limit = _required(fields.Nested, RateLimitInfoSchema)


class ToolCallFunctionSchema(Schema):
    name = _required(fields.String)
    arguments = _required(fields.String)


class ToolCallOutSchema(Schema):
    id = _required(fields.String)
    type = _required(fields.String, validate=validate.OneOf(("function",)))
    function = _required(fields.Nested, ToolCallFunctionSchema)


class ChatMessageOutSchema(Schema):
    role = _required(fields.String, validate=validate.OneOf(("assistant",)))
    content = _nullable(fields.String)
    refusal = _nullable(fields.String)
    tool_calls = fields.List(fields.Nested(ToolCallOutSchema))
    annotations = fields.List(fields.Dict())
    reasoning_content = fields.String()
    thinking_blocks = fields.List(fields.Dict())


class ChatChoiceSchema(Schema):
    index = _required(fields.Integer)
    message = _required(fields.Nested, ChatMessageOutSchema)
    logprobs = _nullable(fields.Raw)
    finish_reason = _nullable(fields.String)


class PromptTokensDetailsSchema(OpenSchema):
    cached_tokens = _required(fields.Integer)


class OpenDetailsSchema(OpenSchema):
    """Token breakdowns (reasoning_tokens, ...)."""


class ChatUsageSchema(Schema):
    prompt_tokens = _required(fields.Integer)
    completion_tokens = _required(fields.Integer)
    total_tokens = _required(fields.Integer)
    prompt_tokens_details = fields.Nested(PromptTokensDetailsSchema)
    completion_tokens_details = fields.Nested(OpenDetailsSchema)


class ChatCompletionOutSchema(Schema):
    """POST /v1/chat/completions without stream: an OpenAI chat.completion."""

    id = _required(fields.String)
    object = _required(fields.String, validate=validate.OneOf(("chat.completion",)))
    created = _required(fields.Integer)
    model = _required(fields.String)
    choices = _required(fields.List, fields.Nested(ChatChoiceSchema))
    usage = _required(fields.Nested, ChatUsageSchema)
    system_fingerprint = fields.String()
    service_tier = fields.String()


class OpenAIModelSchema(OpenSchema):
    id = _required(fields.String)
    object = _required(fields.String)
    created = _required(fields.Integer)
    owned_by = _required(fields.String)


class OpenAIModelListSchema(OpenSchema):
    """GET /v1/models: read by both the OpenAI and the Anthropic SDKs."""

    object = _required(fields.String, validate=validate.OneOf(("list",)))
    data = _required(fields.List, fields.Nested(OpenAIModelSchema))
    has_more = fields.Boolean()
    first_id = fields.String(allow_none=True)
    last_id = fields.String(allow_none=True)


class ContentBlockSchema(OpenSchema):
    """text (text, citations?), tool_use (id, name, input), thinking (thinking, signature), redacted_thinking."""

    type = _required(fields.String)


class AnthropicUsageSchema(OpenSchema):
    input_tokens = _required(fields.Integer)
    output_tokens = _required(fields.Integer)
    cache_read_input_tokens = fields.Integer()
    cache_creation_input_tokens = fields.Integer()


class AnthropicMessageOutSchema(Schema):
    """POST /v1/messages without stream: an Anthropic Message."""

    id = _required(fields.String)
    type = _required(fields.String, validate=validate.OneOf(("message",)))
    role = _required(fields.String, validate=validate.OneOf(("assistant",)))
    model = _required(fields.String)
    content = _required(fields.List, fields.Nested(ContentBlockSchema))
    stop_reason = _nullable(fields.String)
    stop_sequence = _nullable(fields.String)
    usage = _required(fields.Nested, AnthropicUsageSchema)


class EffectiveLimitsSchema(Schema):
    daily_requests = _required(fields.Integer)
    daily_tokens = _required(fields.Integer)
    monthly_spend_cap_usd = _required(fields.Float)
    rate_limit_max = _required(fields.Integer)
    overrides = _required(fields.List, fields.String())


class UserSchema(Schema):
    id = _required(fields.Integer)
    name = _required(fields.String)
    email = _required(fields.String)
    status = _required(fields.String, validate=validate.OneOf(USER_STATUSES))
    limits = _required(fields.Nested, EffectiveLimitsSchema)
    created_at = _nullable(fields.DateTime)


class KeySchema(Schema):
    """A key as operators see it: never its secret or hash."""

    id = _required(fields.Integer)
    user_id = _required(fields.Integer)
    name = _required(fields.String)
    prefix = _required(fields.String)
    status = _required(fields.String, validate=validate.OneOf(KEY_STATUSES))
    created_at = _nullable(fields.DateTime)
    last_used_at = _nullable(fields.DateTime)
    expires_at = _nullable(fields.DateTime)
    revoked_at = _nullable(fields.DateTime)


class UserDetailSchema(UserSchema):
    keys = _required(fields.List, fields.Nested(KeySchema))


class UserPageSchema(Schema):
    data = _required(fields.List, fields.Nested(UserSchema))
    next_cursor = _nullable(fields.String)


class KeyCreatedSchema(Schema):
    """The only answer that ever carries a key's plaintext."""

    id = _required(fields.Integer)
    api_key = _required(fields.String)
    prefix = _required(fields.String)
    name = _required(fields.String)
    user_id = _required(fields.Integer)
    created_at = _nullable(fields.DateTime)
    expires_at = _nullable(fields.DateTime)
    message = _required(fields.String)


class KeyListSchema(Schema):
    data = _required(fields.List, fields.Nested(KeySchema))


class UserLimitsSchema(Schema):
    user_id = _required(fields.Integer)
    limits = _required(fields.Nested, EffectiveLimitsSchema)


class UsageTotalsSchema(Schema):
    requests = _required(fields.Integer)
    errors = _required(fields.Integer)
    prompt_tokens = _required(fields.Integer)
    completion_tokens = _required(fields.Integer)
    total_tokens = _required(fields.Integer)
    cost_usd = _required(fields.Float)


class UsageGroupSchema(UsageTotalsSchema):
    key = _nullable(fields.String)


class UsageReportSchema(Schema):
    start = _required(fields.Date, data_key="from")
    end = _required(fields.Date, data_key="to")
    user_id = _nullable(fields.Integer)
    group_by = _nullable(fields.String, validate=validate.OneOf(GROUP_BY))
    totals = _required(fields.Nested, UsageTotalsSchema)
    groups = _required(fields.List, fields.Nested(UsageGroupSchema))


class UsageRecordSchema(Schema):
    """One audit row."""

    request_id = _required(fields.String)
    user_id = _required(fields.Integer)
    key_id = _nullable(fields.Integer)
    endpoint = _required(fields.String)
    provider = _nullable(fields.String)
    model = _nullable(fields.String)
    status = _required(fields.String, validate=validate.OneOf(RECORD_STATUSES))
    http_status = _nullable(fields.Integer)
    error_type = _nullable(fields.String)
    stream = _required(fields.Boolean)
    prompt_tokens = _required(fields.Integer)
    completion_tokens = _required(fields.Integer)
    cached_tokens = _required(fields.Integer)
    cost_usd = _required(fields.Float)
    price_snapshot = _nullable(fields.Dict)
    latency_ms = _nullable(fields.Integer)
    upstream_latency_ms = _nullable(fields.Integer)
    client_ip = _nullable(fields.String)
    prompt_record = _nullable(fields.Dict)
    created_at = _nullable(fields.DateTime)
    finished_at = _nullable(fields.DateTime)


class UsageRecordPageSchema(Schema):
    data = _required(fields.List, fields.Nested(UsageRecordSchema))
    next_cursor = _nullable(fields.String)
