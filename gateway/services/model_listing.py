"""The model list callers see: catalog entries with availability, fallbacks, limits and prices."""

from __future__ import annotations

from gateway.state import GatewayState


def list_models(state: GatewayState, only_available: bool = False) -> list[dict]:
    """{id, provider, available, status, fallbacks, context_window, max_output_tokens, pricing} per catalog
    model; available = routable (by its own deployments or a fallback's), status says which (routing.py)."""
    models = []
    for entry in state.catalog.entries():
        status = state.router.availability(entry)
        available = status != "unavailable"
        if only_available and not available:
            continue
        models.append({
            "id": entry.id,
            "provider": entry.provider,
            "available": available,
            "status": status,
            "fallbacks": list(entry.fallbacks),
            "aliases": list(entry.aliases),
            "context_window": entry.context_window,
            "max_output_tokens": entry.max_output_tokens,
            "pricing": pricing_view(entry),
        })
    return models


def pricing_view(entry) -> dict:
    """USD per 1M tokens as numbers, plus the price version."""
    snapshot = {"input_per_1m": float(entry.input_price), "cached_input_per_1m": float(entry.cached_input_price),
                "output_per_1m": float(entry.output_price), "currency": "USD",
                "price_version": entry.price_version}
    return snapshot
