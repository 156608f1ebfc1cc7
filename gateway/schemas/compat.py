"""Request schemas of the drop-in endpoints: OpenAI chat completions and Anthropic messages.

Every field of both APIs (openai 3.57 / anthropic 2.14 type files) is listed here: read into the neutral
model, marked as a same-family option (metadata=OPTION: forwarded verbatim to that family, refused by
name for the other; declaring the field is all it takes), or refused (REFUSED_*). Unknown fields are a
400 naming them, as the real APIs answer. docs/compat.md is the table.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from gateway.schemas.anthropic_parts import (AnthropicMessages, AnthropicOutputConfig, AnthropicOutputFormat,
                                             AnthropicSystem, AnthropicThinking, AnthropicToolChoice, AnthropicTools)
from gateway.schemas.fields import StopSequences, StrictBoolean, StrictFloat, StrictInteger
from gateway.schemas.llm import MAX_MESSAGES, MAX_MODEL_NAME
from gateway.schemas.openai_parts import OpenAIMessages, OpenAIResponseFormat, OpenAITools, OpenAIToolChoice
from gateway.schemas.shapes import Shaped, cache_control

# Refused on every model, with why (the gateway cannot bill or serve them).
REFUSED_OPENAI = {
    "functions": "deprecated; use tools",
    "function_call": "deprecated; use tool_choice",
    "audio": "audio output is not supported (it is priced per audio token)",
    "web_search_options": "web search is billed per call, which the gateway cannot price",
}
UNPRICED_TIERS = ("scale", "priority", "fast")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
REFUSED_ANTHROPIC = {
    "container": "code execution containers are billed by the hour, which the gateway cannot price",
    "mcp_servers": "remote MCP tool use is not supported",
    "inference_geo": "regional inference is priced above the catalog's list prices",
    "speed": "fast mode is priced above the catalog's list prices",
    "diagnostics": "not supported by this gateway",
    "user_profile_id": "not supported by this gateway",
    "workspace_id": "the gateway's own workspace is used",
}


OPTION = {"wire_option": True}  # field metadata: forwarded verbatim to its own family, refused by the other


def wire_options(schema: type[Schema]) -> tuple[str, ...]:
    """The fields of schema marked OPTION: declaring one there is all it takes to forward it."""
    return tuple(name for name, field in schema._declared_fields.items() if field.metadata.get("wire_option"))


class Refused(fields.Raw):
    """A real field of the API that this gateway refuses (any value but null is a 400 saying why)."""

    def __init__(self, why: str, **kwargs) -> None:
        super().__init__(load_default=None, allow_none=True, **kwargs)
        self.why = why

    def _deserialize(self, value, attr, data, **kwargs):
        raise ValidationError(f"Not supported by this gateway: {self.why}.")


class StreamOptionsSchema(Schema):
    class Meta:
        unknown = RAISE

    include_usage = StrictBoolean(load_default=False, allow_none=True)
    include_obfuscation = StrictBoolean(load_default=None, allow_none=True)


class JSONObject(fields.Dict):
    """A JSON object (kept as it is)."""


class ChatCompletionSchema(Schema):
    """POST /v1/chat/completions."""

    class Meta:
        unknown = RAISE

    model = fields.String(required=True, validate=validate.Length(min=1, max=MAX_MODEL_NAME))
    messages = OpenAIMessages(required=True, validate=validate.Length(max=MAX_MESSAGES))
    temperature = StrictFloat(load_default=None, allow_none=True, validate=validate.Range(min=0, max=2))
    top_p = StrictFloat(load_default=None, allow_none=True, validate=validate.Range(min=0, max=1))
    max_tokens = StrictInteger(load_default=None, allow_none=True, validate=validate.Range(min=1, max=1_000_000))
    max_completion_tokens = StrictInteger(load_default=None, allow_none=True,
                                          validate=validate.Range(min=1, max=1_000_000))
    stop = StopSequences(load_default=(), allow_none=True)
    stream = StrictBoolean(load_default=False, allow_none=True)
    stream_options = fields.Nested(StreamOptionsSchema, load_default=None, allow_none=True)
    n = StrictInteger(load_default=1, allow_none=True, validate=validate.Range(min=1, max=128))
    user = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=256))
    tools = OpenAITools(load_default=(), allow_none=True)
    tool_choice = OpenAIToolChoice(load_default=None, allow_none=True)
    parallel_tool_calls = StrictBoolean(load_default=None, allow_none=True)
    response_format = OpenAIResponseFormat(load_default=None, allow_none=True)
    reasoning_effort = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(REASONING_EFFORTS))
    seed = StrictInteger(allow_none=True, metadata=OPTION)
    frequency_penalty = StrictFloat(allow_none=True, validate=validate.Range(min=-2, max=2), metadata=OPTION)
    presence_penalty = StrictFloat(allow_none=True, validate=validate.Range(min=-2, max=2), metadata=OPTION)
    logit_bias = fields.Dict(keys=fields.String(), values=StrictInteger(validate=validate.Range(min=-100, max=100)),
                             allow_none=True, metadata=OPTION)
    logprobs = StrictBoolean(allow_none=True, metadata=OPTION)
    top_logprobs = StrictInteger(allow_none=True, validate=validate.Range(min=0, max=20), metadata=OPTION)
    safety_identifier = fields.String(allow_none=True, validate=validate.Length(max=64), metadata=OPTION)
    metadata = fields.Dict(keys=fields.String(validate=validate.Length(max=64)),
                           values=fields.String(validate=validate.Length(max=512)), allow_none=True,
                           validate=validate.Length(max=16), metadata=OPTION)
    service_tier = fields.String(allow_none=True, validate=validate.OneOf(("auto", "default", "flex")),
                                 metadata=OPTION)
    prompt_cache_key = fields.String(allow_none=True, metadata=OPTION)
    prompt_cache_retention = fields.String(allow_none=True, validate=validate.OneOf(("in_memory", "24h")),
                                           metadata=OPTION)
    prompt_cache_options = JSONObject(allow_none=True, metadata=OPTION)
    store = StrictBoolean(allow_none=True, metadata=OPTION)
    prediction = JSONObject(allow_none=True, metadata=OPTION)
    verbosity = fields.String(allow_none=True, validate=validate.OneOf(("low", "medium", "high")),
                              metadata=OPTION)
    modalities = fields.List(fields.String(validate=validate.OneOf(("text",))), allow_none=True, metadata=OPTION)
    moderation = JSONObject(allow_none=True, metadata=OPTION)
    functions = Refused(REFUSED_OPENAI["functions"])
    function_call = Refused(REFUSED_OPENAI["function_call"])
    audio = Refused(REFUSED_OPENAI["audio"])
    web_search_options = Refused(REFUSED_OPENAI["web_search_options"])

    @validates_schema(pass_original=True)
    def _consistent(self, data, original, **_kwargs):
        if original.get("service_tier") in UNPRICED_TIERS:
            raise ValidationError("The catalog has no price for this tier; use auto, default or flex.",
                                  "service_tier")
        if data.get("top_logprobs") is not None and not data.get("logprobs"):
            raise ValidationError("top_logprobs needs logprobs: true.", "top_logprobs")
        for name in ("tool_choice", "parallel_tool_calls"):
            if data.get(name) is not None and not data.get("tools"):
                raise ValidationError(f"{name} is only allowed when tools are specified.", name)


class CacheControl(Shaped):
    json_schema = {"type": "object", "required": ["type"]}

    def parse(self, value):
        return cache_control(value, "")


class MetadataSchema(Schema):
    class Meta:
        unknown = RAISE

    user_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=256))


class MessagesSchema(Schema):
    """POST /v1/messages."""

    class Meta:
        unknown = RAISE

    model = fields.String(required=True, validate=validate.Length(min=1, max=MAX_MODEL_NAME))
    max_tokens = StrictInteger(required=True, validate=validate.Range(min=1, max=1_000_000))
    messages = AnthropicMessages(required=True, validate=validate.Length(max=MAX_MESSAGES))
    system = AnthropicSystem(load_default=None)
    temperature = StrictFloat(load_default=None, validate=validate.Range(min=0, max=1))
    top_p = StrictFloat(load_default=None, validate=validate.Range(min=0, max=1))
    top_k = StrictInteger(validate=validate.Range(min=0), metadata=OPTION)
    stop_sequences = StopSequences(load_default=())
    stream = StrictBoolean(load_default=False)
    tools = AnthropicTools(load_default=())
    tool_choice = AnthropicToolChoice(load_default=None)
    thinking = AnthropicThinking(load_default=None)
    output_config = AnthropicOutputConfig(load_default=None)
    output_format = AnthropicOutputFormat(load_default=None)  # the Nov-2025 beta spelling of output_config.format
    metadata = fields.Nested(MetadataSchema, load_default=None)
    service_tier = fields.String(validate=validate.OneOf(("auto", "standard_only")), metadata=OPTION)
    cache_control = CacheControl(metadata=OPTION)
    context_management = JSONObject(metadata=OPTION)
    container = Refused(REFUSED_ANTHROPIC["container"])
    mcp_servers = Refused(REFUSED_ANTHROPIC["mcp_servers"])
    inference_geo = Refused(REFUSED_ANTHROPIC["inference_geo"])
    speed = Refused(REFUSED_ANTHROPIC["speed"])
    diagnostics = Refused(REFUSED_ANTHROPIC["diagnostics"])
    user_profile_id = Refused(REFUSED_ANTHROPIC["user_profile_id"])
    workspace_id = Refused(REFUSED_ANTHROPIC["workspace_id"])

    @validates_schema
    def _consistent(self, data, **_kwargs):
        if data.get("output_format") is not None and (data.get("output_config") or (None, None))[1] is not None:
            raise ValidationError("Give output_config.format or output_format, not both.", "output_format")
        thinking = data.get("thinking")
        if thinking is not None and thinking.budget_tokens is not None and thinking.budget_tokens >= data.get(
                "max_tokens", 0):
            raise ValidationError("thinking.budget_tokens must be less than max_tokens.", "thinking")


class CountTokensSchema(MessagesSchema):
    """POST /v1/messages/count_tokens: the fields of a Messages request that shape its prompt; the others
    (max_tokens, sampling, stream, metadata, ...) are unknown fields here, as Anthropic answers."""

    class Meta:
        unknown = RAISE
        exclude = ("max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "stream", "output_format",
                   "metadata", "service_tier", "context_management", "container", "mcp_servers", "inference_geo",
                   "diagnostics")

    @validates_schema
    def _consistent(self, data, **_kwargs):
        """Nothing to check across fields: without max_tokens there is no thinking budget to keep under it."""


# Forwarded verbatim to their own family's models; a 400 naming the field for the other family's.
OPENAI_OPTIONS = wire_options(ChatCompletionSchema)
ANTHROPIC_OPTIONS = wire_options(MessagesSchema)
