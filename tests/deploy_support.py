"""Helpers of the deployment tests: a real gunicorn (deploy/gunicorn.conf.py, wsgi:app) and a real nginx
(deploy/nginx.conf) as subprocesses on 127.0.0.1, a prepared SQLite database, source-bound HTTP clients."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

from gateway.extensions import db
from tests.conftest import ADMIN_TOKEN, Account, base_config, create_account, make_app, missing_service

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
START_TIMEOUT_S = 20
STOP_TIMEOUT_S = 20


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll predicate until it is true or the time is up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


def require_tool(name: str) -> str:
    """The tool's path; skip (fail under DOMINION_REQUIRE_SERVICES=1) when it is not installed."""
    path = shutil.which(name) or shutil.which(name, path=f"{Path(sys.executable).parent}:/usr/sbin:/sbin")
    if path is None:
        missing_service(f"{name} is not installed")
    return path


def prepare_database(path: Path, fake_upstream) -> Account:
    """Create the schema in a SQLite file and an account through the admin API, in this process."""
    app = make_app(base_config(f"sqlite:///{path}", fake_upstream))
    try:
        return create_account(app.test_client(), {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def usage_rows(path: Path) -> list[dict]:
    """The audit log of a SQLite file, read directly."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute("SELECT * FROM usage_records ORDER BY id")]


def gateway_env(db_path: Path, fake_upstream, **overrides) -> dict:
    """A clean environment for a served gateway: nothing inherited from the developer's shell or .env."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DOTENV_PATH": os.devnull,
        "HOST": "127.0.0.1",
        "GATEWAY_ENV": "development",
        "DATABASE_URL": f"sqlite:///{db_path}",
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "MOCK_PROVIDER": "off",
        "OPENAI_API_KEY": "sk-test-openai-key",
        "ANTHROPIC_API_KEY": "sk-ant-test-key",
        "OPENAI_BASE_URL": fake_upstream.openai_base_url,
        "ANTHROPIC_BASE_URL": fake_upstream.anthropic_base_url,
        "UPSTREAM_TIMEOUT_S": "5",
        "UPSTREAM_MAX_RETRIES": "0",
        "SWEEP_INTERVAL_S": "0",
        "GUNICORN_GRACEFUL_TIMEOUT": "10",
        "GUNICORN_THREADS": "8",
    }
    env.update({name: str(value) for name, value in overrides.items()})
    return env


@dataclass
class Served:
    """A running subprocess server: its URL, process and combined stdout/stderr log."""

    url: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def gunicorn(env: dict, log_path: Path) -> Iterator[Served]:
    """`gunicorn -c deploy/gunicorn.conf.py wsgi:app` on a free loopback port; always stopped."""
    port = free_port()
    env = {**env, "PORT": str(port)}
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "wsgi:app"],
                                   cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    served = Served(f"http://127.0.0.1:{port}", port, process, log_path)
    try:
        _wait_ready(served, "/health/ready")
        yield served
    finally:
        stop(process)


@contextlib.contextmanager
def nginx(upstream_port: int, workdir: Path) -> Iterator[Served]:
    """deploy/nginx.conf, pointed at the given loopback port, served by a real nginx in the foreground."""
    binary = require_tool("nginx")
    port = free_port()
    conf = render_nginx_conf(workdir, upstream_port, port)
    log_path = workdir / "nginx.out"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([binary, "-p", str(workdir), "-e", str(workdir / "error.log"), "-c", str(conf),
                                    "-g", "daemon off;"], stdout=log_file, stderr=subprocess.STDOUT)
    served = Served(f"http://127.0.0.1:{port}", port, process, log_path)
    try:
        _wait_ready(served, "/health")
        yield served
    finally:
        stop(process)


def render_nginx_conf(workdir: Path, upstream_port: int, listen_port: int) -> Path:
    """The shipped server config with loopback addresses, inside a minimal main config using workdir."""
    server = NGINX_CONF.read_text()
    server, upstreams = re.subn(r"set \$gateway_upstream gateway:3100;",
                                f"set $gateway_upstream 127.0.0.1:{upstream_port};", server)
    server, listens = re.subn(r"listen 80;", f"listen 127.0.0.1:{listen_port};", server)
    assert (upstreams, listens) == (1, 1), \
        "deploy/nginx.conf no longer has `set $gateway_upstream gateway:3100;`/`listen 80;`"
    (workdir / "gateway.conf").write_text(server)
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp_paths = "".join(f"    {kind}_temp_path {workdir / kind};\n"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = (f"{user}worker_processes 1;\npid {workdir / 'nginx.pid'};\nerror_log {workdir / 'error.log'} warn;\n"
            f"events {{ worker_connections 256; }}\n"
            f"http {{\n{temp_paths}    include {workdir / 'gateway.conf'};\n}}\n")
    path = workdir / "nginx.conf"
    path.write_text(main)
    return path


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, a bounded wait, then SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_ready(served: Served, path: str) -> None:
    def answers() -> bool:
        if served.process.poll() is not None:
            raise AssertionError(f"server exited with {served.process.returncode}:\n{served.log()}")
        try:
            return requests.get(served.url + path, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    if not wait_until(answers, START_TIMEOUT_S, 0.1):
        raise AssertionError(f"server not ready after {START_TIMEOUT_S}s:\n{served.log()}")


class _SourceAdapter(HTTPAdapter):
    def __init__(self, source_ip: str) -> None:
        self._source_ip = source_ip
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self._source_ip, 0)
        return super().init_poolmanager(*args, **kwargs)


def session_from(source_ip: str) -> requests.Session:
    """A client whose connections come from the given loopback address (127.0.0.0/8 all reach 127.0.0.1)."""
    session = requests.Session()
    session.mount("http://", _SourceAdapter(source_ip))
    return session


def sse_events(response: requests.Response) -> Iterator[tuple[float, str, str]]:
    """(arrival time, event name, data) for each SSE event, as the bytes arrive."""
    buffer = b""
    for piece in response.iter_content(chunk_size=None):
        arrived = time.monotonic()
        buffer += piece
        while b"\n\n" in buffer:
            frame, buffer = buffer.split(b"\n\n", 1)
            fields = dict(line.split(": ", 1) for line in frame.decode().splitlines() if ": " in line)
            yield arrived, fields.get("event", "message"), fields.get("data", "")


def start_gunicorn(env: dict, port: int) -> subprocess.Popen:
    """gunicorn with the project's config on 127.0.0.1:port, returned once /health answers."""
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
                               env={**env, "PORT": str(port)}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
            return process
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("gunicorn did not start")
