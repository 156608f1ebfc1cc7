"""The OpenAPI 3 document, generated from the very marshmallow schemas that validate requests.

Paths come from the app's URL map, summaries from the view docstrings, request bodies and query
strings from the schemas the views load (change one and the document follows), responses from the
hand-written shapes in gateway/schemas/responses.py (schemathesis checks the answers against them). The one hand-kept part is OPERATIONS,
which says which schema each endpoint reads and answers with; tests/test_openapi.py fails when a
route has no entry there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema

from gateway.models.types import MAX_ID
from gateway.schemas import report_responses as reports_out
from gateway.schemas import responses as out
from gateway.schemas.admin import (MAX_MONEY, MONEY_PLACES, KeyCreateSchema, KeyListQuerySchema,
                                   LimitsSchema, RecordsQuerySchema, StrictMoney, UsageQuerySchema,
                                   UserCreateSchema, UserListQuerySchema)
from gateway.schemas.compat import ChatCompletionSchema, CountTokensSchema, MessagesSchema
from gateway.schemas.fields import StopSequences
from gateway.schemas.shapes import Shaped
from gateway.schemas.llm import CompleteRequestSchema
from gateway.schemas.reports import (DailySeriesQuerySchema, NearCapsQuerySchema, QuotaListQuerySchema,
                                     UsageByUserQuerySchema)

OPENAPI_VERSION = "3.0.3"
JSON = "application/json"
SSE = "text/event-stream"
DESCRIPTION = (
    "One HTTP front door to OpenAI and Anthropic. Callers send a gateway key "
    "(`Authorization: Bearer dom_...`, or `x-api-key`); the admin API takes `Bearer <ADMIN_TOKEN>`. "
    "Every error is one envelope: `{\"error\": {\"type\", \"message\", \"code\", \"param\", \"request_id\"}}`. "
    "Every response carries `X-Request-ID` (yours when well-formed: 1-64 of `A-Za-z0-9._:-`). "
    "Completion endpoints stream server-sent events when the body says `\"stream\": true`."
)
STATUS_TEXT = {
    400: "Invalid request: the message names the field (param) and what to fix.",
    401: "Missing, malformed, unknown, revoked or expired credentials.",
    403: "The key's user is suspended.",
    404: "No such resource.",
    409: "Conflict (a duplicate email, or an X-Request-ID already used).",
    413: "Body larger than MAX_REQUEST_BYTES.",
    429: "A rate limit (per IP, per user, failed credentials), a quota, or the upstream's own limit.",
    502: "The upstream provider failed or answered something unreadable.",
    503: "The database is unavailable, or the admin API is disabled (no ADMIN_TOKEN).",
    504: "The upstream provider did not answer in time.",
}

GATEWAY_KEY = ({"GatewayKey": []}, {"GatewayKeyHeader": []})
ADMIN_TOKEN = ({"AdminToken": []},)
METRICS_TOKEN = ({}, {"MetricsToken": []})
KEYED = (401, 403, 429, 503)
COMPLETES = (400, 409, 413, 502, 504)
ADMIN = (401, 429, 503)
ADMIN_BODY = (400, 413)
NATIVE_EVENTS = ("start", "delta", "done", "error")
ANTHROPIC_EVENTS = ("message_start", "content_block_start", "content_block_delta", "content_block_stop",
                    "message_delta", "message_stop", "error")


@dataclass(frozen=True)
class Operation:
    """What one endpoint reads and answers: tag, success status/schema, body and query schemas, auth, errors."""

    tag: str
    status: int
    schema: type[Schema] | None
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    security: tuple = ()
    errors: tuple[int, ...] = ()
    media: str = JSON
    events: tuple[str, ...] | None = None  # server-sent event names when "stream": true; () = unnamed
    example: dict | None = None
    extra: dict = field(default_factory=dict)
    error_schema: type[Schema] = out.ErrorSchema  # the envelope this endpoint's errors come in


OPERATIONS: dict[str, Operation] = {
    "health.live": Operation("health", 200, out.HealthSchema),
    "health.ready": Operation("health", 200, out.ReadinessSchema, extra={503: out.ReadinessSchema}),
    "llm.complete": Operation("native", 200, out.CompletionSchema, body=CompleteRequestSchema,
                              security=GATEWAY_KEY, errors=KEYED + COMPLETES, events=NATIVE_EVENTS,
                              example={"model": "mock-1", "messages": [{"role": "user", "content": "Hello"}]}),
    "llm.models": Operation("native", 200, out.ModelListSchema, security=GATEWAY_KEY, errors=KEYED),
    "llm.quota": Operation("native", 200, out.QuotaSchema, security=GATEWAY_KEY, errors=KEYED),
    "openai_compat.chat_completions": Operation("openai", 200, out.ChatCompletionOutSchema,
                                                body=ChatCompletionSchema, security=GATEWAY_KEY,
                                                errors=KEYED + COMPLETES, events=(),
                                                example={"model": "gpt-4o-mini", "max_tokens": 100,
                                                         "messages": [{"role": "user", "content": "Hello"}]}),
    "openai_compat.models": Operation("openai", 200, out.OpenAIModelListSchema, security=GATEWAY_KEY,
                                      errors=KEYED),
    "openai_compat.retrieve_model": Operation("openai", 200, out.OpenAIModelSchema, security=GATEWAY_KEY,
                                              errors=KEYED + (404,)),
    "anthropic_compat.messages": Operation("anthropic", 200, out.AnthropicMessageOutSchema, body=MessagesSchema,
                                           security=GATEWAY_KEY, errors=KEYED + COMPLETES,
                                           events=ANTHROPIC_EVENTS, error_schema=out.AnthropicErrorSchema,
                                           example={"model": "claude-haiku-4-5", "max_tokens": 100,
                                                    "messages": [{"role": "user", "content": "Hello"}]}),
    "anthropic_compat.count_tokens": Operation("anthropic", 200, out.TokenCountSchema, body=CountTokensSchema,
                                               security=GATEWAY_KEY, errors=KEYED + (400, 413, 502, 504),
                                               error_schema=out.AnthropicErrorSchema,
                                               example={"model": "claude-haiku-4-5",
                                                        "messages": [{"role": "user", "content": "Hello"}]}),
    "admin.create_user": Operation("admin", 201, out.UserSchema, body=UserCreateSchema, security=ADMIN_TOKEN,
                                   errors=ADMIN + ADMIN_BODY + (409,),
                                   example={"name": "Ada Lovelace", "email": "ada@example.com"}),
    "admin.list_users": Operation("admin", 200, out.UserPageSchema, query=UserListQuerySchema,
                                  security=ADMIN_TOKEN, errors=ADMIN + (400,)),
    "admin.show_user": Operation("admin", 200, out.UserDetailSchema, security=ADMIN_TOKEN, errors=ADMIN + (404,)),
    "admin.suspend_user": Operation("admin", 200, out.UserSchema, security=ADMIN_TOKEN, errors=ADMIN + (404,)),
    "admin.activate_user": Operation("admin", 200, out.UserSchema, security=ADMIN_TOKEN, errors=ADMIN + (404,)),
    "admin.create_key": Operation("admin", 201, out.KeyCreatedSchema, body=KeyCreateSchema, security=ADMIN_TOKEN,
                                  errors=ADMIN + ADMIN_BODY + (404,), example={"user_id": 1, "name": "laptop"}),
    "admin.list_keys": Operation("admin", 200, out.KeyListSchema, query=KeyListQuerySchema, security=ADMIN_TOKEN,
                                 errors=ADMIN + (400, 404)),
    "admin.revoke_key": Operation("admin", 200, out.KeySchema, security=ADMIN_TOKEN, errors=ADMIN + (404,)),
    "admin.set_limits": Operation("admin", 200, out.UserLimitsSchema, body=LimitsSchema, security=ADMIN_TOKEN,
                                  errors=ADMIN + ADMIN_BODY + (404,),
                                  example={"user_id": 1, "daily_requests": 500, "monthly_spend_cap_usd": "25.00",
                                           "rate_limit_max": None}),
    "admin.show_limits": Operation("admin", 200, out.UserLimitsSchema, security=ADMIN_TOKEN, errors=ADMIN + (404,)),
    "admin.usage": Operation("admin", 200, out.UsageReportSchema, query=UsageQuerySchema, security=ADMIN_TOKEN,
                             errors=ADMIN + (400, 404)),
    "admin.usage_records": Operation("admin", 200, out.UsageRecordPageSchema, query=RecordsQuerySchema,
                                     security=ADMIN_TOKEN, errors=ADMIN + (400, 404)),
    "admin_reports.usage_by_user": Operation("admin", 200, reports_out.UsageByUserSchema,
                                             query=UsageByUserQuerySchema, security=ADMIN_TOKEN,
                                             errors=ADMIN + (400,)),
    "admin_reports.usage_daily": Operation("admin", 200, reports_out.DailySeriesSchema,
                                           query=DailySeriesQuerySchema, security=ADMIN_TOKEN,
                                           errors=ADMIN + (400, 404)),
    "admin_reports.list_quotas": Operation("admin", 200, reports_out.QuotaPageSchema, query=QuotaListQuerySchema,
                                           security=ADMIN_TOKEN, errors=ADMIN + (400,)),
    "admin_reports.near_caps": Operation("admin", 200, reports_out.NearCapsSchema, query=NearCapsQuerySchema,
                                         security=ADMIN_TOKEN, errors=ADMIN + (400,)),
    "admin_reports.show_quotas": Operation("admin", 200, reports_out.UserQuotasSchema, security=ADMIN_TOKEN,
                                           errors=ADMIN + (404,)),
    "admin_reports.models": Operation("admin", 200, reports_out.AdminModelListSchema, security=ADMIN_TOKEN,
                                      errors=ADMIN),
    "admin_reports.upstream_outcomes_today": Operation("admin", 200, reports_out.UpstreamOutcomesSchema,
                                                       security=ADMIN_TOKEN, errors=ADMIN),
    "console.page": Operation("operations", 200, None, media="text/html"),
    "admin.upstreams": Operation("admin", 200, out.UpstreamReportSchema, security=ADMIN_TOKEN, errors=ADMIN),
    "metrics.scrape": Operation("operations", 200, None, security=METRICS_TOKEN, errors=(401, 429),
                                media="text/plain"),
    "docs.openapi": Operation("operations", 200, None),
    "docs.page": Operation("operations", 200, None, media="text/html"),
}
TAGS = (
    ("native", "The gateway's own completion API."),
    ("openai", "Drop-in OpenAI Chat Completions (point an OpenAI SDK's base_url at /v1)."),
    ("anthropic", "Drop-in Anthropic Messages (point an Anthropic SDK's base_url at the gateway)."),
    ("admin", "Users, keys, limits, usage and upstreams, behind ADMIN_TOKEN."),
    ("health", "Liveness and readiness; never rate limited, never call an LLM."),
    ("operations", "Metrics and this document."),
)


def openapi_json(app: Flask) -> bytes:
    """The document as JSON bytes, built once per app (the URL map is fixed once the app serves)."""
    cached = app.extensions.get("openapi_json")
    if cached is None:
        cached = json.dumps(build_spec(app), separators=(",", ":")).encode()
        app.extensions["openapi_json"] = cached
    return cached


def documented_rules(app: Flask) -> list:
    """Every served route except static files."""
    return [rule for rule in app.url_map.iter_rules()
            if rule.endpoint != "static" and not rule.endpoint.endswith(".static")]


def undocumented_endpoints(app: Flask) -> list[str]:
    """Endpoints served by the app that OPERATIONS does not describe (should be none)."""
    return sorted({rule.endpoint for rule in documented_rules(app)} - set(OPERATIONS))


def build_spec(app: Flask) -> dict:
    """The OpenAPI document of every route the app serves."""
    plugin = MarshmallowPlugin()
    spec = APISpec(title="Dominion Gateway", version=_version(), openapi_version=OPENAPI_VERSION,
                   plugins=[plugin], info={"description": DESCRIPTION},
                   tags=[{"name": name, "description": text} for name, text in TAGS])
    plugin.converter.add_attribute_function(custom_field_properties)
    _components(spec)
    for rule in sorted(documented_rules(app), key=lambda r: (r.rule, sorted(r.methods))):
        operation = OPERATIONS.get(rule.endpoint) or Operation("other", 200, None)
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        view = app.view_functions[rule.endpoint]
        spec.path(path=_openapi_path(rule), parameters=_path_parameters(rule),
                  operations={m.lower(): _operation(rule.endpoint, operation, view) for m in methods})
    return spec.to_dict()


def _components(spec: APISpec) -> None:
    spec.components.schema("Error", schema=out.ErrorSchema)
    spec.components.security_scheme("GatewayKey", {
        "type": "http", "scheme": "bearer", "bearerFormat": "dom_<public id>_<secret>",
        "description": "A gateway key from POST /admin/keys."})
    spec.components.security_scheme("GatewayKeyHeader", {
        "type": "apiKey", "in": "header", "name": "x-api-key",
        "description": "The same gateway key, Anthropic-style."})
    spec.components.security_scheme("AdminToken", {"type": "http", "scheme": "bearer",
                                                   "description": "ADMIN_TOKEN of the gateway."})
    spec.components.security_scheme("MetricsToken", {"type": "http", "scheme": "bearer",
                                                     "description": "METRICS_TOKEN, when it is set."})
    spec.components.header("RequestId", {"description": "This request's id (also in error bodies and logs).",
                                         "schema": {"type": "string"}})
    spec.components.header("RetryAfter", {"description": "Seconds to wait before retrying.",
                                          "schema": {"type": "integer", "minimum": 0}})
    spec.components.parameter("RequestId", "header", {
        "name": "X-Request-ID", "required": False,
        "description": "Your id for this request, echoed back and stored in the audit log when it is "
                       "1-64 characters of A-Za-z0-9._:- (starting alphanumeric); otherwise one is made.",
        "schema": {"type": "string"}})


def _operation(endpoint: str, operation: Operation, view) -> dict:
    doc = (view.__doc__ or "").strip()
    result = {"operationId": endpoint.replace(".", "_"), "tags": [operation.tag],
              "summary": doc.splitlines()[0] if doc else endpoint,
              "parameters": ["RequestId"],
              "responses": _responses(operation)}
    if operation.query is not None:
        result["parameters"].append({"in": "query", "schema": operation.query})
    if operation.body is not None:
        body = {"schema": operation.body}
        if operation.example is not None:
            body["example"] = operation.example
        result["requestBody"] = {"required": True, "content": {JSON: body}}
    if operation.security:
        result["security"] = [dict(requirement) for requirement in operation.security]
    return result


def _responses(operation: Operation) -> dict:
    responses = {str(operation.status): _success(operation)}
    for status, schema in operation.extra.items():
        responses[str(status)] = _response(STATUS_TEXT.get(status, "See the body."), {JSON: {"schema": schema}})
    for status in sorted(set(operation.errors)):
        responses.setdefault(str(status), _error_response(status, operation.error_schema))
    responses["default"] = _error_response(None, operation.error_schema)
    return responses


def _success(operation: Operation) -> dict:
    if operation.schema is not None:
        content = {operation.media: {"schema": operation.schema}}
    elif operation.media == JSON:
        content = {JSON: {"schema": {"type": "object"}}}
    else:
        content = {operation.media: {"schema": {"type": "string"}}}
    description = "Success."
    if operation.events is not None:
        content[SSE] = {"schema": _event_schema(operation.events)}
        description = ("Success. With \"stream\": true the answer is text/event-stream in this endpoint's "
                       "own streaming format, ending with usage; a failure mid-stream is an error event.")
    return _response(description, content)


def _event_schema(names: tuple[str, ...]) -> dict:
    """One server-sent event (OpenAPI 3.0: the schema of a text/event-stream describes each event)."""
    event = {"type": "string", "enum": list(names)} if names else {"type": "string"}
    return {"type": "object", "required": ["data"],
            "properties": {"event": event, "data": {"type": "string", "description": "JSON, or [DONE]"}}}


def _error_response(status: int | None, schema: type[Schema] = out.ErrorSchema) -> dict:
    response = _response(STATUS_TEXT.get(status, "Any other error, in the same envelope."),
                         {JSON: {"schema": schema}})
    if status in (429, 503):
        response["headers"]["Retry-After"] = "RetryAfter"
    return response


def _response(description: str, content: dict) -> dict:
    return {"description": description, "content": content,
            "headers": {"X-Request-ID": "RequestId"}}


def _openapi_path(rule) -> str:
    path = rule.rule
    for argument in rule.arguments:
        path = path.replace(f"<{argument}>", f"{{{argument}}}")
    return path


def _path_parameters(rule) -> list[dict]:
    """Path ids: anything that is not one answers 404 (never 400), so the schema is a hint, not a gate."""
    return [{"name": argument, "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID} if argument.endswith("_id")
             else {"type": "string"}}
            for argument in sorted(rule.arguments)]


def custom_field_properties(self, field, ret, **_kwargs) -> dict:
    """JSON Schema of the gateway's own field types (apispec attribute function)."""
    if isinstance(field, Shaped):
        return dict(field.json_schema)
    if isinstance(field, StopSequences):
        one = {"type": "string", "minLength": 1, "maxLength": 200}
        return {"oneOf": [one, {"type": "array", "maxItems": StopSequences.max_items, "items": one}]}
    if isinstance(field, StrictMoney):
        number = {"type": "number", "minimum": 0, "maximum": float(MAX_MONEY),
                  "description": f"US dollars, at most {MONEY_PLACES} decimal places"}
        text = {"type": "string", "pattern": r"^\s*\d{1,8}(\.\d{1,6})?\s*$"}
        return {"oneOf": [number, text]}
    return {}


def _version() -> str:
    try:
        return version("dominion-gateway")
    except PackageNotFoundError:
        return "0.0.0"
