"""What the services need from the running app, built once by the factory and passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.config import Settings
from gateway.providers.registry import ProviderRegistry
from gateway.services.catalog import ModelCatalog
from gateway.services.key_cache import VerifiedKeyCache
from gateway.services.live_reservations import LiveReservations
from gateway.services.routing import Router
from gateway.upstream_config import UpstreamDefinition


@dataclass
class GatewayState:
    """Settings, catalog, upstreams, providers, router, the verified-key cache and the reservations in flight."""

    settings: Settings
    catalog: ModelCatalog
    providers: ProviderRegistry
    key_cache: VerifiedKeyCache
    router: Router
    upstreams: tuple[UpstreamDefinition, ...]
    live: LiveReservations = field(default_factory=LiveReservations)
