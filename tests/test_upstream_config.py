"""PROVIDERS_FILE: named upstreams in YAML or JSON, validated at start with one line naming the entry and field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.config import ConfigError, load_settings
from gateway.upstream_config import ProvidersFileError, load_upstreams

ROOT = Path(__file__).resolve().parent.parent
YAML = """
# comments are welcome here
upstreams:
  - name: azure-se
    kind: azure_openai
    base_url: https://my-resource.openai.azure.com/
    api_key_env: AZURE_SE_KEY
    api_version: 2025-01-01-preview
    read_timeout_s: 30
  - name: local-vllm
    kind: openai
    base_url: http://127.0.0.1:8000/v1
    headers: {X-Team: search}
    max_retries: 0
"""


def upstreams(tmp_path, document, name="providers.yaml", **env):
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    settings = load_settings({"PROVIDERS_FILE": str(path), **env})
    return {u.name: u for u in load_upstreams(settings, {"PROVIDERS_FILE": str(path), **env})}


def test_yaml_file_adds_upstreams_after_the_builtins(tmp_path):
    found = upstreams(tmp_path, YAML, OPENAI_API_KEY="sk-o", AZURE_SE_KEY="az-key", UPSTREAM_TIMEOUT_S="60")
    assert list(found) == ["openai", "anthropic", "azure-se", "local-vllm"]
    azure, local = found["azure-se"], found["local-vllm"]
    assert (azure.kind, azure.base_url, azure.api_key, azure.api_version, azure.read_timeout_s) == \
        ("azure_openai", "https://my-resource.openai.azure.com", "az-key", "2025-01-01-preview", 30.0)
    assert azure.unavailable_reason is None and azure.connect_timeout_s == 5.0
    assert (local.api_key_env, local.api_key, local.headers, local.max_retries, local.read_timeout_s) == \
        (None, None, {"X-Team": "search"}, 0, 60.0)
    assert local.unavailable_reason is None  # keyless: a local server
    assert local.provider_settings().extra_headers == {"X-Team": "search"}
    assert (found["openai"].api_key, found["anthropic"].unavailable_reason) == ("sk-o", "ANTHROPIC_API_KEY is not set")


def test_json_file_works_too_and_can_replace_a_builtin(tmp_path):
    document = {"upstreams": [{"name": "openai", "kind": "openai", "base_url": "https://eu.api.openai.com/v1",
                               "api_key_env": "OPENAI_EU_KEY"},
                              {"name": "azure-us", "kind": "azure_openai", "base_url": "https://us.example.com",
                               "api_key_env": "AZURE_US_KEY"}]}
    found = upstreams(tmp_path, document, name="providers.json", OPENAI_API_KEY="sk-default")
    assert list(found) == ["openai", "anthropic", "azure-us"]
    assert (found["openai"].base_url, found["openai"].api_key, found["openai"].unavailable_reason) == \
        ("https://eu.api.openai.com/v1", None, "OPENAI_EU_KEY is not set")
    assert found["azure-us"].api_version == "2024-10-21"


VALID = {"name": "up", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"}


@pytest.mark.parametrize("document, problem", [
    ("upstreams: [", "invalid YAML at line 1 column 13: expected the node content"),
    ({"upstream": []}, "expected an object with a list 'upstreams'"),
    ({"upstreams": [], "defaults": {}}, "unknown top-level field 'defaults'"),
    ({"upstreams": ["openai"]}, "upstreams[0] must be an object with name, kind and base_url"),
    ({"upstreams": [{**VALID, "name": "Up Stream"}]}, "upstreams[0]: name must be 1-32 of a-z 0-9 . _ -"),
    ({"upstreams": [{**VALID, "name": "mock"}]}, "upstreams[0]: name 'mock' is reserved"),
    ({"upstreams": [{**VALID, "kind": "gemini"}]},
     "upstream 'up': kind must be one of openai, anthropic, azure_openai, got 'gemini'"),
    ({"upstreams": [{**VALID, "base_url": "ftp://x"}]}, "upstream 'up': base_url must be an http:// or https:// URL"),
    ({"upstreams": [{**VALID, "base_url": "https://x/v1?key=1"}]}, "upstream 'up': base_url must be an http"),
    ({"upstreams": [{**VALID, "api_key": "sk-live-123"}]},
     "upstream 'up': api_key is not allowed: keys never go in this file"),
    ({"upstreams": [{**VALID, "api_key_env": "my key"}]}, "upstream 'up': api_key_env must be a variable name"),
    ({"upstreams": [{**VALID, "headers": {"Authorization": "Bearer x"}}]},
     "upstream 'up': headers.Authorization would put a key in the file"),
    ({"upstreams": [{**VALID, "headers": {"X-A": 1}}]}, "upstream 'up': headers.X-A must be one line of text"),
    ({"upstreams": [{**VALID, "read_timeout_s": 0}]}, "upstream 'up': read_timeout_s must be a number of seconds > 0"),
    ({"upstreams": [{**VALID, "max_retries": 11}]}, "upstream 'up': max_retries must be an integer from 0 to 10"),
    ({"upstreams": [{**VALID, "api_version": "2024-10-21"}]}, "upstream 'up': api_version is only for kind azure"),
    ({"upstreams": [{**VALID, "kind": "azure_openai", "api_version": "latest"}]},
     "upstream 'up': api_version must look like 2024-10-21"),
    ({"upstreams": [{**VALID, "timeout": 3}]}, "upstream 'up': timeout is not a known field; allowed: name, kind"),
    ({"upstreams": [VALID, VALID]}, "upstream 'up' is defined twice"),
])
def test_bad_entries_fail_with_one_line_naming_entry_and_field(tmp_path, document, problem):
    with pytest.raises(ProvidersFileError) as raised:
        upstreams(tmp_path, document)
    message = str(raised.value)
    assert message.startswith(f"providers file {tmp_path / 'providers.yaml'}: ")
    assert problem in message and "\n" not in message
    assert "sk-live-123" not in message


def test_missing_file_is_one_line(tmp_path):
    settings = load_settings({"PROVIDERS_FILE": str(tmp_path / "nope.yaml")})
    with pytest.raises(ConfigError, match=r"^providers file .*nope\.yaml: cannot read the file \(No such file"):
        load_upstreams(settings, {})


def test_start_up_stops_with_one_line_for_a_bad_providers_file(tmp_path):
    path = tmp_path / "providers.yaml"
    path.write_text("upstreams:\n  - name: eu\n    kind: openai\n    base_url: nowhere\n")
    result = subprocess.run([sys.executable, "-c", "from gateway.app import serve_app; serve_app()"],
                            env={"PROVIDERS_FILE": str(path), "PATH": "/usr/bin:/bin",
                                 "SQLITE_PATH": str(tmp_path / "gateway.db")},
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 3
    assert result.stderr.strip() == (f"dominion-gateway: configuration error: providers file {path}: upstream 'eu': "
                                     "base_url must be an http:// or https:// URL without query or fragment, "
                                     "got 'nowhere'")



def test_a_catalog_naming_an_undefined_upstream_stops_start_up(tmp_path):
    catalog = tmp_path / "models.yaml"
    catalog.write_text("models:\n  - {id: gpt-4o, upstream: azure-se}\n")
    with pytest.raises(ConfigError, match="model 'gpt-4o': upstream 'azure-se' is not a defined upstream"):
        create_app({"GATEWAY_ENV": "testing", "DATABASE_URL": f"sqlite:///{tmp_path / 'g.db'}",
                    "MODEL_CATALOG_FILE": str(catalog)})


def test_the_worked_example_is_in_deploy_loads_and_routes_as_documented(tmp_path):
    docs = (ROOT / "docs" / "routing.md").read_text()
    for name in ("providers.example.yaml", "models.example.yaml"):
        assert f"`deploy/{name}`:\n\n```yaml\n{(ROOT / 'deploy' / name).read_text()}```" in docs, name
    app = create_app({"GATEWAY_ENV": "testing", "DATABASE_URL": f"sqlite:///{tmp_path / 'g.db'}",
                      "PROVIDERS_FILE": str(ROOT / "deploy" / "providers.example.yaml"),
                      "MODEL_CATALOG_FILE": str(ROOT / "deploy" / "models.example.yaml"),
                      "OPENAI_API_KEY": "sk-o", "ANTHROPIC_API_KEY": "sk-a", "AZURE_OPENAI_API_KEY": "az"})
    state = app.extensions["gateway"]
    routes = {model: [(t.deployment.upstream, t.deployment.upstream_id, t.deployment.weight, t.kind)
                      for t in state.router.targets(model)]
              for model in ("gpt-4o", "claude-sonnet-4-5", "llama-3.1-8b")}
    assert routes == {"gpt-4o": [("openai", "gpt-4o", 3, "openai"),
                                 ("azure-sweden", "gpt-4o-prod", 1, "azure_openai")],
                      "claude-sonnet-4-5": [("anthropic", "claude-sonnet-4-5-20250929", 1, "anthropic")],
                      "llama-3.1-8b": [("local-vllm", "meta-llama/Llama-3.1-8B-Instruct", 1, "openai")]}
    assert [state.catalog.resolve(m).fallbacks for m in routes] == [("claude-sonnet-4-5",), ("gpt-4o",),
                                                                    ("gpt-4o-mini",)]
    azure = next(u for u in state.upstreams if u.name == "azure-sweden")
    assert (azure.api_version, azure.max_retries, azure.unavailable_reason) == ("2024-10-21", 0, None)
