"""What the services need from the running app, built once by the factory and passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from gateway.config import Settings
from gateway.providers.registry import ProviderRegistry
from gateway.services.catalog import ModelCatalog


@dataclass
class GatewayState:
    """Settings, model catalog, providers and the verified-key cache of one app."""

    settings: Settings
    catalog: ModelCatalog
    providers: ProviderRegistry
    key_cache: object


def gateway_state() -> GatewayState:
    """The GatewayState of the current app."""
    return current_app.extensions["gateway"]
