"""Request schemas of the native /v1/llm API."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from gateway.schemas.fields import StopSequences, StrictBoolean, StrictFloat, StrictInteger

ROLES = ("system", "developer", "user", "assistant")
PROVIDERS = ("auto", "openai", "anthropic", "mock")
MAX_MESSAGES = 1000
MAX_MODEL_NAME = 100


class MessageSchema(Schema):
    """One turn: a role and its text."""

    class Meta:
        unknown = RAISE

    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    content = fields.String(required=True)

    @validates_schema
    def _clean_text(self, data, **_kwargs):
        check_text(data.get("content", ""), "content")


def check_text(text: str, field: str) -> None:
    """Refuse NUL characters and lone surrogates, which no upstream accepts."""
    if "\x00" in text:
        raise ValidationError("Must not contain NUL characters.", field)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("Must be valid Unicode (no lone surrogates).", field) from None


class CompleteRequestSchema(Schema):
    """POST /v1/llm/complete."""

    class Meta:
        unknown = RAISE

    provider = fields.String(load_default="auto", validate=validate.OneOf(PROVIDERS))
    model = fields.String(load_default=None, validate=validate.Length(min=1, max=MAX_MODEL_NAME))
    messages = fields.List(fields.Nested(MessageSchema), required=True,
                           validate=validate.Length(min=1, max=MAX_MESSAGES))
    temperature = StrictFloat(load_default=None, validate=validate.Range(min=0, max=2))
    top_p = StrictFloat(load_default=None, validate=validate.Range(min=0, max=1))
    max_tokens = StrictInteger(load_default=None, validate=validate.Range(min=1, max=1_000_000))
    stop = StopSequences(load_default=())
    stream = StrictBoolean(load_default=False)
