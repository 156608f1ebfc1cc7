"""The OpenAPI contract: generated from the request schemas themselves, covering every route, served at
/openapi.json with an offline docs page at /docs (no CDN), neither of them rate limited."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import jsonschema_rs
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_30

from gateway.app import create_app
from gateway.openapi import OPERATIONS, documented_rules, undocumented_endpoints
from gateway.schemas.admin import KeyCreateSchema, LimitsSchema, UsageQuerySchema, UserCreateSchema
from gateway.schemas.compat import ChatCompletionSchema, MessagesSchema
from gateway.schemas.llm import CompleteRequestSchema
from tests.conftest import base_config

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "gateway" / "static_docs"
BODIES = {("/v1/llm/complete", "post"): CompleteRequestSchema, ("/v1/chat/completions", "post"): ChatCompletionSchema,
          ("/v1/messages", "post"): MessagesSchema, ("/admin/users", "post"): UserCreateSchema,
          ("/admin/keys", "post"): KeyCreateSchema, ("/admin/limits", "post"): LimitsSchema}


@pytest.fixture
def spec(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        node = spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_create_app_serves_the_contract(fake_upstream, tmp_path):
    """Wiring: create_app itself registers the OpenAPI step (one line the lead adds to the factory)."""
    app = create_app(base_config(f"sqlite:///{tmp_path / 'gateway.db'}"))
    assert "docs" in app.blueprints, "add `register_openapi(app)` (gateway.openapi) to create_app's steps"
    assert app.test_client().get("/openapi.json").status_code == 200


def test_document_is_valid_openapi_3(spec):
    validator = jsonschema_rs.Draft4Validator(OPENAPI_30)
    errors = [error.message for error in validator.iter_errors(spec)]
    assert errors == []
    assert spec["openapi"] == "3.0.3" and spec["info"]["title"] == "Dominion Gateway"


def test_every_route_is_documented_with_its_methods(app, spec):
    assert undocumented_endpoints(app) == []
    for rule in documented_rules(app):
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = spec["paths"][path][method.lower()]
            assert operation["summary"] and operation["responses"]["default"], (path, method)
    assert set(OPERATIONS) >= {rule.endpoint for rule in documented_rules(app)}


@pytest.mark.parametrize("route", sorted(BODIES), ids=lambda r: f"{r[1]} {r[0]}")
def test_request_bodies_come_from_the_validating_schemas(spec, route):
    """Same field names, same required set, same bounds as the marshmallow schema the view loads."""
    schema = BODIES[route]()
    request_body = spec["paths"][route[0]][route[1]]["requestBody"]
    documented = resolve(spec, request_body["content"]["application/json"]["schema"])
    loaded = {f.data_key or name: f for name, f in schema.load_fields.items()}
    assert set(documented["properties"]) == set(loaded)
    assert set(documented.get("required", [])) == {name for name, f in loaded.items() if f.required}
    for name, field in loaded.items():
        for validator in field.validators:
            if getattr(validator, "max", None) is not None and "maximum" in documented["properties"][name]:
                assert documented["properties"][name]["maximum"] == validator.max, name
    strict = schema.unknown == "raise"
    assert documented.get("additionalProperties", True) is not strict


def test_a_schema_change_shows_up_in_the_document(app_factory, monkeypatch):
    """Nothing is restated: tighten a validator and the next document says so."""
    from marshmallow import validate

    field = CompleteRequestSchema._declared_fields["max_tokens"]
    monkeypatch.setattr(field, "validators", [validate.Range(min=1, max=4321)])
    client = app_factory().test_client()
    spec = client.get("/openapi.json").get_json()
    assert spec["components"]["schemas"]["CompleteRequest"]["properties"]["max_tokens"]["maximum"] == 4321


def test_query_strings_follow_their_schema(spec):
    names = {p["name"] for p in spec["paths"]["/admin/usage"]["get"]["parameters"] if p.get("in") == "query"}
    assert names == {f.data_key or n for n, f in UsageQuerySchema().load_fields.items()} == \
        {"user_id", "from", "to", "group_by"}


def test_protected_operations_declare_and_enforce_credentials(app_factory, spec):
    """Every /v1 and /admin operation says which credential it needs, and refuses a request without one."""
    client = app_factory(AUTH_FAILURE_LIMIT=1000).test_client()
    checked = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters" or not path.startswith(("/v1", "/admin")):
                continue
            assert operation["security"], (method, path)
            url = path.replace("{user_id}", "1").replace("{key_id}", "1")
            response = client.open(url, method=method.upper(), json={})
            assert response.status_code == 401, (method, path, response.get_json())
            assert response.get_json()["error"]["type"] == "authentication_error"
            checked += 1
    assert checked >= 17


def test_responses_document_errors_and_headers(spec):
    complete = spec["paths"]["/v1/llm/complete"]["post"]["responses"]
    assert {"200", "400", "401", "403", "409", "413", "429", "502", "503", "504", "default"} <= set(complete)
    assert set(complete["200"]["content"]) == {"application/json", "text/event-stream"}
    # OpenAPI 3.0: a text/event-stream schema describes one event (found by schemathesis: it was "string").
    event = complete["200"]["content"]["text/event-stream"]["schema"]
    assert event["required"] == ["data"] and event["properties"]["event"]["enum"] == ["start", "delta", "done",
                                                                                        "error"]
    assert complete["429"]["headers"]["Retry-After"] == {"$ref": "#/components/headers/RetryAfter"}
    error = resolve(spec, spec["components"]["schemas"]["Error"]["properties"]["error"])
    assert set(error["required"]) == {"type", "message", "code", "param", "request_id"}
    assert spec["paths"]["/admin/keys"]["post"]["responses"]["201"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/KeyCreated"}


def test_docs_page_is_self_contained(client):
    page = client.get("/docs")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(not re.match(r"(?i)(https?:)?//", asset) for asset in assets), assets
    for asset in assets:
        if asset.startswith("docs/assets/"):
            response = client.get("/" + asset)
            assert response.status_code == 200, asset
            assert not re.search(r"(?i)https?://", response.get_data(as_text=True)), f"{asset} reaches out"


def test_docs_assets_ship_in_the_package():
    """package-data globs cover every file the page needs, so a wheel install serves /docs too."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["gateway"]
    files = [p.relative_to(ROOT / "gateway").as_posix() for p in STATIC.iterdir() if p.is_file()]
    assert {"static_docs/index.html", "static_docs/docs.js", "static_docs/docs.css"} <= set(files)
    assert all(any(fnmatch(name, glob) for glob in globs) for name in files), (files, globs)


def test_contract_and_docs_are_not_rate_limited(app_factory):
    client = app_factory(IP_RATE_LIMIT_MAX=1).test_client()
    assert client.get("/admin/users").status_code == 401
    assert client.get("/admin/users").status_code == 429
    codes = [client.get(path).status_code for path in ["/openapi.json", "/docs", "/docs/assets/docs.js"] * 3]
    assert codes == [200] * 9

