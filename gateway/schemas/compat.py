"""Request schemas of the drop-in endpoints: OpenAI chat completions and Anthropic messages.

Fields not listed here are dropped without a word (marshmallow EXCLUDE); tools, images and n > 1 are
refused with a 400. docs/compat.md lists what is honoured, refused and dropped.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from gateway.schemas.fields import StopSequences, StrictBoolean, StrictFloat, StrictInteger
from gateway.schemas.llm import MAX_MESSAGES, MAX_MODEL_NAME, check_text

UNSUPPORTED_OPENAI = ("tools", "tool_choice", "functions", "function_call", "audio")


class TextContent(fields.Field):
    """A string, or a list of {"type": "text", "text": ...} parts, joined into one string."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            text = value
        elif isinstance(value, list) and value:
            parts = []
            for part in value:
                if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise ValidationError("Only text content parts ({\"type\": \"text\", \"text\": ...}) are "
                                          "supported; images, audio, files and tool blocks are not yet.")
                parts.append(part["text"])
            text = "".join(parts)
        else:
            raise ValidationError("Must be a string or a non-empty list of text parts.")
        check_text(text, attr)
        return text


class OpenAIMessageSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    role = fields.String(required=True, validate=validate.OneOf(("system", "developer", "user", "assistant")))
    content = TextContent(required=True)


class StreamOptionsSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    include_usage = StrictBoolean(load_default=False)


class ChatCompletionSchema(Schema):
    """POST /v1/chat/completions."""

    class Meta:
        unknown = EXCLUDE

    model = fields.String(required=True, validate=validate.Length(min=1, max=MAX_MODEL_NAME))
    messages = fields.List(fields.Nested(OpenAIMessageSchema), required=True,
                           validate=validate.Length(min=1, max=MAX_MESSAGES))
    temperature = StrictFloat(load_default=None, allow_none=True, validate=validate.Range(min=0, max=2))
    top_p = StrictFloat(load_default=None, allow_none=True, validate=validate.Range(min=0, max=1))
    max_tokens = StrictInteger(load_default=None, allow_none=True, validate=validate.Range(min=1, max=1_000_000))
    max_completion_tokens = StrictInteger(load_default=None, allow_none=True,
                                          validate=validate.Range(min=1, max=1_000_000))
    stop = StopSequences(load_default=(), allow_none=True)
    stream = StrictBoolean(load_default=False, allow_none=True)
    stream_options = fields.Nested(StreamOptionsSchema, load_default=None, allow_none=True)
    n = StrictInteger(load_default=1, allow_none=True)
    user = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=256))

    @validates_schema(pass_original=True)
    def _supported(self, data, original, **_kwargs):
        if data.get("n") not in (None, 1):
            raise ValidationError("Only n=1 is supported.", "n")
        for name in UNSUPPORTED_OPENAI:
            if original.get(name):
                raise ValidationError(f"{name} is not supported by this gateway yet.", name)


class AnthropicMessageSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    role = fields.String(required=True, validate=validate.OneOf(("user", "assistant")))
    content = TextContent(required=True)


class MessagesSchema(Schema):
    """POST /v1/messages."""

    class Meta:
        unknown = EXCLUDE

    model = fields.String(required=True, validate=validate.Length(min=1, max=MAX_MODEL_NAME))
    max_tokens = StrictInteger(required=True, validate=validate.Range(min=1, max=1_000_000))
    messages = fields.List(fields.Nested(AnthropicMessageSchema), required=True,
                           validate=validate.Length(min=1, max=MAX_MESSAGES))
    system = TextContent(load_default=None)
    temperature = StrictFloat(load_default=None, validate=validate.Range(min=0, max=1))
    top_p = StrictFloat(load_default=None, validate=validate.Range(min=0, max=1))
    stop_sequences = StopSequences(load_default=())
    stream = StrictBoolean(load_default=False)

    @validates_schema(pass_original=True)
    def _supported(self, data, original, **_kwargs):
        for name in ("tools", "tool_choice", "thinking"):
            if original.get(name):
                raise ValidationError(f"{name} is not supported by this gateway yet.", name)
