"""GET /openapi.json (the generated contract) and GET /docs (an offline page that renders it)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, send_from_directory

from gateway.openapi import openapi_json
from gateway.request_context import allow_own_assets

STATIC_DIR = Path(__file__).resolve().parent.parent / "static_docs"
# The page's own script and stylesheet only: nothing inline, nothing from another origin.

docs_bp = Blueprint("docs", __name__, static_folder=str(STATIC_DIR), static_url_path="/docs/assets")
docs_bp.after_request(allow_own_assets)


@docs_bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3 document of this gateway, generated from its request and response schemas."""
    return Response(openapi_json(current_app), mimetype="application/json")


@docs_bp.get("/docs")
def page():
    """Human-readable API documentation, rendered in the browser from /openapi.json (works offline)."""
    return send_from_directory(STATIC_DIR, "index.html", mimetype="text/html", max_age=0)
