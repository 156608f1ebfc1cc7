"""Server-sent events: framing and a response that is flushed per event, unbuffered by proxies."""

from __future__ import annotations

import json
from collections.abc import Iterator

from flask import Response, stream_with_context


def sse_event(data: dict | str, event: str | None = None) -> str:
    """One SSE frame; dicts are sent as compact JSON."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {payload}\n\n"


def sse_response(frames: Iterator[str]) -> Response:
    """text/event-stream that keeps the app context alive until the stream ends."""
    response = Response(stream_with_context(frames), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response
