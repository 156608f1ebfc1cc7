"""`pip install ./client` alone: the client's dependencies are its own, and its Python API works."""

import subprocess
import textwrap

import pytest

from tests.client_support import client_venv, database_url, gateway, workspace  # noqa: F401
from tests.fake_upstream import Behavior
from tests.upstream_fixtures import closed_port


def venv_python(venv, code: str) -> subprocess.CompletedProcess:
    """Run code in the client's venv from its own directory, so the checkout's gateway/ is not on sys.path."""
    return subprocess.run([str(venv / "bin" / "python"), "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin"}, cwd=venv)


@pytest.mark.parametrize("module", ["flask", "sqlalchemy", "marshmallow", "werkzeug", "gateway", "requests"])
def test_server_packages_are_not_installed(client_venv, module):
    result = venv_python(client_venv, f"import {module}")
    assert result.returncode == 1 and "ModuleNotFoundError" in result.stderr, result.stderr


def test_client_packages_are_installed(client_venv):
    result = venv_python(client_venv, """
        import click, httpx, platformdirs, rich, yaml
        import dominion_pm
        print(dominion_pm.__version__)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0.1.0"


def test_console_script_lists_every_command(workspace):
    result = workspace.run("--help")
    assert result.returncode == 0, result.stderr
    for command in ("login", "logout", "config", "status", "models", "ask", "chat"):
        assert f"  {command} " in result.stdout
    assert workspace.run("--version").stdout.strip() == "dominion-pm, version 0.1.0"


def test_python_api_completes_and_streams(client_venv, gateway, fake_upstream):
    fake_upstream.enqueue(Behavior(reply="Whole answer", prompt_tokens=3, completion_tokens=2),
                          Behavior(chunks=["Str", "eamed"], prompt_tokens=3, completion_tokens=2))
    result = venv_python(client_venv, f"""
        from dominion_pm import Delta, DominionClient, Done
        with DominionClient({gateway.url!r}, {gateway.key!r}) as client:
            reply = client.complete([{{"role": "user", "content": "hi"}}], model="gpt-4o-mini", max_tokens=5)
            print(reply["content"], reply["usage"]["total_tokens"], reply["provider"])
            events = list(client.stream([{{"role": "user", "content": "hi"}}], model="gpt-4o-mini"))
            print([e.text for e in events if isinstance(e, Delta)])
            done = events[-1]
            print(type(done).__name__, done.model, done.finish_reason, done.usage["total_tokens"])
            print(sorted(m["id"] for m in client.models() if m["available"])[:1])
            print(client.quota()["daily_requests"]["used"])
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Whole answer 5 openai",
        "['Str', 'eamed']",
        "Done gpt-4o-mini stop 5",
        "['claude-haiku-4-5']",
        "2",
    ]
    assert fake_upstream.requests[0].body["max_completion_tokens"] == 5


def test_python_api_raises_typed_errors(client_venv, gateway):
    result = venv_python(client_venv, f"""
        from dominion_pm import AuthenticationError, ConnectionFailed, UsageError, DominionClient
        try:
            DominionClient({gateway.url!r}, "dom_aaaaaaaaaaaa_" + "b" * 43).quota()
        except AuthenticationError as error:
            print("auth", error.status, error.error_type, error.exit_code)
        try:
            DominionClient({gateway.url!r}, {gateway.key!r}).complete([{{"role": "user", "content": "x"}}],
                                                                     model="no-such-model")
        except UsageError as error:
            print("usage", error.status, error.exit_code)
        try:
            DominionClient("http://127.0.0.1:{closed_port()}", "k").quota()
        except ConnectionFailed as error:
            print("unreachable", error.exit_code)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["auth 401 authentication_error 3", "usage 400 2", "unreachable 6"]
