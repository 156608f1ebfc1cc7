"""The model list callers see: catalog entries with availability, fallbacks, limits and prices."""

from __future__ import annotations

from gateway.errors import NotFound
from gateway.state import GatewayState


def list_models(state: GatewayState, only_available: bool = False) -> list[dict]:
    """{id, provider, available, status, fallbacks, context_window, max_output_tokens, pricing} per catalog
    model; available = routable (by its own deployments or a fallback's), status says which (routing.py)."""
    models = []
    for entry in state.catalog.entries():
        status = state.router.availability(entry)
        if only_available and status == "unavailable":
            continue
        models.append(_listing(entry, status))
    return models


def routable_model(state: GatewayState, name: str) -> dict:
    """The listing of the model called name (its id or one of its aliases); NotFound unless it is routable."""
    entry = state.catalog.resolve(name)
    status = state.router.availability(entry) if entry is not None else "unavailable"
    if status == "unavailable":
        raise NotFound(f"Model {name!r} is not available on this gateway. Available models: "
                       f"{state.router.available_text()}.", code="model_not_found", param="model")
    return _listing(entry, status)


def _listing(entry, status: str) -> dict:
    return {
        "id": entry.id,
        "provider": entry.provider,
        "available": status != "unavailable",
        "status": status,
        "fallbacks": list(entry.fallbacks),
        "aliases": list(entry.aliases),
        "context_window": entry.context_window,
        "max_output_tokens": entry.max_output_tokens,
        "pricing": pricing_view(entry),
    }


def pricing_view(entry) -> dict:
    """USD per 1M tokens as numbers, plus the price version."""
    snapshot = {"input_per_1m": float(entry.input_price), "cached_input_per_1m": float(entry.cached_input_price),
                "output_per_1m": float(entry.output_price), "currency": "USD",
                "price_version": entry.price_version}
    return snapshot
