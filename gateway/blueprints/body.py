"""Reading a JSON request body once: content type, size, syntax, then the marshmallow schema."""

from __future__ import annotations

import json
import math

from marshmallow import Schema

from gateway.context import this_request

from gateway.errors import InvalidRequest


def load_body(schema: Schema):
    """Validate the request body with schema; every failure is a 400 naming what is wrong."""
    served = this_request()
    if not served.is_json:
        raise InvalidRequest("Content-Type must be application/json.", code="unsupported_content_type",
                             param="Content-Type")
    data = _strict_json(served.get_data(cache=True))
    if data is None:
        raise InvalidRequest("Request body is not valid JSON.", code="invalid_json")
    if not isinstance(data, dict):
        raise InvalidRequest("Request body must be a JSON object.", code="invalid_json")
    return schema.load(data)


class _NotFinite(ValueError):
    """A number JSON cannot carry: NaN, Infinity, or a literal too large for a double."""


def _refuse_constant(name: str):
    raise _NotFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotFinite(text)
    return value


def _strict_json(raw: bytes):
    """RFC 8259 JSON only: NaN, Infinity and numbers that overflow to infinity are refused, even in fields we
    ignore; nesting too deep for the parser is a 400, not a RecursionError (a 500).

    The checks are parser hooks (O(1) per number, inside json.loads), not a walk of the parsed tree: any
    body up to MAX_REQUEST_BYTES costs about what json.loads costs (bench/json_validation.py).
    """
    try:
        return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotFinite as refused:
        where = _top_level_non_finite(raw)
        raise InvalidRequest(f"{where or 'body'}: {str(refused)[:24]} is not a JSON number (NaN, Infinity and "
                             "numbers too large for a double are refused); send a finite number.",
                             code="invalid_json", param=where) from None
    except (ValueError, RecursionError):
        return None


def _top_level_non_finite(raw: bytes) -> str | None:
    """The top-level field holding the refused number, if it is one (one more parse, no walk of the tree)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    return next((key for key, value in data.items() if isinstance(value, float) and not math.isfinite(value)), None)


def load_query(schema: Schema):
    """Validate query-string arguments with schema."""
    return schema.load(this_request().args.to_dict())
