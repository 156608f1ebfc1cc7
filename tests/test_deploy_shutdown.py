"""SIGTERM to gunicorn (deploy/gunicorn.conf.py) while a stream is in flight: the stream finishes and is
settled as ok in the audit log, no new connection is served, and the server then exits cleanly."""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest
import requests

from tests.deploy_support import gateway_env, gunicorn, prepare_database, sse_events, usage_rows, wait_until
from tests.fake_upstream import Behavior

CHUNKS = [f"part{n} " for n in range(10)]
CHUNK_DELAY_S = 0.3


def test_sigterm_drains_a_stream_in_flight_then_refuses_connections(tmp_path, fake_upstream):
    fake_upstream.reset()
    db_path = tmp_path / "gateway.db"
    account = prepare_database(db_path, fake_upstream)
    fake_upstream.enqueue(Behavior(chunks=CHUNKS, chunk_delay_s=CHUNK_DELAY_S))
    with gunicorn(gateway_env(db_path, fake_upstream), tmp_path / "gunicorn.out") as server:
        with requests.post(server.url + "/v1/llm/complete", headers=account.headers, stream=True, timeout=10,
                           json={"model": "gpt-4o-mini", "stream": True,
                                 "messages": [{"role": "user", "content": "count slowly"}]}) as response:
            events = sse_events(response)
            _, first_name, first_data = next(events)
            assert first_name == "start"
            request_id = json.loads(first_data)["id"]

            server.process.send_signal(signal.SIGTERM)
            assert wait_until(lambda: "Handling signal: term" in server.log(), 5), server.log()
            time.sleep(0.3)  # the master has closed its listener and told the worker to stop accepting
            with pytest.raises(requests.RequestException):
                requests.get(server.url + "/health", timeout=1)

            rest = [(name, json.loads(data)) for _, name, data in events]

        assert "".join(body["content"] for name, body in rest if name == "delta") == "".join(CHUNKS)
        assert rest[-1][0] == "done"
        assert server.process.wait(timeout=15) == 0, server.log()

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    row = next(r for r in usage_rows(db_path) if r["request_id"] == request_id)
    assert (row["status"], row["completion_tokens"]) == ("ok", len(CHUNKS))
    fake_upstream.reset()
