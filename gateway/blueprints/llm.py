"""The native API: POST /v1/llm/complete, GET /v1/llm/models, GET /v1/llm/quota."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from gateway.blueprints.body import load_body
from gateway.blueprints.caller import require_gateway_key, reserves_quota, user_rate_limit
from gateway.blueprints.completion_response import answer
from gateway.formats import native
from gateway.schemas.llm import CompleteRequestSchema
from gateway.services.model_listing import list_models
from gateway.services.quotas import quota_status
from gateway.current import gateway_state

llm_bp = Blueprint("llm", __name__, url_prefix="/v1/llm")
llm_bp.before_request(require_gateway_key)
# Built once: load() keeps no state on the instance, so threads share it.
_COMPLETE_REQUEST = CompleteRequestSchema()


@llm_bp.post("/complete")
@reserves_quota
@user_rate_limit
def complete():
    """One completion, streamed as SSE when "stream": true."""
    given = native.completion_input(load_body(_COMPLETE_REQUEST))
    return answer(given, "llm.complete", native.completion_body, native.stream_frames)


@llm_bp.get("/models")
@user_rate_limit
def models():
    """Every catalog model with availability, limits and prices."""
    return jsonify(data=list_models(gateway_state()))


@llm_bp.get("/quota")
@user_rate_limit
def quota():
    """The caller's quotas (limit, used, reserved, remaining, resets_at), concurrency cap and rate limit."""
    settings = gateway_state().settings
    body = quota_status(g.caller.user_id, g.caller.limits)
    body["rate_limit"] = {"limit": g.caller.limits.rate_limit_max, "window_s": settings.rate_limit_window_s}
    return jsonify(body)
