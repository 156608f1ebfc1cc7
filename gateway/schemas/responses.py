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


def nullable(field_class, **kwargs):
    return field_class(required=True, allow_none=True, **kwargs)


def required(field_class, *args, **kwargs):
    return field_class(*args, required=True, **kwargs)


class OpenSchema(Schema):
    """An object that may carry more fields than listed."""

    class Meta:
        unknown = INCLUDE


class ErrorDetailSchema(OpenSchema):
    """What went wrong; extra fields (limit_scope, quota, upstream_status, ...) depend on the error."""

    type = required(fields.String)
    message = required(fields.String)
    code = nullable(fields.String)
    param = nullable(fields.String)
    request_id = nullable(fields.String)


class ErrorSchema(Schema):
    """The one error envelope, shaped like OpenAI's."""

    error = required(fields.Nested, ErrorDetailSchema)


class AnthropicErrorDetailSchema(OpenSchema):
    """Anthropic's error types; the gateway's own type, code and details may ride along."""

    type = required(fields.String)
    message = required(fields.String)


class AnthropicErrorSchema(Schema):
    """Anthropic's envelope, on /v1/messages."""

    type = required(fields.String, validate=validate.OneOf(("error",)))
    error = required(fields.Nested, AnthropicErrorDetailSchema)
    request_id = nullable(fields.String)


class HealthSchema(Schema):
    status = required(fields.String, validate=validate.OneOf(("ok",)))


class ReadinessCheckSchema(OpenSchema):
    status = required(fields.String, validate=validate.OneOf(("ok", "failed", "degraded")))


class ReadinessChecksSchema(Schema):
    database = required(fields.Nested, ReadinessCheckSchema)
    limiter_storage = required(fields.Nested, ReadinessCheckSchema)


class ReadinessSchema(Schema):
    status = required(fields.String, validate=validate.OneOf(("ready", "unavailable")))
    checks = required(fields.Nested, ReadinessChecksSchema)


class NativeUsageSchema(Schema):
    prompt_tokens = required(fields.Integer)
    completion_tokens = required(fields.Integer)
    total_tokens = required(fields.Integer)
    cached_tokens = fields.Integer()


class NativeToolCallSchema(Schema):
    id = required(fields.String)
    name = required(fields.String)
    arguments = required(fields.String)


class NativeThinkingSchema(Schema):
    thinking = required(fields.String)
    signature = nullable(fields.String)


class CompletionSchema(Schema):
    """POST /v1/llm/complete without stream."""

    id = required(fields.String)
    provider = required(fields.String)
    model = required(fields.String)
    content = required(fields.String)
    finish_reason = nullable(fields.String)
    usage = required(fields.Nested, NativeUsageSchema)
    cost_usd = required(fields.Float)
    latency_ms = required(fields.Integer)
    tool_calls = fields.List(fields.Nested(NativeToolCallSchema))
    thinking = fields.List(fields.Nested(NativeThinkingSchema))


class PricingSchema(Schema):
    input_per_1m = required(fields.Float)
    cached_input_per_1m = required(fields.Float)
    output_per_1m = required(fields.Float)
    currency = required(fields.String)
    price_version = nullable(fields.String)


MODEL_STATUSES = ("available", "fallback_only", "cooling_down", "unavailable")


class ModelInfoSchema(Schema):
    id = required(fields.String)
    provider = required(fields.String)
    available = required(fields.Boolean)
    status = required(fields.String, validate=validate.OneOf(MODEL_STATUSES))
    fallbacks = required(fields.List, fields.String())
    aliases = required(fields.List, fields.String())
    context_window = required(fields.Integer)
    max_output_tokens = required(fields.Integer)
    pricing = required(fields.Nested, PricingSchema)


class ModelListSchema(Schema):
    data = required(fields.List, fields.Nested(ModelInfoSchema))


class QuotaEntrySchema(Schema):
    limit = required(fields.Integer)
    used = required(fields.Integer)
    reserved = required(fields.Integer)
    remaining = required(fields.Integer)
    resets_at = required(fields.DateTime)


class MoneyQuotaEntrySchema(Schema):
    limit = required(fields.Float)
    used = required(fields.Float)
    reserved = required(fields.Float)
    remaining = required(fields.Float)
    resets_at = required(fields.DateTime)


class RateLimitInfoSchema(Schema):
    limit = required(fields.Integer)
    window_s = required(fields.Integer)


class ConcurrencyEntrySchema(Schema):
    """The concurrency cap: requests in flight against max_concurrent_requests (limit null: unlimited)."""

    limit = required(fields.Integer, allow_none=True)
    in_flight = required(fields.Integer)
    remaining = required(fields.Integer, allow_none=True)


class QuotaSchema(Schema):
    daily_requests = required(fields.Nested, QuotaEntrySchema)
    daily_tokens = required(fields.Nested, QuotaEntrySchema)
    monthly_spend_usd = required(fields.Nested, MoneyQuotaEntrySchema)
    concurrent_requests = required(fields.Nested, ConcurrencyEntrySchema)
    rate_limit = required(fields.Nested, RateLimitInfoSchema)


class ToolCallFunctionSchema(Schema):
    name = required(fields.String)
    arguments = required(fields.String)


class ToolCallOutSchema(Schema):
    id = required(fields.String)
    type = required(fields.String, validate=validate.OneOf(("function",)))
    function = required(fields.Nested, ToolCallFunctionSchema)


class ChatMessageOutSchema(Schema):
    role = required(fields.String, validate=validate.OneOf(("assistant",)))
    content = nullable(fields.String)
    refusal = nullable(fields.String)
    tool_calls = fields.List(fields.Nested(ToolCallOutSchema))
    annotations = fields.List(fields.Dict())
    reasoning_content = fields.String()
    thinking_blocks = fields.List(fields.Dict())


class ChatChoiceSchema(Schema):
    index = required(fields.Integer)
    message = required(fields.Nested, ChatMessageOutSchema)
    logprobs = nullable(fields.Raw)
    finish_reason = nullable(fields.String)


class PromptTokensDetailsSchema(OpenSchema):
    cached_tokens = required(fields.Integer)


class OpenDetailsSchema(OpenSchema):
    """Token breakdowns (reasoning_tokens, ...)."""


class ChatUsageSchema(Schema):
    prompt_tokens = required(fields.Integer)
    completion_tokens = required(fields.Integer)
    total_tokens = required(fields.Integer)
    prompt_tokens_details = fields.Nested(PromptTokensDetailsSchema)
    completion_tokens_details = fields.Nested(OpenDetailsSchema)


class ChatCompletionOutSchema(Schema):
    """POST /v1/chat/completions without stream: an OpenAI chat.completion."""

    id = required(fields.String)
    object = required(fields.String, validate=validate.OneOf(("chat.completion",)))
    created = required(fields.Integer)
    model = required(fields.String)
    choices = required(fields.List, fields.Nested(ChatChoiceSchema))
    usage = required(fields.Nested, ChatUsageSchema)
    system_fingerprint = fields.String()
    service_tier = fields.String()


class TokenCountSchema(Schema):
    """POST /v1/messages/count_tokens: Anthropic's answer."""

    input_tokens = required(fields.Integer)


class OpenAIModelSchema(OpenSchema):
    """GET /v1/models/{model}, and each model of the list: OpenAI's fields (Anthropic's ride along)."""

    id = required(fields.String)
    object = required(fields.String)
    created = required(fields.Integer)
    owned_by = required(fields.String)


class OpenAIModelListSchema(OpenSchema):
    """GET /v1/models: read by both the OpenAI and the Anthropic SDKs."""

    object = required(fields.String, validate=validate.OneOf(("list",)))
    data = required(fields.List, fields.Nested(OpenAIModelSchema))
    has_more = fields.Boolean()
    first_id = fields.String(allow_none=True)
    last_id = fields.String(allow_none=True)


class ContentBlockSchema(OpenSchema):
    """text (text, citations?), tool_use (id, name, input), thinking (thinking, signature), redacted_thinking."""

    type = required(fields.String)


class AnthropicUsageSchema(OpenSchema):
    input_tokens = required(fields.Integer)
    output_tokens = required(fields.Integer)
    cache_read_input_tokens = fields.Integer()
    cache_creation_input_tokens = fields.Integer()


class AnthropicMessageOutSchema(Schema):
    """POST /v1/messages without stream: an Anthropic Message."""

    id = required(fields.String)
    type = required(fields.String, validate=validate.OneOf(("message",)))
    role = required(fields.String, validate=validate.OneOf(("assistant",)))
    model = required(fields.String)
    content = required(fields.List, fields.Nested(ContentBlockSchema))
    stop_reason = nullable(fields.String)
    stop_sequence = nullable(fields.String)
    usage = required(fields.Nested, AnthropicUsageSchema)


class EffectiveLimitsSchema(Schema):
    daily_requests = required(fields.Integer)
    daily_tokens = required(fields.Integer)
    monthly_spend_cap_usd = required(fields.Float)
    rate_limit_max = required(fields.Integer)
    max_concurrent_requests = required(fields.Integer)
    overrides = required(fields.List, fields.String())


class UserSchema(Schema):
    id = required(fields.Integer)
    name = required(fields.String)
    email = required(fields.String)
    status = required(fields.String, validate=validate.OneOf(USER_STATUSES))
    limits = required(fields.Nested, EffectiveLimitsSchema)
    created_at = nullable(fields.DateTime)


class KeySchema(Schema):
    """A key as operators see it: never its secret or hash."""

    id = required(fields.Integer)
    user_id = required(fields.Integer)
    name = required(fields.String)
    prefix = required(fields.String)
    status = required(fields.String, validate=validate.OneOf(KEY_STATUSES))
    created_at = nullable(fields.DateTime)
    last_used_at = nullable(fields.DateTime)
    expires_at = nullable(fields.DateTime)
    revoked_at = nullable(fields.DateTime)


class UserDetailSchema(UserSchema):
    keys = required(fields.List, fields.Nested(KeySchema))


class UserPageSchema(Schema):
    data = required(fields.List, fields.Nested(UserSchema))
    next_cursor = nullable(fields.String)


class KeyCreatedSchema(Schema):
    """The only answer that ever carries a key's plaintext."""

    id = required(fields.Integer)
    api_key = required(fields.String)
    prefix = required(fields.String)
    name = required(fields.String)
    user_id = required(fields.Integer)
    created_at = nullable(fields.DateTime)
    expires_at = nullable(fields.DateTime)
    message = required(fields.String)


class KeyListSchema(Schema):
    data = required(fields.List, fields.Nested(KeySchema))


class UserLimitsSchema(Schema):
    user_id = required(fields.Integer)
    limits = required(fields.Nested, EffectiveLimitsSchema)


class UsageTotalsSchema(Schema):
    requests = required(fields.Integer)
    errors = required(fields.Integer)
    prompt_tokens = required(fields.Integer)
    completion_tokens = required(fields.Integer)
    total_tokens = required(fields.Integer)
    cost_usd = required(fields.Float)


class UsageGroupSchema(UsageTotalsSchema):
    key = nullable(fields.String)


class UsageReportSchema(Schema):
    start = required(fields.Date, data_key="from")
    end = required(fields.Date, data_key="to")
    user_id = nullable(fields.Integer)
    group_by = nullable(fields.String, validate=validate.OneOf(GROUP_BY))
    totals = required(fields.Nested, UsageTotalsSchema)
    groups = required(fields.List, fields.Nested(UsageGroupSchema))


class AttemptSchema(Schema):
    """One upstream call of a rerouted request; outcome is ok or the error type."""

    upstream = required(fields.String)
    model = required(fields.String)
    upstream_model = required(fields.String)
    outcome = required(fields.String)
    upstream_status = nullable(fields.Integer)
    latency_ms = required(fields.Integer)


class UsageRecordSchema(Schema):
    """One audit row."""

    request_id = required(fields.String)
    user_id = required(fields.Integer)
    key_id = nullable(fields.Integer)
    endpoint = required(fields.String)
    provider = nullable(fields.String)
    model = nullable(fields.String)
    status = required(fields.String, validate=validate.OneOf(RECORD_STATUSES))
    http_status = nullable(fields.Integer)
    error_type = nullable(fields.String)
    stream = required(fields.Boolean)
    prompt_tokens = required(fields.Integer)
    completion_tokens = required(fields.Integer)
    cached_tokens = required(fields.Integer)
    cost_usd = required(fields.Float)
    price_snapshot = nullable(fields.Dict)
    billing_rule = nullable(fields.String)
    fallback_from = nullable(fields.String)
    attempts = fields.List(fields.Nested(AttemptSchema), required=True, allow_none=True)
    latency_ms = nullable(fields.Integer)
    upstream_latency_ms = nullable(fields.Integer)
    client_ip = nullable(fields.String)
    prompt_record = nullable(fields.Dict)
    created_at = nullable(fields.DateTime)
    finished_at = nullable(fields.DateTime)


class UsageRecordPageSchema(Schema):
    data = required(fields.List, fields.Nested(UsageRecordSchema))
    next_cursor = nullable(fields.String)


class UpstreamErrorSchema(Schema):
    type = required(fields.String)
    message = required(fields.String)
    upstream_status = nullable(fields.Integer)
    at = required(fields.DateTime)


class DeploymentStatusSchema(Schema):
    """One deployment's health in this process."""

    model = required(fields.String)
    upstream_model = required(fields.String)
    weight = required(fields.Integer)
    state = required(fields.String, validate=validate.OneOf(("ok", "cooling_down")))
    cooldown_until = nullable(fields.DateTime)
    failures_in_a_row = required(fields.Integer)
    requests = required(fields.Integer)
    failures = required(fields.Integer)
    cooldowns = required(fields.Integer)
    last_error = fields.Nested(UpstreamErrorSchema, required=True, allow_none=True)


class UpstreamStatusSchema(Schema):
    """One upstream: where, how keyed (the variable's name, never the key), its state and deployments."""

    name = required(fields.String)
    kind = required(fields.String)
    base_url = nullable(fields.String)
    api_key_env = nullable(fields.String)
    source = required(fields.String)
    state = required(fields.String, validate=validate.OneOf(("ok", "degraded", "cooling_down", "unavailable")))
    unavailable_reason = nullable(fields.String)
    requests = required(fields.Integer)
    failures = required(fields.Integer)
    deployments = required(fields.List, fields.Nested(DeploymentStatusSchema))


class UpstreamReportSchema(Schema):
    """GET /admin/upstreams: health is per process (pid), since it started."""

    scope = required(fields.String, validate=validate.OneOf(("process",)))
    pid = required(fields.Integer)
    data = required(fields.List, fields.Nested(UpstreamStatusSchema))
