"""Per-request observability: request metrics, the X-Gateway-Overhead-Ms header, one JSON access log line.

Overhead is the time the gateway itself spent on a request: total time minus the time spent waiting on
the upstream (reported by the pipeline through metrics.completion_settled). A streamed response is
measured when its last byte is sent, so its header carries no overhead (it is not known yet).
The access log line names the route template, never the query string, a header, a key or a prompt.
"""

from __future__ import annotations

import logging
import time
from typing import NamedTuple

from flask import Flask, Response

from gateway import metrics
from gateway.context import request_globals, this_request
from gateway.net import client_ip

access_log = logging.getLogger("gateway.access")
OVERHEAD_HEADER = "X-Gateway-Overhead-Ms"
UNMATCHED_ROUTE = "unmatched"


class AccessFacts(NamedTuple):
    """What the access log and metrics need, captured while the request context is still alive."""

    started_at: float
    request_id: str | None
    method: str
    route: str
    client_ip: str
    user_id: int | None
    key_prefix: str | None
    stream: bool


def register_observability(app: Flask) -> None:
    """Measure every request (metrics, overhead header, access log); /metrics is a blueprint."""
    app.before_request(_mark_start)
    app.after_request(_observe)


def _mark_start() -> None:
    """request_context sets g.started_at first; this keeps a start time if it is registered alone."""
    metrics.request_started()
    here = request_globals()
    if here.get("started_at") is None:
        here.started_at = time.perf_counter()


def _observe(response: Response) -> Response:
    """Record a finished response now, or a streamed one when its last byte has been sent."""
    streamed = response.is_streamed
    facts = _request_facts(streamed)
    if streamed:
        response.call_on_close(lambda: _record(facts, response.status_code, metrics.upstream_latency_ms()))
        return response
    overhead_ms = _record(facts, response.status_code, metrics.upstream_latency_ms())
    # add, not item assignment (a scan of every header): nothing else sets this header.
    response.headers.add(OVERHEAD_HEADER, str(overhead_ms))
    return response


def _request_facts(streamed: bool) -> AccessFacts:
    here, served = request_globals(), this_request()
    caller = here.get("caller")
    rule = served.url_rule
    return AccessFacts(
        started_at=here.get("started_at") or time.perf_counter(),
        request_id=here.get("request_id"),
        method=served.method,
        route=rule.rule if rule is not None else UNMATCHED_ROUTE,
        client_ip=client_ip(),
        user_id=getattr(caller, "user_id", None),
        key_prefix=getattr(caller, "key_prefix", None),
        stream=streamed,
    )


def _record(facts: AccessFacts, status: int, upstream_ms: int) -> int:
    """Report one request to metrics and the access log; returns its overhead in milliseconds."""
    latency_s = time.perf_counter() - facts.started_at
    overhead_s = max(latency_s - upstream_ms / 1000, 0.0)
    metrics.request_finished(facts.method, facts.route, status, latency_s, overhead_s)
    overhead_ms = round(overhead_s * 1000, 1)
    access_log.info("request", extra={
        "request_id": facts.request_id,
        "method": facts.method,
        "route": facts.route,
        "status": status,
        "latency_ms": round(latency_s * 1000, 1),
        "overhead_ms": overhead_ms,
        "upstream_ms": upstream_ms,
        "stream": facts.stream,
        "client_ip": facts.client_ip,
        "user_id": facts.user_id,
        "key_prefix": facts.key_prefix,
    })
    return overhead_ms
