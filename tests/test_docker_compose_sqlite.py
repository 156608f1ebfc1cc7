"""docker-compose.sqlite.yml as shipped, with no .env file (D10): settings come from the environment
docker-compose runs in. The README's commands (`exec gateway flask users create`, `keys create`,
`run --rm gateway flask usage`), a completion against the fake upstream, the healthcheck, and the data
in the gateway-data volume surviving `down` + `up`."""

from __future__ import annotations

import re

import pytest
import requests

from tests.conftest import ADMIN_TOKEN
from tests.deploy_support import free_port
from tests.docker_support import (UPSTREAM_BASE_URL, Account, ComposeProject, FakeUpstreamContainer, complete,
                                  gateway_image, pid1_environ, wait_healthy, wait_http)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The SQLite stack on a loopback port, with the fake upstream on its network."""
    image = gateway_image()
    empty_env_file = tmp_path_factory.mktemp("compose-sqlite") / "empty.env"
    empty_env_file.write_text("")
    port = free_port()
    project = ComposeProject("docker-compose.sqlite.yml", "sq", empty_env_file, {
        "GATEWAY_IMAGE": image.tag, "GATEWAY_PORT": f"127.0.0.1:{port}", "ADMIN_TOKEN": ADMIN_TOKEN,
        "OPENAI_API_KEY": "sk-test-openai-key", "OPENAI_BASE_URL": UPSTREAM_BASE_URL, "UPSTREAM_MAX_RETRIES": "0"})
    upstream = FakeUpstreamContainer(f"{project.name}-upstream")
    try:
        project("up", "-d", "--no-build")
        upstream.start(project.network)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/health/ready")
        yield project, url, upstream
    finally:
        upstream.remove()
        project.down()


@pytest.fixture(scope="module")
def account(stack) -> Account:
    """The README's CLI: a user, then a key, printed once."""
    project, _, _ = stack
    user = project("exec", "-T", "gateway", "flask", "users", "create", "--name", "Ada Lovelace",
                   "--email", "ada@example.com").stdout
    user_id = int(re.search(r"^id\s+(\d+)$", user, re.MULTILINE).group(1))
    key = project("exec", "-T", "gateway", "flask", "keys", "create", "--user-id", str(user_id),
                  "--name", "laptop").stdout
    return Account(user_id, re.search(r"^api_key\s+(dom_\S+)$", key, re.MULTILINE).group(1))


def test_serves_on_sqlite_in_the_volume_with_one_worker(stack):
    project, url, _ = stack
    ready = requests.get(url + "/health/ready", timeout=5).json()
    assert ready["checks"]["database"]["status"] == "ok"
    assert ready["checks"]["limiter_storage"]["backend"] == "memory"
    environment = pid1_environ(project.container("gateway"))
    assert environment["WEB_CONCURRENCY"] == "1" and environment["SQLITE_PATH"] == "/data/gateway.db"
    assert environment["MALLOC_ARENA_MAX"] == "2"
    assert "GATEWAY_ENV" not in environment, "an unset setting must stay unset, not empty"


def test_cli_key_completes_against_the_upstream(stack, account):
    _, url, _ = stack
    response = complete(url, account)
    assert response.status_code == 200, response.text
    assert response.json()["content"] == "Hello from the fake upstream."


def test_usage_through_a_one_off_container(stack, account):
    project, url, _ = stack
    assert complete(url, account).status_code == 200
    usage = project("run", "--rm", "gateway", "flask", "usage", "--user-id", str(account.user_id)).stdout
    totals = usage.split("cost_usd", 1)[1].split()
    assert int(totals[0]) >= 1, usage  # requests


def test_healthcheck_reports_healthy(stack):
    project, _, _ = stack
    wait_healthy(project.container("gateway"))


def test_data_survives_down_and_up(stack, account):
    project, url, upstream = stack
    upstream.remove()  # not the project's: `down` could not remove a network it is attached to
    project("down")
    project("up", "-d", "--no-build")
    wait_http(url + "/health/ready")
    assert requests.get(url + "/v1/llm/quota", headers=account.headers, timeout=5).status_code == 200
