"""The audit log: one row per admitted request, exact cost, prompt privacy, abandoned streams billed."""

import json
import logging
import time

import requests
from sqlalchemy import select, text

from gateway.extensions import db
from gateway.models import UsageRecord
from tests.conftest import counters_match_audit, create_account
from tests.fake_upstream import Behavior

SECRET_PROMPT = "PURPLE-ELEPHANT-42 the launch code is 0000"


def every_stored_value(app) -> str:
    """All audit rows, every column, as one string."""
    with app.app_context():
        rows = db.session.execute(text("SELECT * FROM usage_records")).mappings().all()
    return json.dumps([dict(r) for r in rows], default=str)


def ask(client, account, content=SECRET_PROMPT, **body):
    return client.post("/v1/llm/complete", headers=account.headers,
                       json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], **body})


def test_default_redacted_keeps_no_prompt_text_in_db_or_logs(app, client, account, caplog):
    caplog.set_level(logging.DEBUG)
    assert ask(client, account).status_code == 200
    assert ask(client, account, model="no-such-model").status_code == 400
    stored = every_stored_value(app)
    assert "PURPLE-ELEPHANT" not in stored and "launch code" not in stored
    with app.app_context():
        record = db.session.execute(select(UsageRecord)).scalar_one()
    assert record.prompt_record["mode"] == "redacted"
    assert record.prompt_record["messages"] == [{"role": "user", "chars": len(SECRET_PROMPT)}]
    assert len(record.prompt_record["sha256"]) == 64
    logs = caplog.text
    assert "PURPLE-ELEPHANT" not in logs and account.api_key not in logs


def test_full_mode_stores_text_with_secrets_masked(app_factory, admin_headers):
    client = app_factory(PROMPT_LOGGING="full").test_client()
    account = create_account(client, admin_headers)
    ask(client, account, content=f"my key is {account.api_key} ok")
    stored = every_stored_value(client.application)
    assert "my key is dom_*** ok" in stored
    assert account.api_key not in stored


def test_off_mode_stores_no_prompt_record(app_factory, admin_headers):
    client = app_factory(PROMPT_LOGGING="off").test_client()
    account = create_account(client, admin_headers)
    ask(client, account)
    with client.application.app_context():
        assert db.session.execute(select(UsageRecord.prompt_record)).scalar_one() is None


def test_row_has_key_ip_latencies_and_price_snapshot(app, client, account, fake_upstream):
    fake_upstream.enqueue(Behavior(prompt_tokens=100, completion_tokens=50, cached_tokens=40))
    ask(client, account)
    with app.app_context():
        record = db.session.execute(select(UsageRecord)).scalar_one()
    assert record.key_id == account.key_id and record.client_ip == "127.0.0.1"
    assert record.latency_ms is not None and record.upstream_latency_ms is not None
    assert record.latency_ms >= record.upstream_latency_ms
    # 60 x 0.15 + 40 x 0.075 + 50 x 0.60 per 1M USD = 9000 + 3000 + 30000 nano-USD
    assert record.cost_nanousd == 42_000
    snapshot = record.price_snapshot
    assert (snapshot["model"], snapshot["input"], snapshot["cached_input"], snapshot["output"]) == \
        ("gpt-4o-mini", "0.15", "0.075", "0.60")
    assert snapshot["price_version"] and snapshot["unit"] == "per_1m_tokens"
    assert (record.finished_at - record.created_at).total_seconds() >= 0


def test_abandoned_stream_is_settled_with_delivered_output(app, client, account, fake_upstream,
                                                           live_server_factory):
    fake_upstream.enqueue(Behavior(chunks=["word "] * 200, chunk_delay_s=0.02))
    server = live_server_factory(app)
    response = requests.post(f"{server.url}/v1/llm/complete", headers=account.headers, stream=True,
                             json={"model": "gpt-4o-mini", "stream": True,
                                   "messages": [{"role": "user", "content": "count"}]})
    lines = response.iter_lines()
    received = [next(lines) for _ in range(12)]
    assert any(b"delta" in line for line in received)
    response.close()
    record = None
    for _ in range(100):
        with app.app_context():
            record = db.session.execute(select(UsageRecord)).scalar_one()
        if record.status != "pending":
            break
        time.sleep(0.1)
    assert record.status == "client_disconnected"
    assert record.counted and 0 < record.completion_tokens < 200 * 2
    # The prompt as ordinary text would cost (ceil(5 / 3) + 4 + 3), not its worst case (the reservation).
    assert (record.prompt_tokens, record.reserved_prompt_tokens, record.billing_rule) == (9, 5 + 8 + 8, "estimate")
    assert record.cost_nanousd > 0
    assert counters_match_audit(app) == []
