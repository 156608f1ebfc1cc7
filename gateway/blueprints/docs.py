"""GET /openapi.json (the generated contract) and GET /docs (an offline page that renders it)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, send_from_directory

from gateway.openapi import openapi_json

STATIC_DIR = Path(__file__).resolve().parent.parent / "static_docs"
# The page's own script and stylesheet only: nothing inline, nothing from another origin.
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

docs_bp = Blueprint("docs", __name__, static_folder=str(STATIC_DIR), static_url_path="/docs/assets")


@docs_bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3 document of this gateway, generated from its request and response schemas."""
    return Response(openapi_json(current_app), mimetype="application/json")


@docs_bp.get("/docs")
def page():
    """Human-readable API documentation, rendered in the browser from /openapi.json (works offline)."""
    return send_from_directory(STATIC_DIR, "index.html", mimetype="text/html", max_age=0)


@docs_bp.after_request
def _page_policy(response: Response) -> Response:
    """The docs page runs its own script; everything else keeps the API's 'none' policy."""
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response
