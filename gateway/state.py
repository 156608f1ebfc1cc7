"""What the services need from the running app, built once by the factory and passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Settings
from gateway.providers.registry import ProviderRegistry
from gateway.services.catalog import ModelCatalog
from gateway.services.key_cache import VerifiedKeyCache
from gateway.services.routing import Router
from gateway.upstream_config import UpstreamDefinition


@dataclass
class GatewayState:
    """Settings, model catalog, upstreams, providers, router and the verified-key cache of one app."""

    settings: Settings
    catalog: ModelCatalog
    providers: ProviderRegistry
    key_cache: VerifiedKeyCache
    router: Router
    upstreams: tuple[UpstreamDefinition, ...]
