"""Server-sent events framing: one frame per event, JSON data."""

from __future__ import annotations

import json


def sse_event(data: dict | str, event: str | None = None) -> str:
    """One SSE frame; dicts are sent as compact JSON."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {payload}\n\n"
