"""Drop-in Anthropic endpoint: POST /v1/messages (key as x-api-key or Bearer)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from gateway.blueprints.body import load_body
from gateway.blueprints.caller import request_meta, require_gateway_key, user_rate_limit
from gateway.formats import anthropic_wire
from gateway.formats.sse import sse_response
from gateway.schemas.compat import MessagesSchema
from gateway.services.completions import CompletionPipeline
from gateway.state import gateway_state

anthropic_bp = Blueprint("anthropic_compat", __name__, url_prefix="/v1")
anthropic_bp.before_request(require_gateway_key)


@anthropic_bp.post("/messages")
@user_rate_limit
def messages():
    """The Anthropic Messages API over every catalog model."""
    given = anthropic_wire.completion_input(load_body(MessagesSchema()))
    pipeline = CompletionPipeline(gateway_state())
    meta = request_meta("messages")
    if given.stream:
        entry, events = pipeline.stream(g.caller, given, meta)
        return sse_response(anthropic_wire.stream_frames(meta.request_id, entry, events))
    return jsonify(anthropic_wire.message_body(pipeline.complete(g.caller, given, meta)))
