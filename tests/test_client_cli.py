"""dominion-pm status, models and ask, run as installed against a live gateway: output, streaming, exit codes."""

import json
import os
import re
import selectors
import signal
import time

import pytest

from tests.client_support import client_venv, database_url, gateway, start_gateway, workspace  # noqa: F401
from tests.conftest import ADMIN_TOKEN
from tests.fake_upstream import Behavior
from tests.upstream_fixtures import closed_port

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def pm(workspace, gateway):
    """The workspace pointed at the gateway through the environment."""
    workspace.env.update(DOMINION_API_URL=gateway.url, DOMINION_API_TOKEN=gateway.key)
    return workspace


def one_error_line(result) -> str:
    """stderr must be exactly one line starting with 'error: '; returns it."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_status_names_the_key_and_tabulates_quotas(pm, gateway, fake_upstream):
    assert pm.run("ask", "--model", "gpt-4o-mini", "hello").returncode == 0
    result = pm.run("status")
    assert result.returncode == 0, result.stderr
    public_id = gateway.key.split("_")[1]
    assert f"Key:     dom_{public_id}_**** (from DOMINION_API_TOKEN), accepted" in result.stdout
    assert gateway.key not in result.stdout
    assert "Rate limit: 60 requests per 60 s" in result.stdout
    assert "In flight:  0 (no cap)" in result.stdout
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in result.stdout.splitlines() if line.startswith("│")}
    assert rows["daily requests"][:4] == ["1,000", "1", "0", "999"]
    assert rows["daily tokens"][0] == "100,000"
    assert rows["monthly spend (USD)"][0] == "$50.00"
    assert re.fullmatch(r"20\d\d-\d\d-\d\d 00:00 UTC \(in (\d+h )?\d+m\)", rows["daily requests"][4])


def test_status_json_is_the_gateways_quota(pm):
    result = pm.run("status", "--json")
    quota = json.loads(result.stdout)
    assert set(quota) == {"daily_requests", "daily_tokens", "monthly_spend_usd", "concurrent_requests", "rate_limit"}
    assert quota["daily_requests"]["used"] == 0


def test_models_lists_available_models_with_prices(pm, app_factory, live_server_factory):
    result = pm.run("models")
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in result.stdout.splitlines() if line.startswith("│")}
    assert rows["gpt-4o"] == ["openai", "128,000", "16,384", "$2.50", "$1.25", "$10.00"]
    assert rows["mock-1"][0] == "mock"
    assert "claude-haiku-4-5" in rows


def test_models_hides_models_nobody_can_serve_unless_all(workspace, app_factory, live_server_factory):
    app = app_factory(OPENAI_API_KEY="", ANTHROPIC_API_KEY="")
    from tests.conftest import create_account

    account = create_account(app.test_client(), ADMIN)
    server = live_server_factory(app)
    workspace.env.update(DOMINION_API_URL=server.url, DOMINION_API_TOKEN=account.api_key)
    available = json.loads(workspace.run("models", "--json").stdout)
    assert [m["id"] for m in available] == ["mock-1"]
    everything = json.loads(workspace.run("models", "--all", "--json").stdout)
    assert "gpt-4o" in [m["id"] for m in everything] and len(everything) > 1
    assert "gpt-4o (unavailable)" in workspace.run("models", "--all").stdout


def test_ask_prints_the_answer(pm, fake_upstream):
    fake_upstream.enqueue(Behavior(chunks=["Seven", " is prime."]))
    result = pm.run("ask", "--model", "gpt-4o-mini", "Name", "a", "prime")
    assert (result.returncode, result.stdout, result.stderr) == (0, "Seven is prime.\n", "")
    assert fake_upstream.requests[0].body["messages"] == [{"role": "user", "content": "Name a prime"}]
    assert fake_upstream.requests[0].body["stream"] is True


def test_ask_streams_output_as_it_arrives(pm, fake_upstream):
    """Each piece reaches a pipe while the next is still being generated upstream."""
    pieces = ["first ", "second ", "third"]
    fake_upstream.enqueue(Behavior(chunks=pieces, chunk_delay_s=0.6))
    process = pm.popen("ask", "--model", "gpt-4o-mini", "count")
    arrivals = read_with_times(process)
    assert process.wait(timeout=30) == 0
    text = b"".join(chunk for _, chunk in arrivals).decode()
    assert text == "first second third\n"
    seen_first = next(t for t, _ in cumulative(arrivals) if "first" in _)
    seen_third = next(t for t, _ in cumulative(arrivals) if "third" in _)
    assert seen_third - seen_first >= 0.9, arrivals
    before_third = [s for t, s in cumulative(arrivals) if t < seen_third]
    assert any("first" in s and "third" not in s for s in before_third)


def read_with_times(process, limit_s: float = 30) -> list[tuple[float, bytes]]:
    """(monotonic time, bytes) for each read of the process's stdout until it closes."""
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    arrivals, deadline = [], time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if selector.select(timeout=0.05):
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            arrivals.append((time.monotonic(), chunk))
    return arrivals


def cumulative(arrivals):
    text = ""
    for moment, chunk in arrivals:
        text += chunk.decode()
        yield moment, text


def test_ctrl_c_hangs_up_and_exits_130(pm, fake_upstream):
    fake_upstream.enqueue(Behavior(chunks=[f"w{i} " for i in range(40)], chunk_delay_s=0.25))
    process = pm.popen("ask", "--model", "gpt-4o-mini", "a long story")
    first = os.read(process.stdout.fileno(), 4096)
    process.send_signal(signal.SIGINT)
    rest = process.stdout.read()
    assert process.wait(timeout=10) == 130
    assert (first + rest).decode().startswith("w0 ") and "w39" not in (first + rest).decode()
    assert process.stderr.read().decode().strip() == "error: Interrupted."


def test_a_reader_that_leaves_early_ends_it_quietly(pm, fake_upstream):
    fake_upstream.enqueue(Behavior(chunks=[f"w{i} " for i in range(40)], chunk_delay_s=0.1))
    process = pm.popen("ask", "--model", "gpt-4o-mini", "a long story")
    os.read(process.stdout.fileno(), 4096)
    process.stdout.close()
    assert process.wait(timeout=20) == 1
    assert process.stderr.read() == b""


def test_ask_reads_stdin_after_the_prompt(pm, fake_upstream):
    result = pm.run("ask", "--model", "gpt-4o-mini", "summarise", stdin="line one\nline two\n")
    assert result.returncode == 0, result.stderr
    assert fake_upstream.requests[0].body["messages"] == [
        {"role": "user", "content": "summarise\n\nline one\nline two"}]


def test_ask_takes_stdin_alone(pm, fake_upstream):
    assert pm.run("ask", "--model", "gpt-4o-mini", stdin="just this").returncode == 0
    assert fake_upstream.requests[0].body["messages"] == [{"role": "user", "content": "just this"}]


def test_ask_forwards_model_system_max_tokens_and_temperature(pm, fake_upstream):
    result = pm.run("ask", "--model", "claude-haiku-4-5", "--system", "Be brief.", "--max-tokens", "42",
                    "--temperature", "0.3", "hi")
    assert result.returncode == 0, result.stderr
    sent = fake_upstream.requests[0]
    assert sent.path == "/v1/messages"
    assert (sent.body["system"], sent.body["max_tokens"], sent.body["temperature"]) == ("Be brief.", 42, 0.3)
    assert sent.body["messages"] == [{"role": "user", "content": "hi"}]


def test_ask_json_prints_the_whole_answer_with_usage_and_cost(pm, fake_upstream):
    fake_upstream.enqueue(Behavior(reply="Four.", prompt_tokens=1000, completion_tokens=500))
    result = pm.run("ask", "--json", "--model", "gpt-4o", "2+2?")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["content"] == "Four." and answer["provider"] == "openai" and answer["model"] == "gpt-4o"
    assert answer["usage"] == {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    assert answer["cost_usd"] == pytest.approx(0.0075)  # 1000 x $2.50/1M + 500 x $10/1M
    assert answer["id"].startswith("req_") and answer["finish_reason"] == "stop"
    assert "stream" not in fake_upstream.requests[0].body or fake_upstream.requests[0].body["stream"] is False


# --- exit codes: 2 usage, 3 authentication, 4 quota or rate limit, 5 gateway/upstream, 6 unreachable ---

def test_exit_2_for_an_unknown_option(pm):
    result = pm.run("ask", "--bogus", "hi")
    assert result.returncode == 2
    line = one_error_line(result)
    assert "--bogus" in line and line.endswith("See `dominion-pm ask --help`.")


def test_exit_2_when_there_is_nothing_to_ask(pm, fake_upstream):
    result = pm.run("ask")
    assert result.returncode == 2
    assert "Nothing to ask" in one_error_line(result)
    assert fake_upstream.hits == 0


def test_exit_2_when_the_gateway_rejects_the_request(pm, fake_upstream):
    result = pm.run("ask", "--temperature", "5", "hi")
    assert result.returncode == 2
    assert "temperature" in one_error_line(result) and "(request req_" in result.stderr
    unknown = pm.run("ask", "--model", "no-such-model", "hi")
    assert unknown.returncode == 2 and "no-such-model" in one_error_line(unknown)
    assert fake_upstream.hits == 0


def test_exit_3_for_a_wrong_key(pm):
    result = pm.run("status", env={"DOMINION_API_TOKEN": "dom_aaaaaaaaaaaa_" + "b" * 43})
    assert result.returncode == 3
    assert "API key" in one_error_line(result)


def test_exit_3_without_any_key(workspace, gateway):
    result = workspace.run("ask", "hi", env={"DOMINION_API_URL": gateway.url})
    assert result.returncode == 3
    assert "dominion-pm login" in one_error_line(result)


def test_exit_3_for_a_suspended_user(pm, gateway):
    assert gateway.admin.post(f"/admin/users/{gateway.account.user_id}/suspend", headers=ADMIN).status_code == 200
    result = pm.run("ask", "hi")
    assert result.returncode == 3
    one_error_line(result)


def test_exit_4_when_the_quota_is_used_up_with_its_reset_time(workspace, app_factory, live_server_factory,
                                                              admin_headers, fake_upstream):
    limited = start_gateway(app_factory, live_server_factory, admin_headers, daily_requests=1)
    workspace.env.update(DOMINION_API_URL=limited.url, DOMINION_API_TOKEN=limited.key)
    assert workspace.run("ask", "--model", "gpt-4o-mini", "one").returncode == 0
    result = workspace.run("ask", "--model", "gpt-4o-mini", "two")
    assert result.returncode == 4
    line = one_error_line(result)
    assert "daily_requests" in line and "resets at 20" in line
    assert fake_upstream.hits == 1


def test_exit_4_when_rate_limited_with_retry_after(workspace, app_factory, live_server_factory, admin_headers):
    limited = start_gateway(app_factory, live_server_factory, admin_headers, rate_limit_max=1)
    workspace.env.update(DOMINION_API_URL=limited.url, DOMINION_API_TOKEN=limited.key)
    assert workspace.run("status").returncode == 0
    result = workspace.run("status")
    assert result.returncode == 4
    line = one_error_line(result)
    assert "Rate limit exceeded" in line and " Retry after " in line and " UTC)." in line


def test_exit_5_when_the_upstream_fails(pm, fake_upstream):
    fake_upstream.enqueue(Behavior(status=500))
    result = pm.run("ask", "--model", "gpt-4o-mini", "hi")
    assert result.returncode == 5
    one_error_line(result)


def test_exit_5_when_the_stream_breaks_after_output_began(pm, fake_upstream):
    fake_upstream.enqueue(Behavior(chunks=["partial", " never"], error_midstream=True))
    result = pm.run("ask", "--model", "gpt-4o-mini", "hi")
    assert result.returncode == 5
    assert result.stdout == "partial\n"
    one_error_line(result)


def test_exit_5_when_the_url_is_not_the_gateway_root(pm, gateway):
    result = pm.run("status", env={"DOMINION_API_URL": gateway.url + "/v1"})
    assert result.returncode == 5
    assert "gateway's root" in one_error_line(result)


def test_exit_6_when_the_gateway_cannot_be_reached(pm):
    url = f"http://127.0.0.1:{closed_port()}"
    result = pm.run("ask", "hi", env={"DOMINION_API_URL": url})
    assert result.returncode == 6
    assert one_error_line(result).startswith(f"error: Cannot reach the gateway at {url}")
