"""The floor of `make bench-compare`: what any proxy on our stack costs, with no governance at all.

A bare Flask view under the gateway's gunicorn gthread settings that forwards the parsed request body to
the upstream with one pooled `requests.Session` and returns the upstream's JSON; streamed requests are
relayed chunk by chunk as they arrive. No auth, rate limits, quotas, audit, metrics or logging, so the
gateway's CPU and latency divided by the floor's is what governance costs on Flask + gunicorn +
requests. bench/harness.py starts it as `gunicorn 'floor_app:create_app()'` with FLOOR_UPSTREAM set to
an OpenAI-style base URL (e.g. http://127.0.0.1:8080/v1).
"""

from __future__ import annotations

import os

import requests
from flask import Flask, Response, request
from requests.adapters import HTTPAdapter


def pooled_session(pool_size: int) -> requests.Session:
    """Keep-alive to the upstream for every serving thread; no environment proxies (as the gateway)."""
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0))
    return session


def create_app(upstream: str | None = None, pool_size: int | None = None) -> Flask:
    """The floor app: POST /v1/chat/completions forwarded to `upstream` + /chat/completions."""
    app = Flask(__name__)
    url = (upstream or os.environ["FLOOR_UPSTREAM"]).rstrip("/") + "/chat/completions"
    session = pooled_session(pool_size or int(os.environ.get("FLOOR_POOL_SIZE", "64")))

    @app.post("/v1/chat/completions")
    def chat_completions():
        body = request.get_json()
        if body.get("stream"):
            answer = session.post(url, json=body, stream=True, timeout=(5, 120))
            return Response(answer.iter_content(chunk_size=None), status=answer.status_code,
                            content_type=answer.headers.get("Content-Type"))
        answer = session.post(url, json=body, timeout=(5, 120))
        return answer.json(), answer.status_code

    @app.get("/health")
    def health():
        return "ok"

    return app
