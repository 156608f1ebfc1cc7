"""Strict JSON fields: numbers must be numbers (not strings or booleans), finite, and in range."""

from __future__ import annotations

import math

from marshmallow import ValidationError, fields


class StrictInteger(fields.Integer):
    """An integer given as a JSON integer; booleans and strings are refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("Must be an integer.")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictFloat(fields.Float):
    """A finite JSON number; booleans, strings, NaN and Infinity are refused."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValidationError("Must be a finite number.")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """true or false, nothing else."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("Must be true or false.")
        return value


class StopSequences(fields.Field):
    """OpenAI's `stop`: a string or a list of up to 4 non-empty strings; returned as a tuple."""

    max_items = 4

    def _deserialize(self, value, attr, data, **kwargs):
        if value is None:
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            raise ValidationError("Must be a non-empty string or a list of non-empty strings.")
        if len(items) > self.max_items:
            raise ValidationError(f"At most {self.max_items} stop sequences are allowed.")
        if any(len(i) > 200 for i in items):
            raise ValidationError("Each stop sequence must be at most 200 characters.")
        if any("\x00" in i or not _is_utf8(i) for i in items):
            raise ValidationError("Stop sequences must not contain NUL characters or lone surrogates.")
        return tuple(items)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(text: str, field: str) -> None:
    """Refuse NUL characters and lone surrogates, which no upstream accepts."""
    if "\x00" in text:
        raise ValidationError("Must not contain NUL characters.", field)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("Must be valid Unicode (no lone surrogates).", field) from None
