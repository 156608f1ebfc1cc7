"""Request schemas of the native /v1/llm API (messages, tools and formats in neutral terms: native_parts)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from gateway.schemas.fields import StopSequences, StrictBoolean, StrictFloat, StrictInteger
from gateway.schemas.native_parts import NativeMessages, NativeResponseFormat, NativeTools, NativeToolChoice

PROVIDERS = ("auto", "openai", "anthropic", "mock")
MAX_MESSAGES = 1000
MAX_MODEL_NAME = 100


class CompleteRequestSchema(Schema):
    """POST /v1/llm/complete."""

    class Meta:
        unknown = RAISE

    provider = fields.String(load_default="auto", validate=validate.OneOf(PROVIDERS))
    model = fields.String(load_default=None, validate=validate.Length(min=1, max=MAX_MODEL_NAME))
    messages = NativeMessages(required=True, validate=validate.Length(min=1, max=MAX_MESSAGES))
    temperature = StrictFloat(load_default=None, validate=validate.Range(min=0, max=2))
    top_p = StrictFloat(load_default=None, validate=validate.Range(min=0, max=1))
    max_tokens = StrictInteger(load_default=None, validate=validate.Range(min=1, max=1_000_000))
    stop = StopSequences(load_default=())
    stream = StrictBoolean(load_default=False)
    tools = NativeTools(load_default=())
    tool_choice = NativeToolChoice(load_default=None)
    parallel_tool_calls = StrictBoolean(load_default=None)
    response_format = NativeResponseFormat(load_default=None)
    reasoning_effort = fields.String(load_default=None, validate=validate.OneOf(
        ("none", "minimal", "low", "medium", "high", "xhigh", "max")))
    user = fields.String(load_default=None, validate=validate.Length(min=1, max=256))

