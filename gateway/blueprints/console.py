"""GET /console: the admin console, static files shipped in the package (no CDN, no build at run time).

The page holds no data and no secret: it signs in with ADMIN_TOKEN kept in sessionStorage and reads the
/admin API with it as a Bearer header. Its own policy allows only its own scripts and styles (nothing
inline, nothing from another origin) and no framing.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory

from gateway.request_context import allow_own_assets

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"

console_bp = Blueprint("console", __name__, static_folder=str(CONSOLE_DIR), static_url_path="/console/assets")
console_bp.after_request(allow_own_assets)


@console_bp.get("/console")
def page():
    """The admin console (sign in with ADMIN_TOKEN); its pages are addressed after the #."""
    return send_from_directory(CONSOLE_DIR, "index.html", mimetype="text/html", max_age=0)
