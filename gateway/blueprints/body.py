"""Reading a JSON request body once: content type, size, syntax, then the marshmallow schema."""

from __future__ import annotations

import json
import math

from flask import request
from marshmallow import Schema

from gateway.errors import InvalidRequest


def load_body(schema: Schema):
    """Validate the request body with schema; every failure is a 400 naming what is wrong."""
    if not request.is_json:
        raise InvalidRequest("Content-Type must be application/json.", code="unsupported_content_type",
                             param="Content-Type")
    data = _strict_json(request.get_data(cache=True))
    if data is None:
        raise InvalidRequest("Request body is not valid JSON.", code="invalid_json")
    if not isinstance(data, dict):
        raise InvalidRequest("Request body must be a JSON object.", code="invalid_json")
    return schema.load(data)


def _strict_json(raw: bytes):
    """RFC 8259 JSON only: NaN, Infinity and numbers that overflow to infinity are refused, even in fields we
    ignore, naming where they are; nesting too deep for the parser is a 400, not a RecursionError (a 500)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    where = _first_non_finite(data)
    if where is not None:
        raise InvalidRequest(f"{where or 'body'}: NaN and Infinity are not JSON numbers; send a finite number.",
                             code="invalid_json", param=where or None)
    return data


def _first_non_finite(data) -> str | None:
    """The dotted path of the first non-finite number in a parsed body (iterative: bodies nest deeply)."""
    pending = [("", data)]
    while pending:
        path, node = pending.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return path
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        pending.extend((f"{path}.{key}" if path else str(key), value) for key, value in reversed(list(children)))
    return None


def load_query(schema: Schema):
    """Validate query-string arguments with schema."""
    return schema.load(request.args.to_dict())
