"""The providers this gateway can call, by name; a provider without a key is simply absent."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.providers.anthropic import AnthropicProvider
from gateway.providers.base import Provider, ProviderSettings
from gateway.providers.mock import MockProvider
from gateway.providers.openai import OpenAIProvider


class ProviderRegistry:
    """A read-only table of name -> configured Provider."""

    def __init__(self, providers: Mapping[str, Provider] | None = None) -> None:
        self._providers = dict(providers or {})

    def get(self, name: str) -> Provider | None:
        """The provider called name, or None when it is not configured."""
        return self._providers.get(name)

    def available(self, name: str) -> bool:
        """Whether a provider called name is configured."""
        return name in self._providers

    def names(self) -> tuple[str, ...]:
        """Names of the configured providers, sorted."""
        return tuple(sorted(self._providers))


def build_providers(openai: ProviderSettings | None, anthropic: ProviderSettings | None,
                    mock_enabled: bool) -> ProviderRegistry:
    """One adapter per configured upstream (None = no key = unavailable), plus mock when enabled."""
    providers: dict[str, Provider] = {}
    if openai is not None:
        providers["openai"] = OpenAIProvider(openai)
    if anthropic is not None:
        providers["anthropic"] = AnthropicProvider(anthropic)
    if mock_enabled:
        providers["mock"] = MockProvider()
    return ProviderRegistry(providers)
