"""Where dominion-pm gets the URL and key: flags > environment > ./pm.config.yaml > the login file, and login
itself (verified before saving, mode 0600), run as installed against a live gateway."""

import io
import stat

import pexpect
import pytest
import yaml

from tests.client_support import client_venv, database_url, gateway, workspace  # noqa: F401
from tests.upstream_fixtures import closed_port

WRONG_KEY = "dom_aaaaaaaaaaaa_" + "b" * 43


def config_lines(result) -> dict:
    """`dominion-pm config` output as {"url": (value, source), "token": (value, source)}."""
    assert result.returncode == 0, result.stderr
    shown = {}
    for line in result.stdout.splitlines():
        name, _, rest = line.partition(":")
        if name in ("url", "token"):
            value, _, source = rest.strip().partition("  (from ")
            shown[name] = (value, source.removesuffix(")"))
    return shown


def write_login_file(workspace, url: str, token: str) -> None:
    workspace.login_file.parent.mkdir(parents=True, exist_ok=True)
    workspace.login_file.write_text(yaml.safe_dump({"gateway": {"url": url, "token": token}}))


def masked(key: str) -> str:
    return f"dom_{key.split('_')[1]}_****"


@pytest.mark.parametrize("source", ["flags before the command", "flags after the command", "environment",
                                    "pm.config.yaml", "login file"])
def test_each_source_alone_configures_a_working_client(workspace, gateway, source):
    flags = ["--url", gateway.url, "--token", gateway.key]
    before = flags if source == "flags before the command" else []
    after = flags if source == "flags after the command" else []
    env = {"DOMINION_API_URL": gateway.url, "DOMINION_API_TOKEN": gateway.key} if source == "environment" else {}
    if source == "pm.config.yaml":
        workspace.write_project_config(gateway.url, gateway.key)
    if source == "login file":
        write_login_file(workspace, gateway.url, gateway.key)

    def run(command):
        return workspace.run(*before, command, *after, env=env)

    status = run("status")
    assert status.returncode == 0, status.stderr
    shown = config_lines(run("config"))
    assert shown["url"][0] == gateway.url and shown["token"][0] == masked(gateway.key)
    expected_sources = {"environment": ("DOMINION_API_URL", "DOMINION_API_TOKEN"),
                        "pm.config.yaml": (str(workspace.cwd / "pm.config.yaml"),) * 2,
                        "login file": (f"login file {workspace.login_file}",) * 2}.get(source, ("--url", "--token"))
    assert (shown["url"][1], shown["token"][1]) == expected_sources


def test_precedence_flag_then_environment_then_project_file_then_login(workspace):
    write_login_file(workspace, "http://login.example:1", "dom_login0000000_x")
    workspace.write_project_config("http://project.example:1", "dom_project000000_x")
    env = {"DOMINION_API_URL": "http://env.example:1", "DOMINION_API_TOKEN": "dom_env000000000_x"}
    flags = ["--url", "http://flag.example:1", "--token", "dom_flag00000000_x"]

    assert config_lines(workspace.run(*flags, "config", env=env)) == {
        "url": ("http://flag.example:1", "--url"), "token": ("dom_flag00000000_****", "--token")}
    assert config_lines(workspace.run("config", env=env)) == {
        "url": ("http://env.example:1", "DOMINION_API_URL"),
        "token": ("dom_env000000000_****", "DOMINION_API_TOKEN")}
    project = str(workspace.cwd / "pm.config.yaml")
    assert config_lines(workspace.run("config")) == {
        "url": ("http://project.example:1", project), "token": ("dom_project000000_****", project)}
    (workspace.cwd / "pm.config.yaml").unlink()
    login = f"login file {workspace.login_file}"
    assert config_lines(workspace.run("config")) == {
        "url": ("http://login.example:1", login), "token": ("dom_login0000000_****", login)}
    workspace.login_file.unlink()
    assert config_lines(workspace.run("config")) == {
        "url": ("http://localhost:3100", "default"), "token": ("-", "not set")}


def test_a_flag_after_the_command_beats_one_before_it(workspace):
    shown = config_lines(workspace.run("--url", "http://before.example:1", "config", "--url", "http://after.example:1"))
    assert shown["url"] == ("http://after.example:1", "--url")


def test_the_higher_source_wins_in_real_requests_and_values_resolve_separately(workspace, gateway):
    workspace.write_project_config(token=WRONG_KEY)
    env = {"DOMINION_API_URL": gateway.url, "DOMINION_API_TOKEN": gateway.key}
    assert workspace.run("status", env=env).returncode == 0
    assert workspace.run("status", env={**env, "DOMINION_API_TOKEN": ""}).returncode == 3
    workspace.write_project_config(token=gateway.key)
    assert workspace.run("status", env={"DOMINION_API_URL": gateway.url}).returncode == 0
    assert workspace.run("--token", WRONG_KEY, "status", env={"DOMINION_API_URL": gateway.url}).returncode == 3


def test_config_never_shows_the_secret(workspace, gateway):
    result = workspace.run("config", env={"DOMINION_API_TOKEN": gateway.key})
    secret = gateway.key.split("_", 2)[2]
    assert secret not in result.stdout + result.stderr
    assert masked(gateway.key) in result.stdout


@pytest.mark.parametrize("content, complaint", [
    ("gateway: [unclosed\n", "is not valid YAML (line 2)"),
    ("gateway: just-a-string\n", "`gateway` must be a mapping"),
    ("gateway:\n  url: 3100\n", "gateway.url must be a string"),
])
def test_a_broken_project_file_is_a_usage_error(workspace, content, complaint):
    (workspace.cwd / "pm.config.yaml").write_text(content)
    result = workspace.run("config")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and complaint in lines[0], result.stderr


def test_login_with_the_key_on_stdin_verifies_and_saves_it_for_the_owner_only(workspace, gateway):
    result = workspace.run("login", "--url", gateway.url, stdin=gateway.key + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Logged in to {gateway.url} with key {masked(gateway.key)}.")
    assert gateway.key not in result.stdout
    assert stat.S_IMODE(workspace.login_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(workspace.login_file.parent.stat().st_mode) == 0o700
    assert yaml.safe_load(workspace.login_file.read_text()) == {"gateway": {"url": gateway.url, "token": gateway.key}}
    assert [p.name for p in workspace.login_file.parent.iterdir()] == ["config.yaml"]
    assert workspace.run("status").returncode == 0


def test_login_with_flags(workspace, gateway):
    result = workspace.run("login", "--url", gateway.url + "/", "--token", gateway.key)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(workspace.login_file.read_text())["gateway"]["url"] == gateway.url


def test_login_refuses_a_wrong_key_and_keeps_the_saved_one(workspace, gateway):
    assert workspace.run("login", "--url", gateway.url, "--token", gateway.key).returncode == 0
    saved = workspace.login_file.read_text()
    result = workspace.run("login", "--url", gateway.url, "--token", WRONG_KEY)
    assert result.returncode == 3
    assert result.stderr.startswith("error: ") and "Nothing was saved." in result.stderr
    assert workspace.login_file.read_text() == saved


def test_login_to_an_unreachable_gateway_saves_nothing(workspace):
    result = workspace.run("login", "--url", f"http://127.0.0.1:{closed_port()}", "--token", WRONG_KEY)
    assert result.returncode == 6
    assert not workspace.login_file.exists()


def test_login_without_a_key_is_a_usage_error(workspace, gateway):
    result = workspace.run("login", "--url", gateway.url, stdin="")
    assert result.returncode == 2 and "No key given" in result.stderr
    assert not workspace.login_file.exists()


def test_login_says_when_a_higher_source_still_wins(workspace, gateway):
    result = workspace.run("login", "--url", gateway.url, "--token", gateway.key,
                           env={"DOMINION_API_TOKEN": WRONG_KEY})
    assert result.returncode == 0
    assert "comes from DOMINION_API_TOKEN, which beats the login file" in result.stderr


def test_logout_forgets_the_key(workspace, gateway):
    assert workspace.run("login", "--url", gateway.url, "--token", gateway.key).returncode == 0
    result = workspace.run("logout")
    assert (result.returncode, result.stdout) == (0, f"Removed {workspace.login_file}.\n")
    assert not workspace.login_file.exists()
    assert workspace.run("status").returncode == 3
    assert workspace.run("logout").stdout == f"No saved login at {workspace.login_file}.\n"


def test_login_asks_for_url_and_hidden_key_in_a_terminal(workspace, gateway):
    child = pexpect.spawn(workspace.executable, ["login"], cwd=str(workspace.cwd), env=workspace.env,
                          encoding="utf-8", timeout=20)
    child.logfile_read = transcript = io.StringIO()
    child.expect_exact("Gateway URL [http://localhost:3100]: ")
    child.sendline(gateway.url)
    child.expect_exact("Gateway key (dom_...): ")
    child.sendline(gateway.key)
    child.expect_exact(f"Logged in to {gateway.url} with key {masked(gateway.key)}.")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert gateway.url in transcript.getvalue() and gateway.key not in transcript.getvalue()
    assert yaml.safe_load(workspace.login_file.read_text())["gateway"]["token"] == gateway.key
