"""Which upstream answers a request: its candidates are the model's deployments (shuffled by weight), then
each fallback model's, tried in order until one answers or fails in a way the next cannot fix.

A failure falls back when another upstream may well succeed: connection errors, timeouts, 408, 429, 5xx,
529 and unreadable replies. It never does for a 4xx refusal (of the request, or of this gateway's
credentials), and never once a stream has produced its first chunk: the caller has bytes by then.
A deployment failing UPSTREAM_COOLDOWN_FAILURES times in a row is skipped for UPSTREAM_COOLDOWN_S, per
process (services/upstream_health.py). When every candidate is cooling down they are all tried anyway,
in catalog order: a likely failure beats a certain one.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from gateway import metrics
from gateway.errors import InvalidRequest
from gateway.providers.base import ChatChunk, ChatRequest, ChatResult, ProviderError, UpstreamInvalidRequest
from gateway.providers.registry import ProviderRegistry
from gateway.services.catalog import Deployment, ModelCatalog, ModelEntry
from gateway.services.route import Attempt, Candidate, Route, Target, weighted_order
from gateway.services.upstream_health import CooldownPolicy, DeploymentHealth

log = logging.getLogger("gateway.routing")
RETRYABLE_4XX = (408, 429)


def falls_back(error: ProviderError) -> bool:
    """Whether the next candidate should be tried after this failure (see the module docstring)."""
    status = error.upstream_status
    if isinstance(error, UpstreamInvalidRequest):
        return False
    return status is None or not 400 <= status < 500 or status in RETRYABLE_4XX


def counts_against(error: ProviderError) -> bool:
    """Whether the failure is the upstream's (it counts toward a cooldown) rather than the request's."""
    return not isinstance(error, UpstreamInvalidRequest)


class Router:
    """The routing table of one app: every catalog model's targets, their health, and the calls."""

    def __init__(self, catalog: ModelCatalog, registry: ProviderRegistry, policy: CooldownPolicy,
                 rng: Callable[[], float] = random.random) -> None:
        self._catalog = catalog
        self._rng = rng
        self._targets = {entry.id: tuple(_target(entry, d, registry, policy) for d in entry.deployments)
                         for entry in catalog.entries()}

    def targets(self, model_id: str) -> tuple[Target, ...]:
        """Every deployment of a model, callable or not."""
        return self._targets[model_id]

    def routable(self, entry: ModelEntry) -> bool:
        """Whether a request for entry can reach some upstream (its own deployments or a fallback's)."""
        return any(t.adapter for m in (entry.id, *entry.fallbacks) for t in self._targets[m])

    def availability(self, entry: ModelEntry) -> str:
        """available (a deployment of its own is ready), fallback_only (only a fallback model's is),
        cooling_down (every callable one is; requests still try them) or unavailable (none is callable)."""
        own = [t for t in self._targets[entry.id] if t.adapter]
        others = [t for m in entry.fallbacks for t in self._targets[m] if t.adapter]
        if any(not t.health.cooling() for t in own):
            return "available"
        if any(not t.health.cooling() for t in others):
            return "fallback_only"
        return "cooling_down" if own or others else "unavailable"

    def routable_ids(self) -> list[str]:
        """Ids of the models a request can be routed for, in catalog order."""
        return [entry.id for entry in self._catalog.entries() if self.routable(entry)]

    def plan(self, entry: ModelEntry, build: Callable[[ModelEntry], ChatRequest], provider: str = "auto") -> Route:
        """The candidates for a request, in trial order; InvalidRequest/UpstreamInvalidRequest when the
        requested model cannot take it. Fallback models that cannot take it are left out."""
        if provider != "auto" and not any(t.matches(provider) for t in self._targets[entry.id]):
            raise InvalidRequest(f"Model {entry.id!r} is served by {entry.provider!r}, not {provider!r}. "
                                 "Use provider 'auto' or the right provider.", code="provider_mismatch",
                                 param="provider")
        groups = [self._candidates(entry, build, provider)]
        for fallback in (self._catalog.resolve(name) for name in entry.fallbacks):
            try:
                groups.append(self._candidates(fallback, build, provider))
            except (InvalidRequest, UpstreamInvalidRequest) as refusal:
                log.info("fallback skipped", extra={"model": fallback.id, "reason": refusal.message})
        if not any(groups):
            raise InvalidRequest(f"Provider {entry.provider!r} of model {entry.id!r} is not configured on this "
                                 f"gateway. Available models: {self.available_text()}.",
                                 code="provider_unavailable", param="model")
        return Route(entry, self._order(groups))

    def available_text(self) -> str:
        """Routable model ids for error messages."""
        return ", ".join(self.routable_ids()) or "none (configure OPENAI_API_KEY, ANTHROPIC_API_KEY or MOCK_PROVIDER)"

    def _candidates(self, entry: ModelEntry, build, provider: str) -> list[Candidate]:
        """entry's callable targets with the request as each takes it; raises when the model refuses it."""
        targets = [t for t in self._targets[entry.id] if t.adapter and (provider == "auto" or t.matches(provider))]
        if not targets:
            return []
        request = build(entry)
        candidates = [Candidate(t, _for_deployment(request, t.deployment.upstream_id)) for t in targets]
        for candidate in candidates:
            candidate.target.adapter.validate(candidate.request)
        return candidates

    def _order(self, groups: list[list[Candidate]]) -> list[Candidate]:
        """Healthy candidates, model by model, each model's shuffled by weight; all of them if none is."""
        healthy: list[Candidate] = []
        for group in groups:
            healthy += weighted_order([c for c in group if not c.target.health.cooling()], self._rng)
        return healthy or [c for group in groups for c in group]

    def complete(self, route: Route) -> ChatResult:
        """The first answer along the route; raises the last failure when no candidate answered."""
        while True:
            candidate, started = route.current, self._begin(route.current)
            try:
                result = candidate.target.adapter.complete(candidate.request)
            except ProviderError as error:
                self._failed(route, error, started)
                continue
            self._answered(route, started)
            return result

    def open_stream(self, route: Route) -> tuple[ChatChunk, Iterator[ChatChunk]]:
        """The first chunk along the route and the rest of its stream; falls back only before that chunk."""
        while True:
            candidate, started, chunks = route.current, self._begin(route.current), None
            try:
                chunks = candidate.target.adapter.stream(candidate.request)
                first = next(chunks, None) or ChatChunk(finish_reason="stop")
            except ProviderError as error:
                if chunks is not None:
                    chunks.close()
                self._failed(route, error, started)
                continue
            self._answered(route, started)
            return first, _watched(candidate.target, chunks)

    @staticmethod
    def count_tokens(route: Route) -> int:
        """The input tokens of the route's first candidate whose upstream counts them (Anthropic's), as that
        upstream counts them: free, so no attempt is recorded and nothing falls back; a failure is raised."""
        for candidate in route.candidates:
            if candidate.target.adapter.counts_tokens:
                return candidate.target.adapter.count_tokens(candidate.request)
        raise InvalidRequest(f"Counting tokens needs an Anthropic upstream, and {route.entry.id!r} is served by "
                             f"{route.entry.provider!r}; count with a Claude model.", code="count_unsupported",
                             param="model")

    @staticmethod
    def _begin(candidate: Candidate) -> float:
        candidate.target.health.attempted()
        metrics.upstream_requested(candidate.target.deployment.upstream, candidate.target.entry.id)
        return time.perf_counter()

    @staticmethod
    def _answered(route: Route, started: float) -> None:
        target = route.current.target
        target.health.succeeded()
        route.attempts.append(_attempt(route.current, None, started))

    def _failed(self, route: Route, error: ProviderError, started: float) -> None:
        """Record the failure, then move the route on to its next candidate, or raise the failure when it
        does not fall back or no candidate is left."""
        target = route.current.target
        route.attempts.append(_attempt(route.current, error, started))
        _note_failure(target, error)
        if not (falls_back(error) and route.advance()):
            raise error
        metrics.upstream_fallback(target.deployment.upstream, target.entry.id)
        log.warning("falling back", extra={"upstream": target.deployment.upstream, "model": target.entry.id,
                                           "error_type": error.error_type, "upstream_status": error.upstream_status,
                                           "next_upstream": route.current.target.deployment.upstream,
                                           "next_model": route.entry.id})


def _target(entry: ModelEntry, deployment: Deployment, registry: ProviderRegistry,
            policy: CooldownPolicy) -> Target:
    upstream = registry.get(deployment.upstream)
    served = replace(entry, provider=deployment.upstream, upstream_id=deployment.upstream_id)
    return Target(served, deployment, upstream.kind if upstream else None,
                  upstream.adapter(deployment.upstream_id) if upstream else None, DeploymentHealth(policy))


def _attempt(candidate: Candidate, error: ProviderError | None, started: float) -> Attempt:
    target = candidate.target
    return Attempt(target.deployment.upstream, target.entry.id, target.deployment.upstream_id,
                   error.error_type if error else None, error.upstream_status if error else None,
                   int((time.perf_counter() - started) * 1000), bool(error and error.billable), target.entry)


def _note_failure(target: Target, error: ProviderError) -> None:
    """Count an upstream-side failure toward the deployment's cooldown, and report it."""
    upstream, model = target.deployment.upstream, target.entry.id
    metrics.upstream_failed(upstream, model, error.error_type)
    if counts_against(error) and target.health.failed(error.error_type, error.message, error.upstream_status):
        metrics.upstream_cooled_down(upstream, model)
        log.warning("deployment cooling down", extra={"upstream": upstream, "model": model,
                                                      "upstream_model": target.deployment.upstream_id})


def _watched(target: Target, chunks: Iterator[ChatChunk]) -> Iterator[ChatChunk]:
    """The rest of a stream; a failure mid-stream counts against the deployment (and is passed on)."""
    try:
        yield from chunks
    except ProviderError as error:
        _note_failure(target, error)
        raise


def _for_deployment(request: ChatRequest, upstream_id: str) -> ChatRequest:
    """request as sent to the deployment serving upstream_id (the same object when the id is its model's)."""
    return request if request.model == upstream_id else replace(request, model=upstream_id)
