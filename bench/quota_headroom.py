"""How close to a cap a user gets before the first refusal, now that reservations hold the worst case.

    .venv/bin/python bench/quota_headroom.py

The gateway reserves every prompt byte as a token plus all of max_tokens, and admits a request only if
that worst case fits (docs/reliability.md, "The ledger contract"). This measures what that costs a user:
a real app (SQLite in a temp dir) and the test suite's fake upstream on 127.0.0.1, requests sent one at a
time (or by N concurrent clients) until the first 429, then the share of the cap actually billed.
Upstream billing: "english" bills one token per word of an English prompt (about 5-6 bytes a token, as
real tokenizers do on prose) and a typical answer; "worst" bills the contract's worst case (one token per
byte, all of max_tokens). Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.app import create_app  # noqa: E402
from gateway.extensions import db  # noqa: E402
from gateway.models import UsageCounter  # noqa: E402
from gateway.services.pricing import MESSAGE_OVERHEAD_TOKENS, REPLY_PRIMER_TOKENS  # noqa: E402
from tests.conftest import ADMIN_TOKEN, base_config, create_account, reset_schema  # noqa: E402
from tests.fake_upstream import Behavior, FakeUpstream  # noqa: E402

PROSE = ("The quarterly report shows revenue growth in every region, with the strongest gains in "
         "subscription renewals and a modest decline in one-off services. ")
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SCENARIOS = [  # (name, quota, limit, model, prompt bytes, max_tokens, billing, concurrent clients)
    ("chat, default max_tokens", "monthly_spend_cap_usd", "0.05", "gpt-4o-mini", 2000, 1024, "english", 1),
    ("chat, 8 clients at once", "monthly_spend_cap_usd", "0.05", "gpt-4o-mini", 2000, 1024, "english", 8),
    ("long prompts", "monthly_spend_cap_usd", "0.50", "claude-haiku-4-5", 20000, 512, "english", 1),
    ("daily tokens, default quota", "daily_tokens", 100000, "gpt-4o-mini", 2000, 1024, "english", 1),
    ("daily tokens, small max_tokens", "daily_tokens", 100000, "gpt-4o-mini", 2000, 256, "english", 1),
    ("worst-case billing", "monthly_spend_cap_usd", "0.05", "gpt-4o-mini", 2000, 1024, "worst", 1),
]


def behavior(billing: str, max_tokens: int) -> Behavior:
    if billing == "worst":
        return Behavior(bill_bytes=True, bill_message_overhead=MESSAGE_OVERHEAD_TOKENS,
                        bill_primer=REPLY_PRIMER_TOKENS, completion_tokens=max_tokens)
    return Behavior(completion_tokens=min(300, max_tokens))  # prompt: one token per word


def run(name, quota, limit, model, prompt_bytes, max_tokens, billing, clients, upstream, tmp) -> str:
    upstream.reset()
    upstream.set_default(behavior(billing, max_tokens))
    app = create_app(base_config(f"sqlite:///{tmp}/{abs(hash(name))}.db", upstream,
                                 RATE_LIMIT_MAX=100000, IP_RATE_LIMIT_MAX=100000))
    with app.app_context():
        reset_schema()
    client = app.test_client()
    # Only the quota under test can refuse: the others are set out of reach.
    limits = {"daily_requests": 10**6, "daily_tokens": 10**12, "monthly_spend_cap_usd": "1000000", quota: limit}
    account = create_account(client, ADMIN, email=f"{abs(hash(name))}@example.com", **limits)
    text = (PROSE * (prompt_bytes // len(PROSE) + 1))[:prompt_bytes]
    payload = {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}]}

    def ask(_):
        response = client.post("/v1/llm/complete", json=payload, headers=account.headers)
        if response.status_code == 429:
            assert response.get_json()["error"]["code"] == quota, response.get_json()
        return response.status_code

    admitted = 0
    with ThreadPoolExecutor(max_workers=clients) as pool:
        while True:
            codes = list(pool.map(ask, range(clients)))
            admitted += codes.count(200)
            if 429 in codes:
                break
    with app.app_context():
        day = db.session.query(UsageCounter).filter_by(period="day").one()
        month = db.session.query(UsageCounter).filter_by(period="month").one()
        db.session.remove()
        db.engine.dispose()
    used = {"daily_tokens": day.tokens, "monthly_spend_cap_usd": month.spend_nanousd}[quota]
    cap = int(Decimal(limit) * 10**9) if quota == "monthly_spend_cap_usd" else int(limit)
    unit = "n$" if quota == "monthly_spend_cap_usd" else "tokens"
    return (f"{name:32} {quota:22} {str(limit):>8} {clients:>3} {admitted:>6} "
            f"{used:>12,} {unit:6} {100 * used / cap:6.2f}%  {100 * (cap - used) / cap:5.2f}%")


def main() -> None:
    upstream = FakeUpstream().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"{'scenario':32} {'quota':22} {'limit':>8} {'cl':>3} {'admit':>6} {'billed at refusal':>19} "
                  f"{'of cap':>7}  {'left':>6}")
            for scenario in SCENARIOS:
                print(run(*scenario, upstream=upstream, tmp=tmp), flush=True)
    finally:
        upstream.stop()


if __name__ == "__main__":
    main()
