"""Reading a JSON request body once: content type, size, syntax, then the marshmallow schema."""

from __future__ import annotations

from flask import request
from marshmallow import Schema

from gateway.errors import InvalidRequest


def load_body(schema: Schema):
    """Validate the request body with schema; every failure is a 400 naming what is wrong."""
    if not request.is_json:
        raise InvalidRequest("Content-Type must be application/json.", code="unsupported_content_type",
                             param="Content-Type")
    data = request.get_json(silent=True)
    if data is None:
        raise InvalidRequest("Request body is not valid JSON.", code="invalid_json")
    if not isinstance(data, dict):
        raise InvalidRequest("Request body must be a JSON object.", code="invalid_json")
    return schema.load(data)


def load_query(schema: Schema):
    """Validate query-string arguments with schema."""
    return schema.load(request.args.to_dict())
