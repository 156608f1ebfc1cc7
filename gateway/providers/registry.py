"""The upstreams this gateway can call, by name, and the adapter that calls a given model on each.

An upstream without its key is simply absent. OpenAI- and Anthropic-kind upstreams share one adapter
for all their models; an Azure upstream needs one per deployment (the deployment is in the URL), built
on first use and sharing the upstream's pooled session.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

import requests

from gateway.providers.anthropic import AnthropicProvider
from gateway.providers.azure_openai import AzureOpenAIProvider
from gateway.providers.base import Provider, ProviderSettings
from gateway.providers.mock import MockProvider
from gateway.providers.openai import OpenAIProvider
from gateway.providers.transport import make_session

MOCK = "mock"


class UpstreamSpec(Protocol):
    """What the registry reads of an upstream definition (gateway.upstream_config.UpstreamDefinition)."""

    name: str
    kind: str
    api_version: str | None

    def provider_settings(self) -> ProviderSettings: ...


class Upstream:
    """One callable upstream: its name, its kind and its adapters."""

    def __init__(self, name: str, kind: str, build: Callable[[str | None], Provider],
                 per_deployment: bool = False) -> None:
        self.name, self.kind = name, kind
        self._build = build
        self._per_deployment = per_deployment
        self._adapters: dict[str | None, Provider] = {}
        self._lock = threading.Lock()

    def adapter(self, upstream_model: str) -> Provider:
        """The adapter that calls upstream_model here (the same one for every model unless per deployment)."""
        key = upstream_model if self._per_deployment else None
        adapter = self._adapters.get(key)
        if adapter is None:
            with self._lock:
                adapter = self._adapters.get(key)
                if adapter is None:
                    adapter = self._adapters[key] = self._build(key)
        return adapter


class ProviderRegistry:
    """A read-only table of name -> callable Upstream."""

    def __init__(self, upstreams: Mapping[str, Upstream] | None = None) -> None:
        self._upstreams = dict(upstreams or {})

    def get(self, name: str) -> Upstream | None:
        """The upstream called name, or None when it is not configured (or has no key)."""
        return self._upstreams.get(name)

    def available(self, name: str) -> bool:
        """Whether an upstream called name can be called."""
        return name in self._upstreams

    def names(self) -> tuple[str, ...]:
        """Names of the callable upstreams, sorted."""
        return tuple(sorted(self._upstreams))


def build_providers(upstreams: Iterable[UpstreamSpec], mock_enabled: bool) -> ProviderRegistry:
    """One Upstream per callable definition (the caller leaves out those without a key), plus mock."""
    table = {spec.name: _upstream(spec) for spec in upstreams}
    if mock_enabled:
        mock = MockProvider()
        table[MOCK] = Upstream(MOCK, MOCK, lambda _model: mock)
    return ProviderRegistry(table)


def _upstream(spec: UpstreamSpec) -> Upstream:
    settings = spec.provider_settings()
    session = make_session()
    if spec.kind == "azure_openai":
        return Upstream(spec.name, spec.kind, per_deployment=True, build=lambda deployment: AzureOpenAIProvider(
            settings, deployment, spec.api_version, session))
    adapter = _ADAPTERS[spec.kind](settings, session)
    return Upstream(spec.name, spec.kind, lambda _model: adapter)


_ADAPTERS: dict[str, Callable[[ProviderSettings, requests.Session], Provider]] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
}
