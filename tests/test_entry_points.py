"""A bad setting ends every entry point with one line naming the setting and a non-zero exit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BAD = {"RATE_LIMIT_MAX": "abc"}
NAMED = "RATE_LIMIT_MAX: must be an integer >= 1, got 'abc'"


def run(command: list[str], extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {"PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(tmp_path),
           "SQLITE_PATH": str(tmp_path / "gateway.db"), "DOTENV_PATH": str(tmp_path / "none.env"),
           "PORT": "3199", **extra}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def our_lines(result: subprocess.CompletedProcess) -> list[str]:
    """What the process printed, less make's own closing status line."""
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if line.strip() and not line.startswith("make: ***")]


def assert_one_line(result: subprocess.CompletedProcess, expected: str = NAMED) -> None:
    assert result.returncode != 0
    assert our_lines(result) == [f"dominion-gateway: configuration error: {expected}"], result.stderr


def test_flask_cli(tmp_path):
    assert_one_line(run([str(BIN / "flask"), "--app", "gateway.app:serve_app", "db", "upgrade"], BAD, tmp_path))


def test_flask_cli_names_an_unwritable_database_directory(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    result = run([str(BIN / "flask"), "--app", "gateway.app:serve_app", "users", "list"],
                 {"SQLITE_PATH": str(blocked / "gateway.db")}, tmp_path)
    assert result.returncode != 0
    assert len(our_lines(result)) == 1 and "SQLITE_PATH: cannot create the directory" in result.stderr


def test_gunicorn(tmp_path):
    command = [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "wsgi:app"]
    assert_one_line(run(command, BAD, tmp_path))
    assert_one_line(run(command, {"GUNICORN_THREADS": "many"}, tmp_path),
                    "GUNICORN_THREADS: must be an integer >= 1, got 'many'")
    missing = tmp_path / "absent.json"
    result = run(command, {"MODEL_CATALOG_FILE": str(missing)}, tmp_path)
    assert result.returncode != 0 and len(our_lines(result)) == 1 and str(missing) in result.stderr


def test_wsgi_module(tmp_path):
    assert_one_line(run([sys.executable, "-c", "import wsgi"], BAD, tmp_path))


def test_make_run(tmp_path):
    if shutil.which("make") is None or not (ROOT / ".venv" / "bin" / "flask").exists():
        pytest.skip("make run needs make and the project's .venv (made by make test)")
    result = run(["make", "--no-print-directory", "run"], BAD, tmp_path)
    assert_one_line(result)
