"""Drop-in OpenAI endpoints: POST /v1/chat/completions and GET /v1/models."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from gateway.blueprints.body import load_body
from gateway.blueprints.caller import request_meta, require_gateway_key, user_rate_limit
from gateway.formats import openai_wire
from gateway.formats.sse import sse_response
from gateway.schemas.compat import ChatCompletionSchema
from gateway.services.completions import CompletionPipeline
from gateway.services.model_listing import list_models
from gateway.state import gateway_state

openai_bp = Blueprint("openai_compat", __name__, url_prefix="/v1")
openai_bp.before_request(require_gateway_key)


@openai_bp.post("/chat/completions")
@user_rate_limit
def chat_completions():
    """The OpenAI chat completions API over every catalog model."""
    data = load_body(ChatCompletionSchema())
    given = openai_wire.completion_input(data)
    pipeline = CompletionPipeline(gateway_state())
    meta = request_meta("chat.completions")
    if given.stream:
        entry, events = pipeline.stream(g.caller, given, meta)
        return sse_response(openai_wire.stream_frames(meta.request_id, entry, events,
                                                      openai_wire.include_usage(data)))
    return jsonify(openai_wire.completion_body(pipeline.complete(g.caller, given, meta)))


@openai_bp.get("/models")
@user_rate_limit
def models():
    """The models this caller can use, in a list both OpenAI and Anthropic SDKs read."""
    return jsonify(openai_wire.model_list(list_models(gateway_state(), only_available=True)))
