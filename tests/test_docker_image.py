"""The image, built from the unmodified Dockerfile and run with plain `docker run` on SQLite, the way
docs/deployment.md shows: `cp env.example .env`, `--env-file .env`, a volume at /data, `--stop-timeout 150`.
Health and readiness, the admin flow, a completion and a stream against the fake upstream, non-root,
the HEALTHCHECK, a SIGTERM drain, data kept in the volume, and one-line refusals of bad settings."""

from __future__ import annotations

import re
import threading
import time

import pytest
import requests

from tests.deploy_support import free_port, wait_until
from tests.docker_support import (PRODUCTION_ADMIN_TOKEN, ROOT, RUN_ID, UPSTREAM_BASE_URL, Account,
                                  FakeUpstreamContainer, assert_arrived_one_by_one, complete, create_account,
                                  docker, gateway_image, inspect, one_line_error, pid1_environ, project_version,
                                  stream_events, wait_healthy, wait_http)

NETWORK = f"{RUN_ID}-run"
VOLUME = f"{RUN_ID}-data"
GATEWAY = f"{RUN_ID}-gateway"
CHUNKS = ["one ", "two ", "three ", "four ", "five"]
CHUNK_DELAY_S = 0.3
IN_FLIGHT_S = 3


@pytest.fixture(scope="module")
def image():
    return gateway_image()


@pytest.fixture(scope="module")
def env_file(tmp_path_factory):
    """README's `cp env.example .env` plus what an operator edits: admin token and an OpenAI upstream."""
    path = tmp_path_factory.mktemp("docker-run") / ".env"
    path.write_text((ROOT / "env.example").read_text() + "\n".join([
        "", f"ADMIN_TOKEN={PRODUCTION_ADMIN_TOKEN}", "OPENAI_API_KEY=sk-test-openai-key",
        f"OPENAI_BASE_URL={UPSTREAM_BASE_URL}", "MOCK_PROVIDER=off", "UPSTREAM_MAX_RETRIES=0", ""]))
    return path


def start_gateway(image, env_file, port: int) -> None:
    docker("run", "-d", "--name", GATEWAY, "--network", NETWORK, "--label", f"dominion-test={RUN_ID}",
           "--env-file", str(env_file), "-v", f"{VOLUME}:/data", "-p", f"127.0.0.1:{port}:3100",
           "--stop-timeout", "150", image.tag)


@pytest.fixture(scope="module")
def served(image, env_file):
    """The fake upstream and the gateway on a network of their own; everything removed afterwards."""
    docker("network", "create", "--label", f"dominion-test={RUN_ID}", NETWORK)
    upstream = FakeUpstreamContainer(f"{RUN_ID}-upstream")
    port = free_port()
    try:
        upstream.start(NETWORK)
        start_gateway(image, env_file, port)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/health/ready")
        yield url, upstream, port
    finally:
        docker("rm", "-f", GATEWAY, check=False)
        upstream.remove()
        docker("network", "rm", NETWORK, check=False)
        docker("volume", "rm", "-f", VOLUME, check=False)


@pytest.fixture(scope="module")
def account(served) -> Account:
    url, _, _ = served
    return create_account(url, PRODUCTION_ADMIN_TOKEN, "ada@example.com")


def test_build_prints_no_warnings(image):
    """D9: useradd's SYS_UID_MAX warning and pip's running-as-root warning are gone. A step served from
    the build cache prints nothing, so this sees the steps that changed since the machine last built."""
    steps = image.log.split("Step 1/", 1)[-1] if "Step 1/" in image.log else image.log
    warnings = [line for line in steps.splitlines() if re.search(r"\bwarn(ing)?\b", line, re.IGNORECASE)]
    assert warnings == []


def test_serves_health_and_readiness_with_sqlite_in_the_volume(served):
    """D2: env.example as the env file no longer moves the database out of /data."""
    url, _, _ = served
    assert requests.get(url + "/health", timeout=5).json() == {"status": "ok"}
    ready = requests.get(url + "/health/ready", timeout=5).json()
    assert ready["status"] == "ready"
    assert ready["checks"]["database"]["status"] == "ok"
    assert ready["checks"]["limiter_storage"]["backend"] == "memory"
    assert docker("exec", GATEWAY, "test", "-s", "/data/gateway.db", check=False).returncode == 0


def test_runs_as_non_root_with_gunicorn_as_pid_1(served):
    assert inspect(GATEWAY, "{{.Config.User}}") == "10001:10001"
    status = docker("exec", GATEWAY, "cat", "/proc/1/status").stdout
    assert re.search(r"^Uid:\s+10001\s+10001", status, re.MULTILINE), status
    assert "gunicorn" in docker("exec", GATEWAY, "cat", "/proc/1/cmdline").stdout
    assert docker("exec", GATEWAY, "touch", "/app/x", check=False).returncode != 0, "/app must be read-only"


def test_openapi_reports_the_project_version(served):
    """D5: the image installs the project, so its metadata (the version) is there."""
    url, _, _ = served
    assert requests.get(url + "/openapi.json", timeout=5).json()["info"]["version"] == project_version()


def test_processes_run_with_two_malloc_arenas(served):
    """D7: MALLOC_ARENA_MAX=2, which the soak test found keeps memory flat, is in the image."""
    assert pid1_environ(GATEWAY)["MALLOC_ARENA_MAX"] == "2"


def test_admin_flow_completion_and_stream(served, account):
    url, upstream, _ = served
    response = complete(url, account)
    assert response.status_code == 200, response.text
    assert response.json()["content"] == "Hello from the fake upstream."
    assert upstream.received()[-1]["path"] == "/v1/chat/completions"

    upstream.enqueue(chunks=CHUNKS, chunk_delay_s=CHUNK_DELAY_S)
    assert_arrived_one_by_one(stream_events(url, account), CHUNKS, CHUNK_DELAY_S)


def test_healthcheck_reports_healthy(served):
    wait_healthy(GATEWAY)


def test_sigterm_lets_a_call_in_flight_finish(served, account):
    """D3: `docker stop` with the documented --stop-timeout 150 drains; the answer arrives, exit code 0."""
    url, upstream, _ = served
    assert inspect(GATEWAY, "{{.Config.StopTimeout}}") == "150"
    upstream.enqueue(delay_s=IN_FLIGHT_S, reply="finished after the stop")
    seen = len(upstream.received())
    result = {}
    call = threading.Thread(target=lambda: result.update(response=complete(url, account)))
    call.start()
    assert wait_until(lambda: len(upstream.received()) > seen, 10), "the call never reached the upstream"
    started = time.monotonic()
    docker("stop", GATEWAY, timeout=200)
    stopped_after = time.monotonic() - started
    call.join(timeout=30)

    assert result["response"].status_code == 200, result["response"].text
    assert result["response"].json()["content"] == "finished after the stop"
    assert inspect(GATEWAY, "{{.State.ExitCode}}") == "0"
    assert stopped_after < IN_FLIGHT_S + 10
    assert "Handling signal: term" in docker("logs", GATEWAY).stderr


def test_data_survives_a_new_container_on_the_volume(served, account, image, env_file):
    url, _, port = served
    docker("rm", "-f", GATEWAY)
    start_gateway(image, env_file, port)
    wait_http(url + "/health/ready")
    assert requests.get(url + "/v1/llm/quota", headers=account.headers, timeout=5).status_code == 200
    logs = docker("logs", GATEWAY)
    assert "Running upgrade" not in logs.stdout + logs.stderr, "migrations ran again on an existing database"


@pytest.mark.parametrize("settings, name", [
    (["-e", "RATE_LIMIT_MAX=abc"], "RATE_LIMIT_MAX"),
    (["-e", "GATEWAY_ENV=production", "-e", f"ADMIN_TOKEN={PRODUCTION_ADMIN_TOKEN}", "-e", "MOCK_PROVIDER=on"],
     "MOCK_PROVIDER"),
])
def test_bad_setting_stops_the_container_with_one_line(image, settings, name):
    """D4: one line naming the setting (the config error path; see docs/deployment.md)."""
    result = docker("run", "--rm", *settings, image.tag, timeout=60, check=False)
    assert name in one_line_error(result)


@pytest.mark.parametrize("sqlite_path", [None, "./data/gateway.db"])
def test_unwritable_sqlite_directory_stops_the_container_with_one_line(image, tmp_path, sqlite_path):
    """D11 (a root-owned bind mount) and D2 (an old .env pointing SQLITE_PATH into read-only /app)."""
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    extra = ["-e", f"SQLITE_PATH={sqlite_path}"] if sqlite_path else []
    result = docker("run", "--rm", "-v", f"{data}:/data", *extra, image.tag, "true", timeout=60, check=False)
    line = one_line_error(result)
    assert line.startswith("SQLITE_PATH=") and "not writable by uid 10001" in line
    assert "chown 10001:10001" in line


def test_bind_mount_owned_by_10001_holds_the_database(image, tmp_path):
    """What docs/deployment.md says to do with a bind-mounted data directory works."""
    data = tmp_path / "data"
    data.mkdir()
    docker("run", "--rm", "-v", f"{data}:/data", "--user", "0", "--entrypoint", "chown", image.tag,
           "10001:10001", "/data")
    docker("run", "--rm", "-v", f"{data}:/data", image.tag, "true", timeout=60)
    assert (data / "gateway.db").stat().st_uid == 10001
