"""Helpers of the container tests (tests/test_docker_*.py): the image built once per session from the
unmodified Dockerfile, `docker` / `docker-compose` run with a clean environment, the fake upstream as a
container on the stack's network, HTTP helpers. Everything a run creates carries its RUN_ID in its name
and is removed afterwards. Without a Docker engine the tests skip (and fail under DOMINION_REQUIRE_SERVICES=1,
as in CI, where ../shared/tools/docker-standins starts one)."""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.conftest import ADMIN_TOKEN, missing_service
from tests.deploy_support import sse_events, wait_until

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = f"dgt{os.getpid()}{uuid.uuid4().hex[:4]}"
IMAGE = f"dominion-gateway:test-{RUN_ID}"
PYTHON_IMAGE = "python:3.11-slim-bookworm"  # the Dockerfile's base: present once the image is built
PRODUCTION_ADMIN_TOKEN = ADMIN_TOKEN + "-production"  # >= 32 characters
UPSTREAM_ALIAS = "fakeupstream"
UPSTREAM_BASE_URL = f"http://{UPSTREAM_ALIAS}:8000/v1"
START_TIMEOUT_S = 60
HEALTHY_TIMEOUT_S = 60  # the image's HEALTHCHECK probes first at 15 s


def project_version() -> str:
    """The version pyproject.toml declares."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["project"]["version"]


def run(args: list[str], timeout: float = 120, check: bool = True, env: dict | None = None,
        cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """A command with its output captured; check=True raises with the output when it fails."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """`docker ARGS`, output captured."""
    return run(["docker", *args], timeout=timeout, check=check)


def require_docker() -> None:
    """Skip (fail in CI) unless a Docker engine answers."""
    if shutil.which("docker") is None:
        missing_service("docker is not installed (../shared/tools/docker-standins up installs and starts it)")
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
        missing_service("no Docker engine is running (../shared/tools/docker-standins up starts one)")


def require_compose() -> list[str]:
    """docker-compose (v1, as CI has), else `docker compose` (v2); skip (fail in CI) with neither."""
    require_docker()
    path = shutil.which("docker-compose")
    if path is not None:
        return [path]
    if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        return ["docker", "compose"]
    missing_service("neither docker-compose nor `docker compose` is installed")


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    log: str


@functools.cache
def gateway_image() -> BuiltImage:
    """`docker build` of the repository as it is, once per session. The tag is removed at exit, but not
    its parent layers (--no-prune): they are the build cache of the next run."""
    require_docker()
    result = run(["docker", "build", "-t", IMAGE, "."], timeout=900)
    atexit.register(subprocess.run, ["docker", "image", "rm", "--no-prune", IMAGE], capture_output=True, timeout=60)
    return BuiltImage(IMAGE, result.stdout + result.stderr)


def inspect(name: str, template: str) -> str:
    """`docker inspect -f TEMPLATE` of a container."""
    return docker("inspect", "-f", template, name).stdout.strip()


def container_ip(name: str, network: str) -> str:
    """The container's address on the network."""
    return inspect(name, "{{(index .NetworkSettings.Networks \"%s\").IPAddress}}" % network)


def health(name: str) -> str:
    """starting / healthy / unhealthy (the HEALTHCHECK's verdict), or none."""
    return inspect(name, "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}")


def wait_healthy(name: str, timeout_s: float = HEALTHY_TIMEOUT_S) -> None:
    """Until the container's HEALTHCHECK says healthy; its last log lines in the assertion otherwise."""
    if not wait_until(lambda: health(name) == "healthy", timeout_s, 1):
        logs = docker("logs", "--tail", "30", name, check=False)
        raise AssertionError(f"{name} is {health(name)} after {timeout_s}s:\n{logs.stdout}{logs.stderr}")


def wait_http(url: str, timeout_s: float = START_TIMEOUT_S, status: int = 200) -> requests.Response:
    """Poll url until it answers with status; the last response (or error) is in the assertion."""
    last: list = [None]

    def answers() -> bool:
        try:
            last[0] = requests.get(url, timeout=3)
        except requests.RequestException as error:
            last[0] = error
            return False
        return last[0].status_code == status

    if not wait_until(answers, timeout_s, 0.25):
        detail = last[0].text if isinstance(last[0], requests.Response) else last[0]
        raise AssertionError(f"{url} did not answer {status} in {timeout_s}s: {detail}")
    return last[0]


def pid1_environ(name: str) -> dict:
    """The environment of the container's PID 1 (gunicorn), which its workers inherit."""
    raw = docker("exec", name, "cat", "/proc/1/environ").stdout
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


class FakeUpstreamContainer:
    """tests/fake_upstream.py in the Dockerfile's base image on a network, reachable as UPSTREAM_ALIAS."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.control_url = ""

    def start(self, network: str) -> FakeUpstreamContainer:
        docker("run", "-d", "--name", self.name, "--network", network, "--network-alias", UPSTREAM_ALIAS,
               "--label", f"dominion-test={RUN_ID}", "-e", "PYTHONDONTWRITEBYTECODE=1",
               "-v", f"{ROOT / 'tests'}:/srv/tests:ro", PYTHON_IMAGE, "python", "/srv/tests/docker_upstream.py")
        self.control_url = f"http://{container_ip(self.name, network)}:8001"
        wait_http(self.control_url + "/requests", 30)
        return self

    def enqueue(self, **behavior) -> None:
        """A Behavior (tests/fake_upstream.py) for the next upstream request."""
        requests.post(self.control_url + "/enqueue", json=[behavior], timeout=5).raise_for_status()

    def received(self) -> list[dict]:
        """What the fake received so far: path and body of each request."""
        return requests.get(self.control_url + "/requests", timeout=5).json()

    def remove(self) -> None:
        """Kill and remove the container (python as PID 1 ignores SIGTERM)."""
        docker("rm", "-f", self.name, check=False)


class ComposeProject:
    """One of the repository's compose files under a project name of this run, with its own env file and
    nothing inherited from the developer's shell or checkout .env; `down -v` removes everything."""

    def __init__(self, compose_file: str, service_suffix: str, env_file: Path, environment: dict) -> None:
        self.binary = require_compose()
        self.name = f"{RUN_ID}{service_suffix}"
        self.compose_file = compose_file
        self.env_file = env_file
        self.environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
                            **({"DOCKER_HOST": os.environ["DOCKER_HOST"]} if "DOCKER_HOST" in os.environ else {}),
                            **environment}

    @property
    def network(self) -> str:
        """The project's default network (both Compose versions name it so)."""
        return f"{self.name}_default"

    def __call__(self, *args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
        """`docker-compose -p NAME -f FILE --env-file ENV ARGS`."""
        return run([*self.binary, "-p", self.name, "-f", str(ROOT / self.compose_file),
                    "--env-file", str(self.env_file), *args], timeout=timeout, check=check, env=self.environment)

    def container(self, service: str) -> str:
        """The id of the service's (one) container."""
        ids = self("ps", "-q", service).stdout.split()
        assert len(ids) == 1, f"{service}: containers {ids}"
        return ids[0]

    def down(self) -> None:
        """Remove the project's containers, networks and volumes."""
        self("down", "-v", "--remove-orphans", "--timeout", "20", check=False)


@dataclass
class Account:
    user_id: int
    key: str

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"}


def create_account(base_url: str, admin_token: str, email: str) -> Account:
    """README's admin flow over HTTP: POST /admin/users, then POST /admin/keys."""
    admin = {"Authorization": f"Bearer {admin_token}"}
    user = requests.post(base_url + "/admin/users", headers=admin, timeout=10,
                         json={"name": "Ada Lovelace", "email": email})
    assert user.status_code == 201, user.text
    key = requests.post(base_url + "/admin/keys", headers=admin, timeout=10,
                        json={"user_id": user.json()["id"], "name": "laptop"})
    assert key.status_code == 201, key.text
    assert key.json()["api_key"].startswith("dom_")
    return Account(user.json()["id"], key.json()["api_key"])


def complete(base_url: str, account: Account, content: str = "Hello", **extra) -> requests.Response:
    """POST /v1/llm/complete for gpt-4o-mini (the fake upstream answers it)."""
    return requests.post(base_url + "/v1/llm/complete", headers=account.headers, timeout=30,
                         json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}],
                               **extra})


def stream_events(base_url: str, account: Account, on_first_event=None) -> list[tuple[float, str, str]]:
    """POST a streamed completion; (arrival time, event, data) per SSE event as the bytes arrive."""
    events = []
    with requests.post(base_url + "/v1/llm/complete", headers=account.headers, stream=True, timeout=60,
                       json={"model": "gpt-4o-mini", "stream": True,
                             "messages": [{"role": "user", "content": "count"}]}) as response:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for event in sse_events(response):
            events.append(event)
            if len(events) == 1 and on_first_event is not None:
                on_first_event()
    return events


def assert_arrived_one_by_one(events: list[tuple[float, str, str]], chunks: list[str], delay_s: float) -> None:
    """Every chunk as its own delta, in order, spread over time (a buffered stream arrives all at once)."""
    deltas = [(at, json.loads(data)["content"]) for at, name, data in events if name == "delta"]
    assert [text for _, text in deltas] == chunks
    assert events[-1][1] == "done", events[-1]
    assert deltas[-1][0] - deltas[0][0] >= delay_s * (len(chunks) - 1) * 0.6


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The container's output when it refused to start; asserts it is one non-empty line."""
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode != 0, f"exited 0:\n{result.stdout}{result.stderr}"
    assert len(lines) == 1, f"{len(lines)} lines, not one:\n" + "\n".join(lines[-40:])
    return lines[0]
