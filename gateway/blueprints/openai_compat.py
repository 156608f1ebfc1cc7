"""Drop-in OpenAI endpoints: POST /v1/chat/completions, GET /v1/models and GET /v1/models/<model>."""

from __future__ import annotations

from functools import partial

from flask import Blueprint, jsonify

from gateway.blueprints.body import load_body
from gateway.blueprints.caller import require_gateway_key, reserves_quota, user_rate_limit
from gateway.blueprints.completion_response import answer
from gateway.formats import openai_wire
from gateway.schemas.compat import ChatCompletionSchema
from gateway.services.model_listing import list_models, routable_model
from gateway.current import gateway_state

openai_bp = Blueprint("openai_compat", __name__, url_prefix="/v1")
openai_bp.before_request(require_gateway_key)
# Built once: load() keeps no state on the instance, so threads share it.
_CHAT_COMPLETION = ChatCompletionSchema()


@openai_bp.post("/chat/completions")
@reserves_quota
@user_rate_limit
def chat_completions():
    """The OpenAI chat completions API over every catalog model."""
    data = load_body(_CHAT_COMPLETION)
    frames = partial(openai_wire.stream_frames, with_usage=openai_wire.include_usage(data))
    return answer(openai_wire.completion_input(data), "chat.completions", openai_wire.completion_body, frames)


@openai_bp.get("/models")
@user_rate_limit
def models():
    """The models this caller can use, in a list both OpenAI and Anthropic SDKs read."""
    return jsonify(openai_wire.model_list(list_models(gateway_state(), only_available=True)))


@openai_bp.get("/models/<model>")
@user_rate_limit
def retrieve_model(model: str):
    """One routable model by id or alias, as both SDKs' models.retrieve read it; 404 for any other name."""
    return jsonify(openai_wire.model_object(routable_model(gateway_state(), model)))
