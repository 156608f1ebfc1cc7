"""dominion-pm chat in a pseudo-terminal, against a live gateway: history, Ctrl-C, Ctrl-D, errors."""

import io
import time

import pexpect
import pytest

from tests.client_support import client_venv, database_url, gateway, interruptible, workspace  # noqa: F401
from tests.conftest import ADMIN_TOKEN
from tests.fake_upstream import Behavior

PROMPT = "you> "


@pytest.fixture
def chat(workspace, gateway):
    """Start `dominion-pm chat --model gpt-4o-mini ...extra` in a terminal; closed after the test."""
    children = []

    def start(*extra: str, token: str | None = None) -> pexpect.spawn:
        env = {**workspace.env, "DOMINION_API_URL": gateway.url, "DOMINION_API_TOKEN": token or gateway.key}
        child = pexpect.spawn(workspace.executable, ["chat", "--model", "gpt-4o-mini", *extra],
                              cwd=str(workspace.cwd), env=env, encoding="utf-8", timeout=20,
                              dimensions=(40, 160), preexec_fn=interruptible)
        child.logfile_read = io.StringIO()
        children.append(child)
        child.expect_exact("Ctrl-C stops an answer, Ctrl-D leaves.")
        child.expect_exact(PROMPT)
        return child

    yield start
    for child in children:
        child.close(force=True)


def leave(child: pexpect.spawn) -> int:
    """Ctrl-D at the prompt; returns the exit status."""
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def test_chat_keeps_the_history_and_ctrl_d_leaves(chat, fake_upstream):
    fake_upstream.enqueue(Behavior(reply="Hello Ada.", prompt_tokens=7, completion_tokens=2),
                          Behavior(reply="You are Ada."))
    child = chat("--system", "Be brief.")
    child.sendline("My name is Ada.")
    child.expect_exact("Hello Ada.")
    child.expect_exact("gpt-4o-mini · 7 in + 2 out tokens · $")
    child.expect_exact(PROMPT)
    child.sendline("Who am I?")
    child.expect_exact("You are Ada.")
    child.expect_exact(PROMPT)
    assert leave(child) == 0
    assert fake_upstream.requests[1].body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "Who am I?"},
    ]


def test_ctrl_c_stops_the_current_answer_and_the_chat_goes_on(chat, fake_upstream, gateway):
    story = [f"word{i} " for i in range(40)]
    fake_upstream.enqueue(Behavior(chunks=story, chunk_delay_s=0.25), Behavior(reply="Short."))
    child = chat()
    child.sendline("Tell a long story")
    child.expect_exact("word1 ")
    stopped_at = time.monotonic()
    child.sendintr()
    child.expect_exact("[stopped]")
    child.expect_exact(PROMPT)
    assert time.monotonic() - stopped_at < 3  # the whole story would take 10 s
    child.sendline("And then?")
    child.expect_exact("Short.")
    child.expect_exact(PROMPT)
    assert leave(child) == 0
    assert "word39" not in child.logfile_read.getvalue()
    first_answer = fake_upstream.requests[1].body["messages"][1]
    assert first_answer["role"] == "assistant" and first_answer["content"].startswith("word0 word1 ")
    assert "word39" not in first_answer["content"]
    assert eventually_disconnected(gateway)


def eventually_disconnected(gateway, within_s: float = 10) -> bool:
    """The gateway settled the stopped stream as client_disconnected (it notices at its next write)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        records = gateway.admin.get("/admin/usage/records",
                                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).get_json()["data"]
        if any(r["status"] == "client_disconnected" for r in records):
            return True
        time.sleep(0.2)
    return False


def test_ctrl_c_at_the_prompt_only_clears_the_line(chat, fake_upstream):
    child = chat()
    child.send("half a thought")
    child.expect_exact("half a thought")
    # As a person would: a moment after typing. CPython's readline loses a SIGINT that lands while it is
    # still handling the keystrokes (it notices at the next key), which is not what this test is about.
    time.sleep(0.3)
    child.sendintr()
    child.expect_exact(PROMPT)
    child.sendline("hello")
    child.expect_exact("Hello from the fake upstream.")
    child.expect_exact(PROMPT)
    assert leave(child) == 0
    assert fake_upstream.requests[0].body["messages"] == [{"role": "user", "content": "hello"}]


def test_a_failed_turn_is_reported_and_left_out_of_the_history(chat, fake_upstream):
    fake_upstream.enqueue(Behavior(status=500), Behavior(reply="Back again."))
    child = chat()
    child.sendline("first try")
    child.expect_exact("error: ")
    child.expect_exact(PROMPT)
    child.sendline("second try")
    child.expect_exact("Back again.")
    child.expect_exact(PROMPT)
    assert leave(child) == 0
    assert fake_upstream.requests[-1].body["messages"] == [{"role": "user", "content": "second try"}]


def test_a_refused_key_ends_the_chat_with_exit_3(chat, fake_upstream):
    child = chat(token="dom_aaaaaaaaaaaa_" + "b" * 43)
    child.sendline("hello")
    child.expect_exact("error: ")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3
    assert fake_upstream.hits == 0
