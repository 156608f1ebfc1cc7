"""docker-compose.yml as shipped (nginx -> gateway -> PostgreSQL + Redis), with an .env like the README's:
every service healthy, production settings, the admin flow, a completion and a stream event by event
through nginx against the fake upstream, the pool sized to PostgreSQL (D8), nginx following a re-created
gateway container (D1), a fast 503 while the gateway is down or refusing (D6), a stop draining a stream in
flight, and the data surviving `down` + `up`."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.deploy_support import free_port
from tests.docker_support import (PRODUCTION_ADMIN_TOKEN, PYTHON_IMAGE, RUN_ID, UPSTREAM_BASE_URL, Account,
                                  ComposeProject, FakeUpstreamContainer, assert_arrived_one_by_one, complete,
                                  container_ip, create_account, docker, gateway_image, inspect, pid1_environ,
                                  stream_events, wait_healthy, wait_http)

SERVICES = ("gateway", "nginx", "postgres", "redis")
CHUNKS = ["one ", "two ", "three ", "four ", "five ", "six"]
CHUNK_DELAY_S = 0.4
RESOLVER_VALID_S = 5  # deploy/nginx.conf: resolver ... valid=5s
CONNECT_TIMEOUT_S = 2  # deploy/nginx.conf: proxy_connect_timeout 2s


def write_env(path, port: int, image: str, *extra: str) -> None:
    path.write_text("\n".join([
        f"ADMIN_TOKEN={PRODUCTION_ADMIN_TOKEN}", "OPENAI_API_KEY=sk-test-openai-key",
        f"OPENAI_BASE_URL={UPSTREAM_BASE_URL}", "UPSTREAM_MAX_RETRIES=0", "POSTGRES_PASSWORD=test-postgres-password",
        f"GATEWAY_HTTP_PORT=127.0.0.1:{port}", f"GATEWAY_IMAGE={image}", *extra, ""]))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The full stack on a loopback port, the fake upstream on its network; `down -v` afterwards."""
    image = gateway_image()
    env_file = tmp_path_factory.mktemp("compose") / ".env"
    port = free_port()
    write_env(env_file, port, image.tag)
    project = ComposeProject("docker-compose.yml", "full", env_file, {})
    upstream = FakeUpstreamContainer(f"{project.name}-upstream")
    try:
        project("up", "-d", "--no-build")
        upstream.start(project.network)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/health/ready")
        yield project, url, upstream, env_file, port, image.tag
    finally:
        upstream.remove()
        docker("rm", "-f", f"{project.name}-refuser", check=False)
        project.down()


@pytest.fixture(scope="module")
def account(stack) -> Account:
    _, url, *_ = stack
    return create_account(url, PRODUCTION_ADMIN_TOKEN, "ada@example.com")


def test_every_service_becomes_healthy(stack):
    project, *_ = stack
    for service in SERVICES:
        wait_healthy(project.container(service))


def test_ready_through_nginx_on_postgres_and_redis_in_production(stack):
    project, url, *_ = stack
    ready = requests.get(url + "/health/ready", timeout=5).json()
    assert ready["status"] == "ready"
    assert ready["checks"]["database"]["status"] == "ok"
    assert ready["checks"]["limiter_storage"]["backend"] == "redis"
    environment = pid1_environ(project.container("gateway"))
    assert environment["GATEWAY_ENV"] == "production"
    assert environment["MALLOC_ARENA_MAX"] == "2"


def test_completion_and_stream_event_by_event_through_nginx(stack, account):
    _, url, upstream, *_ = stack
    response = complete(url, account)
    assert response.status_code == 200, response.text
    assert response.json()["content"] == "Hello from the fake upstream."

    upstream.enqueue(chunks=CHUNKS, chunk_delay_s=CHUNK_DELAY_S)
    assert_arrived_one_by_one(stream_events(url, account), CHUNKS, CHUNK_DELAY_S)


def test_pool_fits_postgres_max_connections(stack):
    """D8: the running numbers, not the file: workers x (pool + overflow) under max_connections."""
    project, *_ = stack
    max_connections = int(project("exec", "-T", "postgres", "psql", "-U", "dominion", "-d", "dominion", "-tAc",
                                  "SHOW max_connections").stdout)
    environment = pid1_environ(project.container("gateway"))
    workers = docker("exec", project.container("gateway"), "python", "-c",  # gunicorn processes, minus PID 1
                     "import os; print(sum(1 for p in os.listdir('/proc') if p.isdigit() and "
                     "b'wsgi:app' in open(f'/proc/{p}/cmdline', 'rb').read().split(bytes(1))) - 1)").stdout
    assert int(workers) == int(environment["WEB_CONCURRENCY"]) == 2
    pool = int(environment["DB_POOL_SIZE"]) + int(environment["DB_MAX_OVERFLOW"])
    assert int(workers) * pool <= max_connections - 10, (workers, pool, max_connections)


def test_nginx_follows_a_recreated_gateway_to_its_new_address(stack, account):
    """D1: `docker-compose up -d` after a .env change re-creates only the gateway; its old address is
    taken meanwhile (as a one-off `run` container does), so only a fresh lookup finds it."""
    project, url, upstream, env_file, port, image = stack
    old_gateway, nginx = project.container("gateway"), project.container("nginx")
    nginx_started = inspect(nginx, "{{.State.StartedAt}}")
    old_ip = container_ip(old_gateway, project.network)
    project("stop", "gateway")
    # Docker hands out the lowest free address: without a squatter the gateway would get its old one back.
    squatter = f"{RUN_ID}-squatter"
    docker("run", "-d", "--rm", "--name", squatter, "--network", project.network, PYTHON_IMAGE, "sleep", "300")
    try:
        write_env(env_file, port, image, "DEFAULT_MAX_TOKENS=512")
        project("up", "-d", "--no-build")
        new_gateway = project.container("gateway")
        assert new_gateway != old_gateway, "compose should have re-created the gateway"
        assert container_ip(new_gateway, project.network) != old_ip, "the test needs the address to change"
        assert project.container("nginx") == nginx and inspect(nginx, "{{.State.StartedAt}}") == nginx_started
        wait_http(url + "/health/ready", timeout_s=RESOLVER_VALID_S + 10)
        assert complete(url, account).status_code == 200
    finally:
        docker("rm", "-f", squatter, check=False)


def test_nginx_answers_503_fast_while_the_gateway_is_down_or_refusing(stack):
    """D6: a stopped gateway (its name gone) and a container under its name that refuses connections
    both get nginx's JSON 503 - not 502, and not a 5 s wait ending in 504 \"did not answer in time\"."""
    project, url, *_ = stack
    project("stop", "gateway")
    refuser = f"{project.name}-refuser"
    try:
        down = [timed_get(url + "/v1/llm/models") for _ in range(3)]
        time.sleep(RESOLVER_VALID_S + 1)  # any address cached before the stop has expired by now
        down += [timed_get(url + "/v1/llm/models") for _ in range(3)]
        docker("run", "-d", "--rm", "--name", refuser, "--network", project.network, "--network-alias", "gateway",
               PYTHON_IMAGE, "sleep", "300")
        time.sleep(RESOLVER_VALID_S + 1)  # nginx has looked the name up again: the refuser's address
        refused = [timed_get(url + "/v1/llm/models") for _ in range(3)]
    finally:
        docker("rm", "-f", refuser, check=False)
        project("start", "gateway")

    for seconds, response in down + refused:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "gateway_unreachable"
        assert seconds < CONNECT_TIMEOUT_S + 1
    assert all(seconds < 1 for seconds, _ in down[3:] + refused)
    nginx_log = docker("logs", project.container("nginx")).stderr
    assert "Connection refused" in nginx_log and "could not be resolved" in nginx_log
    wait_http(url + "/health/ready", timeout_s=RESOLVER_VALID_S + 30)


def test_stop_drains_a_stream_in_flight_and_data_survives_down_and_up(stack, account):
    """nginx (SIGQUIT) and gunicorn (SIGTERM) let the stream finish; then `down` + `up` keeps the data."""
    project, url, upstream, *_ = stack
    wait_http(url + "/health/ready", timeout_s=RESOLVER_VALID_S + 30)
    upstream.enqueue(chunks=CHUNKS, chunk_delay_s=CHUNK_DELAY_S)
    stopper = threading.Thread(target=lambda: project("stop", timeout=200))
    events = stream_events(url, account, on_first_event=stopper.start)
    stopper.join(timeout=200)

    assert_arrived_one_by_one(events, CHUNKS, CHUNK_DELAY_S)
    for service in ("gateway", "nginx"):
        container = project.container(service)
        assert inspect(container, "{{.State.Running}} {{.State.ExitCode}}") == "false 0", service

    upstream.remove()  # not the project's: `down` could not remove a network it is attached to
    project("down")
    project("up", "-d", "--no-build")
    wait_http(url + "/health/ready")
    assert requests.get(url + "/v1/llm/quota", headers=account.headers, timeout=5).status_code == 200


def timed_get(url: str) -> tuple[float, requests.Response]:
    started = time.monotonic()
    response = requests.get(url, timeout=15)
    return time.monotonic() - started, response
