"""The console's files as served: strict policy, nothing inline, nothing from another origin, no markup built
from strings, shipped in the package, documented, and not rate limited (the /admin calls it makes are)."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from gateway.request_context import OWN_ASSETS_CSP as CONSOLE_CSP

ROOT = Path(__file__).resolve().parent.parent
CONSOLE = ROOT / "gateway" / "console"
SCRIPTS = sorted((CONSOLE / "js").glob("*.js"))


@pytest.fixture
def page(client):
    response = client.get("/console")
    assert response.status_code == 200 and response.mimetype == "text/html"
    return response


def test_policy_allows_only_the_consoles_own_files_and_no_framing(page):
    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == policy["style-src"] == policy["connect-src"] == policy["img-src"] == "'self'"
    assert policy["frame-ancestors"] == policy["base-uri"] == policy["form-action"] == "'none'"
    assert "unsafe" not in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Referrer-Policy"] == "no-referrer"


def test_page_has_nothing_inline_and_loads_only_local_files(client, page):
    html = page.get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html, re.IGNORECASE), "inline style or handler"
    assets = re.findall(r'(?:src|href)="([^"#][^"]*)"', html)
    assert {"console/assets/vendor/chart.umd.min.js", "console/assets/js/app.js", "console/assets/console.css"} \
        <= set(assets)
    for asset in assets:
        assert not re.match(r"(?i)([a-z]+:)?//", asset), f"{asset} is on another origin"
        response = client.get("/" + asset)
        assert response.status_code == 200, asset
        assert response.headers["Content-Security-Policy"] == CONSOLE_CSP


def test_every_module_the_app_imports_is_served(client):
    for script in SCRIPTS:
        for imported in re.findall(r'from "\./([\w.]+)"', script.read_text()):
            assert (CONSOLE / "js" / imported).is_file(), (script.name, imported)
        assert client.get(f"/console/assets/js/{script.name}").mimetype == "text/javascript"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_scripts_never_build_markup_from_strings(script):
    """Every stored string reaches the page as text: no HTML parsing of data, no eval, no token logging."""
    source = script.read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "console.log", "localStorage", "document.cookie", "setAttribute(\"style\""):
        assert sink not in source, f"{script.name} uses {sink}"


def test_token_is_kept_in_session_storage_and_sent_only_as_a_header():
    api = (CONSOLE / "js" / "api.js").read_text()
    assert 'sessionStorage.setItem(TOKEN_KEY' in api and '"Authorization": "Bearer " + bearer' in api
    assert 'credentials: "omit"' in api
    for script in SCRIPTS:
        assert not re.search(r"location[.\w]*\s*=[^;]*token", script.read_text(), re.IGNORECASE), script.name


def test_console_files_ship_in_the_package():
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["gateway"]
    files = [p.relative_to(ROOT / "gateway").as_posix() for p in CONSOLE.rglob("*") if p.is_file()]
    assert {"console/index.html", "console/js/app.js", "console/vendor/chart.umd.min.js",
            "console/vendor/chart.js.LICENSE.md"} <= set(files)
    assert all(any(fnmatch(name, glob) for glob in globs) for name in files), (files, globs)


def test_vendored_chart_library_carries_its_license():
    bundle = (CONSOLE / "vendor" / "chart.umd.min.js").read_text()
    assert bundle.startswith("/*!\n * Chart.js v4.6.1") and "Released under the MIT License" in bundle[:300]
    assert "MIT License" in (CONSOLE / "vendor" / "chart.js.LICENSE.md").read_text()
    assert "MIT License" in (CONSOLE / "vendor" / "kurkle-color.LICENSE.md").read_text()


def test_console_is_documented_and_not_rate_limited_but_admin_calls_are(app_factory):
    client = app_factory(IP_RATE_LIMIT_MAX=2).test_client()
    spec = client.get("/openapi.json").get_json()
    assert spec["paths"]["/console"]["get"]["responses"]["200"]["content"] == {"text/html": {"schema": {"type": "string"}}}
    codes = [client.get(path).status_code for path in ["/console", "/console/assets/js/app.js"] * 3]
    assert codes == [200] * 6
    assert [client.get("/admin/usage/daily").status_code for _ in range(3)] == [401, 401, 429]
