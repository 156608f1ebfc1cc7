"""The Vercel AI SDK (node: ai, @ai-sdk/openai, @ai-sdk/anthropic) pointed at the gateway: generateText and
streamText with a tool, a GPT and a Claude model behind each provider package. tests/node/clients.mjs runs
one scenario per call. Skipped without node/npm locally; CI (DOMINION_REQUIRE_SERVICES=1) installs them and
requires these tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.compat_support import CLAUDE, GPT, audit, gateway, upstream_path  # noqa: F401
from tests.conftest import counters_match_audit, missing_service
from tests.fake_upstream import Behavior

NODE_DIR = Path(__file__).resolve().parent / "node"
SCENARIOS = [(route, model, mode) for route in ("openai", "anthropic") for model in (GPT, CLAUDE)
             for mode in ("generate", "stream")]


@pytest.fixture(scope="session")
def node_clients() -> Path:
    """tests/node with its node_modules installed from package-lock.json (npm ci, once)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        missing_service("node and npm are not installed")
    if not (NODE_DIR / "node_modules" / "ai").is_dir():
        installed = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True,
                                   text=True, timeout=300)
        if installed.returncode != 0:
            missing_service(f"npm ci failed: {installed.stderr[-500:]}")
    return NODE_DIR


def run_scenario(node_dir: Path, gateway, route: str, model: str, mode: str) -> dict:
    server, account = gateway
    env = {**os.environ, "GATEWAY_URL": server.url, "GATEWAY_KEY": account.api_key}
    done = subprocess.run(["node", "clients.mjs", route, model, mode], cwd=node_dir, env=env, capture_output=True,
                          text=True, timeout=120)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, (done.stdout, done.stderr[-2000:])
    return json.loads(lines[-1])


@pytest.mark.parametrize("route, model, mode", SCENARIOS)
def test_vercel_ai_sdk_tool_round_trip(app, gateway, fake_upstream, node_clients, route, model, mode):
    fake_upstream.enqueue(Behavior(tool_calls=[("get_weather", {"city": "Paris"})]),
                          Behavior(reply="It is sunny in Paris."))
    result = run_scenario(node_clients, gateway, route, model, mode)
    assert result["calls"] == [{"id": result["calls"][0]["id"], "name": "get_weather", "input": {"city": "Paris"}}]
    assert result["results"] == [{"id": result["calls"][0]["id"], "output": "sunny in Paris"}]
    assert (result["steps"], result["finish"], result["text"]) == (2, ["tool-calls", "stop"],
                                                                    "It is sunny in Paris.")
    first, second = fake_upstream.requests
    assert first.path == second.path == upstream_path(model)
    assert (first.body.get("stream") is True) == (mode == "stream")
    assert result["calls"][0]["id"] in json.dumps(second.body["messages"])  # the id came back unchanged
    assert [r.status for r in audit(app)] == ["ok", "ok"] and counters_match_audit(app) == []


@pytest.mark.parametrize("route, model", [(r, m) for r in ("openai", "anthropic") for m in (GPT, CLAUDE)])
def test_vercel_ai_sdk_structured_output_with_an_image(gateway, fake_upstream, node_clients, route, model):
    """generateObject: a JSON schema and an image part; the fake answers an instance of the schema it got."""
    result = run_scenario(node_clients, gateway, route, model, "object")
    assert result["object"] == {"city": "Paris", "population": 1.5}
    body = fake_upstream.requests[-1].body
    assert "iVBORw0KGgo" in json.dumps(body["messages"])
    if model == GPT and route == "openai":
        assert body["response_format"]["json_schema"]["schema"]["required"] == ["city", "population"]
    elif model == GPT:  # @ai-sdk/anthropic forces a json tool for models it does not know
        assert body["tool_choice"] == "required" and len(body["tools"]) == 1
    else:
        assert body["output_config"]["format"]["schema"]["required"] == ["city", "population"]
