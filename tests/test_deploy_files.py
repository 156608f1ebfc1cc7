"""The deployment files: Dockerfile lints clean (hadolint), both compose files validate (docker-compose
config), gunicorn settings follow the environment, the entrypoint migrates then serves."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.deploy_support import GUNICORN_CONF, ROOT, require_tool

COMPOSE_FILES = ("docker-compose.yml", "docker-compose.sqlite.yml")


def test_dockerfile_is_hadolint_clean():
    hadolint = require_tool("hadolint")
    result = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_non_root_with_a_health_check_and_the_entrypoint():
    dockerfile = (ROOT / "Dockerfile").read_text()
    instructions = [line.split()[0] for line in dockerfile.splitlines() if line and line[0].isupper()]
    assert "USER" in instructions and "HEALTHCHECK" in instructions
    assert "USER root" not in dockerfile and "USER 0" not in dockerfile
    assert dockerfile.index("COPY pyproject.toml") < dockerfile.index("pip install") < dockerfile.index("COPY gateway")
    assert '"/app/deploy/docker-entrypoint.sh"' in dockerfile


def test_dockerignore_ships_no_local_state():
    rules = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert rules[0] == "*", "an allow-list: ignore everything, then name what the image needs"
    allowed = [line[1:] for line in rules if line.startswith("!")]
    assert not any(name.startswith((".env", "data", ".venv", ".git", "tests")) for name in allowed)


def test_entrypoint_migrates_then_execs_gunicorn():
    script = ROOT / "deploy" / "docker-entrypoint.sh"
    assert script.stat().st_mode & 0o111, "the entrypoint must be executable"
    assert subprocess.run(["sh", "-n", str(script)], timeout=10).returncode == 0
    text = script.read_text()
    assert text.index("flask --app gateway.app:serve_app db upgrade") < text.index(
        "gunicorn -c deploy/gunicorn.conf.py wsgi:app")
    assert 'exec "$@"' in text


@pytest.mark.parametrize("compose_file", COMPOSE_FILES)
def test_compose_file_is_valid(compose_file, tmp_path):
    """Validated as docs/deployment.md runs it: `cp env.example .env`, then docker-compose -f FILE."""
    compose = require_tool("docker-compose")
    for name in (*COMPOSE_FILES, "env.example"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "env.example", tmp_path / ".env")
    result = subprocess.run([compose, "-f", compose_file, "config", "-q"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_compose_wires_gateway_to_postgres_redis_and_nginx(tmp_path):
    compose = require_tool("docker-compose")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path)
    shutil.copy(ROOT / "env.example", tmp_path / ".env")
    result = subprocess.run([compose, "config"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    config = result.stdout
    for expected in ("DATABASE_URL: postgresql://dominion:dominion@postgres:5432/dominion",
                     "RATELIMIT_STORAGE_URI: redis://redis:6379/0", "TRUSTED_PROXY_COUNT: '1'",
                     "condition: service_healthy", "image: postgres:16", "image: redis:7", "image: nginx:"):
        assert expected in config, expected
    services = subprocess.run([compose, "config", "--services"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60).stdout.split()
    assert sorted(services) == ["gateway", "nginx", "postgres", "redis"]


def gunicorn_settings(**env) -> dict:
    """deploy/gunicorn.conf.py evaluated in a clean subprocess (it sets environment variables)."""
    code = ("import json, runpy; d = runpy.run_path(%r); d['on_exit'](None); print(json.dumps({k: d[k] for k in "
            "('workers', 'threads', 'worker_class', 'graceful_timeout', 'bind', 'accesslog', "
            "'access_log_format')}))" % str(GUNICORN_CONF))
    result = subprocess.run([sys.executable, "-c", code], env={"DOTENV_PATH": "/dev/null", **env},
                            capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_gunicorn_runs_one_worker_on_memory_limits_and_several_on_redis():
    assert gunicorn_settings()["workers"] == 1
    assert gunicorn_settings(RATELIMIT_STORAGE_URI="redis://redis:6379/0")["workers"] >= 2
    assert gunicorn_settings(RATELIMIT_STORAGE_URI="redis://r:6379/0", WEB_CONCURRENCY="5")["workers"] == 5


def test_gunicorn_drains_for_longer_than_an_upstream_call():
    settings = gunicorn_settings(UPSTREAM_TIMEOUT_S="300", PORT="8000", HOST="127.0.0.1")
    assert settings["worker_class"] == "gthread"
    assert settings["graceful_timeout"] >= 300
    assert settings["bind"] == "127.0.0.1:8000"


def test_gunicorn_access_log_has_no_query_string_and_no_request_headers():
    settings = gunicorn_settings(GUNICORN_ACCESS_LOG="-")
    assert settings["accesslog"] == "-"
    log_format = settings["access_log_format"]
    assert "%(U)s" in log_format
    assert not any(atom in log_format for atom in ("%(r)s", "%(q)s", "%(a)s", "%(f)s", "}i)s", "%(headers)s"))


def compose_environment(compose_file: str, workdir, dotenv: str | None) -> dict:
    """The gateway's environment as docker-compose resolves it, with the given .env (None = no .env)."""
    compose = require_tool("docker-compose")
    shutil.copy(ROOT / compose_file, workdir / compose_file)
    if dotenv is not None:
        (workdir / ".env").write_text(dotenv)
    result = subprocess.run([compose, "-f", compose_file, "config"], cwd=workdir, capture_output=True, text=True,
                            timeout=60, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]["gateway"]["environment"]


def env_example_names() -> list[str]:
    return re.findall(r"^#?([A-Z][A-Z0-9_]+)=", (ROOT / "env.example").read_text(), re.MULTILINE)


@pytest.mark.parametrize("compose_file", COMPOSE_FILES)
def test_compose_needs_no_dotenv_file(compose_file, tmp_path):
    """D10: `docker-compose up` on a fresh checkout; unset settings are left out, not set empty."""
    environment = compose_environment(compose_file, tmp_path, dotenv=None)
    assert environment["ADMIN_TOKEN"] is None


@pytest.mark.parametrize("compose_file", COMPOSE_FILES)
def test_compose_passes_every_setting_of_env_example_to_the_gateway(compose_file, tmp_path):
    """Each env.example setting is either wired by the compose file or taken from .env; none is dropped."""
    # Read by compose itself, or (DOTENV_PATH) by gunicorn's config outside containers: not the gateway's.
    compose_only = {"POSTGRES_PASSWORD", "GATEWAY_HTTP_PORT", "GATEWAY_PORT", "GATEWAY_IMAGE", "DOTENV_PATH"}
    if compose_file == "docker-compose.yml":
        compose_only.add("SQLITE_PATH")  # PostgreSQL stack: the image's /data/gateway.db is never used
    names = [name for name in env_example_names() if name not in compose_only]
    environment = compose_environment(compose_file, tmp_path, "".join(f"{name}=from-dotenv\n" for name in names))
    missing = [name for name in names if name not in environment]
    assert missing == [], f"add {missing} to the gateway's environment in {compose_file}"
    assert environment["ADMIN_TOKEN"] == "from-dotenv"
    wired = {name: value for name, value in environment.items() if value != "from-dotenv"}
    expected_wired = {"HOST", "PORT", "DATABASE_URL", "RATELIMIT_STORAGE_URI"}
    if compose_file == "docker-compose.yml":
        expected_wired |= {"GATEWAY_ENV", "TRUSTED_PROXY_COUNT"}
    else:
        expected_wired |= {"SQLITE_PATH", "WEB_CONCURRENCY"}
    assert expected_wired <= set(wired), wired


@pytest.mark.parametrize("compose_file", COMPOSE_FILES)
def test_compose_never_unsets_what_the_image_sets(compose_file, tmp_path):
    """Compose v1 sends a bare name that is unset as "NAME", and Docker then removes the image's value."""
    image_env = set(re.findall(r"^\s+([A-Z][A-Z0-9_]+)=", (ROOT / "Dockerfile").read_text(), re.MULTILINE))
    assert {"MALLOC_ARENA_MAX", "SQLITE_PATH", "HOST", "PORT"} <= image_env
    environment = compose_environment(compose_file, tmp_path, dotenv=None)
    unset = [name for name in image_env if name in environment and environment[name] is None]
    assert unset == []
    assert environment["MALLOC_ARENA_MAX"] == "2"


def test_full_stack_is_production_with_a_pool_that_fits_postgres(tmp_path):
    """D8: workers x (pool + overflow) stays under max_connections, with room for migrations and psql."""
    environment = compose_environment("docker-compose.yml", tmp_path, dotenv=None)
    assert environment["GATEWAY_ENV"] == "production"
    config = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = " ".join(config["services"]["postgres"]["command"])
    max_connections = int(re.search(r"max_connections=(\d+)", command).group(1))
    per_worker = int(environment["DB_POOL_SIZE"]) + int(environment["DB_MAX_OVERFLOW"])
    assert int(environment["WEB_CONCURRENCY"]) * per_worker <= max_connections - 10
