"""The dominion-pm client as a user gets it: installed alone into a fresh venv, run as a process against a
live gateway (real HTTP, the fake upstream behind it), with its config directory and cwd in tmp dirs.

Test modules import the fixtures they use from here, like tests/upstream_fixtures.py.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import Account, LiveServer, create_account

CLIENT_SOURCE = Path(__file__).resolve().parent.parent / "client"
RUN_TIMEOUT_S = 60


def interruptible() -> None:
    """In a child before it runs: Ctrl-C (SIGINT) does its default again. A test run started as a background
    job of a non-interactive shell (or under nohup) ignores SIGINT, and an ignored signal stays ignored in
    every program it starts, so the Ctrl-C tests would test nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="session")
def client_venv(tmp_path_factory) -> Path:
    """A new venv holding only `pip install ./client`, built once per session (~10-20 s with pip's cache)."""
    return installed_client(tmp_path_factory.getbasetemp())


@functools.cache
def installed_client(basetemp: Path) -> Path:
    """Build the venv once: each test module imports the fixture, and pytest would otherwise build one per module."""
    root = basetemp / "dominion-pm"
    source = root / "client-source"
    shutil.copytree(CLIENT_SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                                str(source)], capture_output=True, text=True, timeout=600)
    if installed.returncode != 0:
        pytest.fail(f"pip install ./client failed:\n{installed.stdout}\n{installed.stderr}")
    return venv


@dataclass
class Workspace:
    """Where one test runs dominion-pm: its own cwd, config home and environment."""

    venv: Path
    cwd: Path
    config_home: Path
    env: dict = field(default_factory=dict)

    @property
    def login_file(self) -> Path:
        return self.config_home / "dominion-pm" / "config.yaml"

    @property
    def executable(self) -> str:
        return str(self.venv / "bin" / "dominion-pm")

    def run(self, *args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        """Run dominion-pm to completion; stdin is empty (not a terminal) unless given."""
        return subprocess.run([self.executable, *args], cwd=self.cwd, env={**self.env, **(env or {})},
                              input=stdin if stdin is not None else "", capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S)

    def popen(self, *args: str, env: dict | None = None) -> subprocess.Popen:
        """Start dominion-pm with stdout and stderr as pipes, to watch output as it comes."""
        return subprocess.Popen([self.executable, *args], cwd=self.cwd, env={**self.env, **(env or {})},
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=interruptible)

    def write_project_config(self, url: str | None = None, token: str | None = None) -> Path:
        """./pm.config.yaml with `gateway: {url, token}` (only the values given)."""
        import yaml

        values = {k: v for k, v in (("url", url), ("token", token)) if v is not None}
        path = self.cwd / "pm.config.yaml"
        path.write_text(yaml.safe_dump({"gateway": values}))
        return path


@pytest.fixture
def workspace(client_venv, tmp_path) -> Workspace:
    """A clean environment: no DOMINION_* variables, config home and cwd in tmp, no real home."""
    cwd, config_home, home = tmp_path / "project", tmp_path / "config", tmp_path / "home"
    for path in (cwd, config_home, home):
        path.mkdir()
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("DOMINION_", "XDG_", "PYTHON")) and name not in ("COLUMNS", "LINES")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(config_home), COLUMNS="160", NO_COLOR="1", LANG="C.UTF-8")
    return Workspace(venv=client_venv, cwd=cwd, config_home=config_home, env=env)


@pytest.fixture
def database_url(tmp_path_factory):
    """SQLite only: these tests are about the client, the database is exercised elsewhere on both backends."""
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'gateway.db'}"


@dataclass
class Gateway:
    """A live gateway on 127.0.0.1 with one user and key; `admin` is a test client for operator calls."""

    server: LiveServer
    account: Account
    admin: object

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def key(self) -> str:
        return self.account.api_key


def start_gateway(app_factory, live_server_factory, admin_headers, **limits) -> Gateway:
    """An app (fake upstream behind it), a user with a key and optional limits, served over real HTTP."""
    app = app_factory()
    admin = app.test_client()
    account = create_account(admin, admin_headers, **limits)
    return Gateway(server=live_server_factory(app), account=account, admin=admin)


@pytest.fixture
def gateway(app_factory, live_server_factory, admin_headers) -> Gateway:
    return start_gateway(app_factory, live_server_factory, admin_headers)
