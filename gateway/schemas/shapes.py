"""Small strict readers for nested JSON request shapes (message parts, tools), naming the path of what is wrong.

marshmallow checks the top level of a request; these check what is inside it, in one pass that also turns
it into the neutral model, and raise ShapeError(path, message) which a schema field reports as a 400.
"""

from __future__ import annotations

import re

from marshmallow import ValidationError, fields

from gateway.schemas.fields import check_text

DATA_URL = re.compile(r"^data:(?P<media>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)$", re.DOTALL)
BASE64 = re.compile(r"^[A-Za-z0-9+/\s]*={0,2}\s*$")


class ShapeError(Exception):
    """What is wrong at path (dotted, relative to the field being read)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path, self.message = path, message


def obj(value, path: str, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> dict:
    """value as a JSON object with all of required, and no key outside required + optional."""
    if not isinstance(value, dict):
        raise ShapeError(path, "Must be a JSON object.")
    for name in value:
        if name not in required and name not in optional:
            raise ShapeError(join(path, name), "Unknown field.")
    for name in required:
        if name not in value:
            raise ShapeError(join(path, name), "Missing data for required field.")
    return value


def array(value, path: str, *, allow_empty: bool = False) -> list:
    if not isinstance(value, list) or (not value and not allow_empty):
        raise ShapeError(path, "Must be a non-empty list." if not allow_empty else "Must be a list.")
    return value


def text(value, path: str, *, allow_empty: bool = True, max_length: int | None = None) -> str:
    if not isinstance(value, str) or (not allow_empty and not value):
        raise ShapeError(path, "Must be a non-empty string." if not allow_empty else "Must be a string.")
    if max_length is not None and len(value) > max_length:
        raise ShapeError(path, f"Must be at most {max_length} characters.")
    try:
        check_text(value, path)
    except ValidationError as error:
        raise ShapeError(path, " ".join(error.messages)) from None
    return value


def optional_text(value, path: str, **kwargs) -> str | None:
    return None if value is None else text(value, path, **kwargs)


def boolean(value, path: str) -> bool:
    if not isinstance(value, bool):
        raise ShapeError(path, "Must be true or false.")
    return value


def integer(value, path: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        raise ShapeError(path, "Must be an integer." if minimum is None else f"Must be an integer >= {minimum}.")
    return value


def one_of(value, path: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ShapeError(path, f"Must be one of: {', '.join(choices)}.")
    return value


def cache_control(value, path: str) -> dict | None:
    """Anthropic's {"type": "ephemeral", "ttl"?: "5m" | "1h"} (or null)."""
    if value is None:
        return None
    obj(value, path, ("type",), ("ttl",))
    one_of(value["type"], join(path, "type"), ("ephemeral",))
    if "ttl" in value:
        one_of(value["ttl"], join(path, "ttl"), ("5m", "1h"))
    return dict(value)


def data_url(url: str, path: str) -> tuple[str, str]:
    """(media type, base64 data) of a data: URL."""
    match = DATA_URL.match(url)
    if match is None or not BASE64.match(match["data"][:4096]):
        raise ShapeError(path, "Must be an http(s) URL or a data:<media type>;base64,<data> URL.")
    return match["media"], match["data"]


def is_web_url(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def join(path: str, name) -> str:
    return f"{path}.{name}" if path else str(name)


class Shaped(fields.Field):
    """A marshmallow field whose value is read by parse(value) -> neutral objects; ShapeErrors become 400s."""

    json_schema: dict = {}

    def parse(self, value):  # pragma: no cover - each subclass says
        raise NotImplementedError

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return self.parse(value)
        except ShapeError as error:
            raise ValidationError({error.path or "_schema": [error.message]} if error.path
                                  else error.message) from None
