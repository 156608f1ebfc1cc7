"""Run the one pipeline for a completion endpoint and answer in that endpoint's format."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from flask import Response, g, jsonify, stream_with_context

from gateway.blueprints.caller import request_meta
from gateway.services.completions import Completion, CompletionInput, CompletionPipeline
from gateway.current import gateway_state


def answer(given: CompletionInput, endpoint: str, body: Callable[[Completion], dict],
           frames: Callable[[str, object, Iterator], Iterator[str]]):
    """JSON from body(completion), or SSE from frames(request_id, entry, events) when streaming."""
    pipeline = CompletionPipeline(gateway_state())
    meta = request_meta(endpoint)
    if given.stream:
        entry, events = pipeline.stream(g.caller, given, meta)
        return sse_response(frames(meta.request_id, entry, events))
    return jsonify(body(pipeline.complete(g.caller, given, meta)))


def sse_response(frames: Iterator[str]) -> Response:
    """text/event-stream that keeps the app context alive until the stream ends, unbuffered by proxies."""
    response = Response(stream_with_context(frames), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response
