"""Prometheus metrics: the names the pipeline reports to. Never a key, prompt or user text in a label.

Instruments are built on first use in a private registry. When PROMETHEUS_MULTIPROC_DIR is set (gunicorn,
see deploy/gunicorn.conf.py) prometheus_client writes every value to a per-process file and exposition()
sums the files of all workers; otherwise the private registry is exposed as is.
"""

from __future__ import annotations

import functools
import os
from contextvars import ContextVar
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.money import usd_number

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
OVERHEAD_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
# Per thread of a gthread worker, so per request: reset when a request starts (observability.py).
_upstream_wait_ms: ContextVar[int] = ContextVar("upstream_wait_ms", default=0)


@dataclass(frozen=True)
class Instruments:
    """Every series the gateway exports."""

    registry: CollectorRegistry
    requests: Counter
    request_latency: Histogram
    overhead: Histogram
    upstream_latency: Histogram
    completions: Counter
    tokens: Counter
    cost: Counter
    rate_limited: Counter
    quota_rejected: Counter
    streams_in_flight: Gauge
    upstream_requests: Counter
    upstream_failures: Counter
    upstream_fallbacks: Counter
    upstream_cooldowns: Counter


@functools.cache
def instruments() -> Instruments:
    """Build the instruments once per process (after gunicorn's fork, so files are per worker)."""
    registry = CollectorRegistry(auto_describe=True)
    return Instruments(
        registry=registry,
        requests=Counter("gateway_http_requests", "HTTP requests answered, by route template and status.",
                         ["method", "route", "status"], registry=registry),
        request_latency=Histogram("gateway_http_request_duration_seconds",
                                  "Time from request start to the last byte, by route template.",
                                  ["route"], buckets=LATENCY_BUCKETS, registry=registry),
        overhead=Histogram("gateway_overhead_seconds",
                           "Time spent in the gateway itself: total minus time waiting on the upstream.",
                           ["route"], buckets=OVERHEAD_BUCKETS, registry=registry),
        upstream_latency=Histogram("gateway_upstream_latency_seconds", "Time spent waiting on the provider.",
                                   ["provider", "model"], buckets=LATENCY_BUCKETS, registry=registry),
        completions=Counter("gateway_completions", "Completions by final audit status.",
                            ["provider", "model", "status"], registry=registry),
        tokens=Counter("gateway_tokens", "Tokens billed, by provider, model and kind (prompt|completion).",
                       ["provider", "model", "kind"], registry=registry),
        cost=Counter("gateway_cost_usd", "Money billed to callers, in USD.", ["provider", "model"],
                     registry=registry),
        rate_limited=Counter("gateway_rate_limited", "Requests refused by a rate limit, by scope.",
                             ["scope"], registry=registry),
        quota_rejected=Counter("gateway_quota_rejected", "Requests refused by a quota, by quota.",
                               ["quota"], registry=registry),
        streams_in_flight=Gauge("gateway_streams_in_flight", "Streams to clients open right now.",
                                registry=registry, multiprocess_mode="livesum"),
        upstream_requests=Counter("gateway_upstream_requests", "Calls sent to an upstream (one per attempt), "
                                  "by upstream and model.", ["upstream", "model"], registry=registry),
        upstream_failures=Counter("gateway_upstream_failures", "Upstream calls that failed, by upstream, model "
                                  "and error type.", ["upstream", "model", "error_type"], registry=registry),
        upstream_fallbacks=Counter("gateway_upstream_fallbacks", "Requests moved on to the next candidate after "
                                   "this upstream failed, by upstream and model.", ["upstream", "model"],
                                   registry=registry),
        upstream_cooldowns=Counter("gateway_upstream_cooldowns", "Times a deployment started a cooldown (per "
                                   "process), by upstream and model.", ["upstream", "model"], registry=registry),
    )


@functools.lru_cache(maxsize=4096)
def series(metric, *label_values: str):
    """metric.labels(*label_values), looked up once: prometheus_client validates and locks on every call
    (~3 us; nine per completion), and the labelled series it returns is the same object each time."""
    return metric.labels(*label_values)


def completion_settled(provider: str, model: str, status: str, prompt_tokens: int, completion_tokens: int,
                       cost_nanousd: int, upstream_latency_ms: int | None) -> None:
    """A completion reached its final audit status."""
    meters = instruments()
    series(meters.completions, provider, model, status).inc()
    if prompt_tokens:
        series(meters.tokens, provider, model, "prompt").inc(prompt_tokens)
    if completion_tokens:
        series(meters.tokens, provider, model, "completion").inc(completion_tokens)
    if cost_nanousd:
        series(meters.cost, provider, model).inc(usd_number(cost_nanousd))
    if upstream_latency_ms is not None:
        series(meters.upstream_latency, provider, model).observe(upstream_latency_ms / 1000)
        _upstream_wait_ms.set(_upstream_wait_ms.get() + upstream_latency_ms)


def upstream_requested(upstream: str, model: str) -> None:
    """A call is being sent to an upstream."""
    series(instruments().upstream_requests, upstream, model).inc()


def upstream_failed(upstream: str, model: str, error_type: str) -> None:
    """A call to an upstream failed."""
    series(instruments().upstream_failures, upstream, model, error_type).inc()


def upstream_fallback(upstream: str, model: str) -> None:
    """A request left this upstream for its next candidate."""
    series(instruments().upstream_fallbacks, upstream, model).inc()


def upstream_cooled_down(upstream: str, model: str) -> None:
    """A deployment started a cooldown."""
    series(instruments().upstream_cooldowns, upstream, model).inc()


def quota_rejected(quota: str) -> None:
    """A request was refused by a quota."""
    series(instruments().quota_rejected, quota).inc()


def rate_limited(scope: str) -> None:
    """A request was refused by a rate limit (user, ip or auth)."""
    series(instruments().rate_limited, scope).inc()


def stream_opened() -> None:
    """A stream to a client began."""
    instruments().streams_in_flight.inc()


def stream_closed() -> None:
    """A stream to a client ended, however it ended."""
    instruments().streams_in_flight.dec()


def request_finished(method: str, route: str, status: int, latency_s: float, overhead_s: float) -> None:
    """An HTTP request was answered (its last byte sent, for streams)."""
    meters = instruments()
    series(meters.requests, method, route, str(status)).inc()
    series(meters.request_latency, route).observe(latency_s)
    series(meters.overhead, route).observe(max(overhead_s, 0.0))


def request_started() -> None:
    """A new request has waited on no provider yet."""
    _upstream_wait_ms.set(0)


def upstream_latency_ms() -> int:
    """Milliseconds the current request has waited on providers so far."""
    return _upstream_wait_ms.get()


def exposition() -> tuple[bytes, str]:
    """The text exposition of every series (summed over all workers in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(instruments().registry), CONTENT_TYPE_LATEST
