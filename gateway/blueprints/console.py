"""GET /console: the admin console, static files shipped in the package (no CDN, no build at run time).

The page holds no data and no secret: it signs in with ADMIN_TOKEN kept in sessionStorage and reads the
/admin API with it as a Bearer header. Its own policy allows only its own scripts and styles (nothing
inline, nothing from another origin) and no framing.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
CONSOLE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

console_bp = Blueprint("console", __name__, static_folder=str(CONSOLE_DIR), static_url_path="/console/assets")


@console_bp.get("/console")
def page():
    """The admin console (sign in with ADMIN_TOKEN); its pages are addressed after the #."""
    return send_from_directory(CONSOLE_DIR, "index.html", mimetype="text/html", max_age=0)


@console_bp.after_request
def _page_policy(response: Response) -> Response:
    """The console's own scripts and styles only; never framed."""
    response.headers["Content-Security-Policy"] = CONSOLE_CSP
    return response
