"""Drop-in Anthropic endpoint: POST /v1/messages (key as x-api-key or Bearer)."""

from __future__ import annotations

from flask import Blueprint, request

from gateway.blueprints.body import load_body
from gateway.blueprints.caller import require_gateway_key, reserves_quota, user_rate_limit
from gateway.blueprints.completion_response import answer
from gateway.formats import anthropic_wire
from gateway.schemas.compat import MessagesSchema

anthropic_bp = Blueprint("anthropic_compat", __name__, url_prefix="/v1")
anthropic_bp.error_format = "anthropic"  # errors in Anthropic's envelope, which the Anthropic SDK parses
anthropic_bp.before_request(require_gateway_key)
# Built once: load() keeps no state on the instance, so threads share it.
_MESSAGES = MessagesSchema()


@anthropic_bp.post("/messages")
@reserves_quota
@user_rate_limit
def messages():
    """The Anthropic Messages API over every catalog model."""
    given = anthropic_wire.completion_input(load_body(_MESSAGES), request.headers)
    return answer(given, "messages", anthropic_wire.message_body, anthropic_wire.stream_frames)
