"""Drop-in Anthropic endpoints: POST /v1/messages and /v1/messages/count_tokens (key as x-api-key or Bearer)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from gateway.blueprints.body import load_body
from gateway.blueprints.caller import require_gateway_key, reserves_quota, user_rate_limit
from gateway.blueprints.completion_response import answer
from gateway.formats import anthropic_wire
from gateway.current import gateway_state
from gateway.schemas.compat import CountTokensSchema, MessagesSchema
from gateway.services.completions import CompletionPipeline

anthropic_bp = Blueprint("anthropic_compat", __name__, url_prefix="/v1")
anthropic_bp.error_format = "anthropic"  # errors in Anthropic's envelope, which the Anthropic SDK parses
anthropic_bp.before_request(require_gateway_key)
# Built once: load() keeps no state on the instance, so threads share it.
_MESSAGES = MessagesSchema()
_COUNT_TOKENS = CountTokensSchema()


@anthropic_bp.post("/messages")
@reserves_quota
@user_rate_limit
def messages():
    """The Anthropic Messages API over every catalog model."""
    given = anthropic_wire.completion_input(load_body(_MESSAGES), request.headers)
    return answer(given, "messages", anthropic_wire.message_body, anthropic_wire.stream_frames)


@anthropic_bp.post("/messages/count_tokens")
@user_rate_limit
def count_tokens():
    """Anthropic's token counting for a Claude model, asked of its upstream: nothing reserved or billed."""
    given = anthropic_wire.completion_input(load_body(_COUNT_TOKENS), request.headers)
    return jsonify({"input_tokens": CompletionPipeline(gateway_state()).count_tokens(given)})
