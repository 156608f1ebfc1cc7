"""Run the one pipeline for a completion endpoint and answer in that endpoint's format."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from flask import Flask, Response, jsonify, stream_with_context

from gateway.blueprints.caller import refresh_caller, request_meta
from gateway.context import request_globals, this_app
from gateway.errors import CallerChanged
from gateway.services.completions import Completion, CompletionInput, CompletionPipeline
from gateway.current import gateway_state


def answer(given: CompletionInput, endpoint: str, body: Callable[[Completion], dict],
           frames: Callable[[str, object, Iterator], Iterator[str]]):
    """JSON from body(completion), or SSE from frames(request_id, entry, events) when streaming.

    A caller authenticated from the key cache whose key or limits changed meanwhile is refused by the
    reservation before anything was written (CallerChanged): authenticated afresh (401/403 if the key may no
    longer call), the request runs once more with what was just read.
    """
    try:
        return _answer(given, endpoint, body, frames)
    except CallerChanged:
        refresh_caller()
        return _answer(given, endpoint, body, frames)


def _answer(given: CompletionInput, endpoint: str, body: Callable[[Completion], dict],
            frames: Callable[[str, object, Iterator], Iterator[str]]):
    pipeline = CompletionPipeline(gateway_state())
    meta = request_meta(endpoint)
    caller = request_globals().caller
    if given.stream:
        entry, events = pipeline.stream(caller, given, meta)
        try:
            on_close = _in_app_context(this_app(), events.close)
            return sse_response(frames(meta.request_id, entry, events), on_close=on_close)
        except BaseException:
            events.close()
            raise
    return jsonify(body(pipeline.complete(caller, given, meta)))


def sse_response(frames: Iterator[str], on_close: Callable[[], None] | None = None) -> Response:
    """text/event-stream that keeps the app context alive until the stream ends, unbuffered by proxies.

    on_close runs when the server closes the response, whether or not the frames were ever iterated (a
    client gone before the first byte): the stream's settlement must not depend on iteration.
    """
    response = Response(stream_with_context(frames), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    if on_close is not None:
        response.call_on_close(on_close)
    return response


def _in_app_context(app: Flask, action: Callable[[], None]) -> Callable[[], None]:
    """action, run inside its own app context: response close callbacks run after the request's is gone."""
    def run() -> None:
        with app.app_context():
            action()
    return run
