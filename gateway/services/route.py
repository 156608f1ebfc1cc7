"""One request's route: its candidates (deployments with the request as each model takes it) in the order
they will be tried, the one being tried, and the attempts made so far. Built by services/routing.py.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from gateway.providers.base import ChatRequest, Provider
from gateway.services.catalog import Deployment, ModelEntry
from gateway.services.pricing import reservation_cost_nanousd, reserved_prompt_tokens
from gateway.services.upstream_health import DeploymentHealth


@dataclass(frozen=True)
class Target:
    """One deployment of one model: its entry as served there, its adapter (None: no key) and health."""

    entry: ModelEntry
    deployment: Deployment
    kind: str | None
    adapter: Provider | None
    health: DeploymentHealth

    def matches(self, provider: str) -> bool:
        """Whether a caller pinning `provider` accepts this deployment (by upstream name or kind)."""
        return provider in (self.deployment.upstream, self.kind)


@dataclass(frozen=True)
class Candidate:
    """A target with the request as that model takes it."""

    target: Target
    request: ChatRequest


@dataclass(frozen=True)
class Attempt:
    """One call to one upstream: who, and how it ended (error_type None = it answered); billable when it
    failed after the upstream had the request (ProviderError.billable)."""

    upstream: str
    model: str
    upstream_model: str
    error_type: str | None
    upstream_status: int | None
    latency_ms: int
    billable: bool
    entry: ModelEntry

    def as_dict(self) -> dict:
        return {"upstream": self.upstream, "model": self.model, "upstream_model": self.upstream_model,
                "outcome": self.error_type or "ok", "upstream_status": self.upstream_status,
                "latency_ms": self.latency_ms}


class Route:
    """One request's candidates in trial order, the one being tried, and the attempts made so far."""

    def __init__(self, requested: ModelEntry, candidates: list[Candidate]) -> None:
        self.requested = requested
        self.candidates = tuple(candidates)
        self.attempts: list[Attempt] = []
        self._index = 0

    @property
    def current(self) -> Candidate:
        return self.candidates[self._index]

    @property
    def entry(self) -> ModelEntry:
        """The model being tried, as served by its deployment (provider = the upstream's name)."""
        return self.current.target.entry

    @property
    def request(self) -> ChatRequest:
        return self.current.request

    @property
    def rerouted(self) -> bool:
        """Whether more than one upstream was called."""
        return len(self.attempts) > 1

    @property
    def fallback_from(self) -> str | None:
        """The requested model's id when a fallback model is the one being tried."""
        return self.requested.id if self.entry.id != self.requested.id else None

    def advance(self) -> bool:
        """Move on to the next candidate; False when there is none."""
        if self._index + 1 >= len(self.candidates):
            return False
        self._index += 1
        return True

    def worst_case(self, bill_failed_prompts: bool) -> ReservationBound:
        """What to reserve: one candidate answering in full at its worst case and, when failed attempts are
        billed their prompt, every other candidate failing first (each is tried at most once)."""
        prompts = [reserved_prompt_tokens(c.request, c.target.entry) for c in self.candidates]
        outputs = [c.request.max_tokens * c.request.n for c in self.candidates]  # every choice is billed
        full = [reservation_cost_nanousd(p, output, c.target.entry)
                for p, output, c in zip(prompts, outputs, self.candidates)]
        completion = max(outputs)
        if not bill_failed_prompts or len(self.candidates) == 1:
            return ReservationBound(max(prompts), completion, max(full))
        prompt_only = [reservation_cost_nanousd(p, 0, c.target.entry) for p, c in zip(prompts, self.candidates)]
        failing_first = sum(prompt_only)
        return ReservationBound(sum(prompts), completion,
                                max(cost + failing_first - own for cost, own in zip(full, prompt_only)))


@dataclass(frozen=True)
class ReservationBound:
    """The most a routed request may use and cost: the amounts its reservation holds."""

    prompt_tokens: int
    completion_tokens: int
    cost_nanousd: int


def weighted_order(candidates: list[Candidate], rng: Callable[[], float] = random.random) -> list[Candidate]:
    """All candidates, each next one drawn with probability proportional to its weight."""
    remaining, order = list(candidates), []
    while remaining:
        point = rng() * sum(c.target.deployment.weight for c in remaining)
        index = len(remaining) - 1
        for position, candidate in enumerate(remaining):
            point -= candidate.target.deployment.weight
            if point < 0:
                index = position
                break
        order.append(remaining.pop(index))
    return order
