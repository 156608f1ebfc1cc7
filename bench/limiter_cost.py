"""CPU per request of the rate-limit layer and the per-request hooks, through the WSGI app, no HTTP server.

    python bench/limiter_cost.py                      # this tree, memory:// and redis://127.0.0.1:6379/14
    python bench/limiter_cost.py --compare /tmp/base  # side by side with another checkout, rounds alternate
    python bench/limiter_cost.py --pace-ms 5          # requests 5 ms apart, as a lightly loaded worker sees them

Each round runs N requests of three kinds in one process (time.process_time, so every thread of it counts):
- `complete`: POST /v1/chat/completions on the mock model, the whole governed hot path on SQLite;
- `limited`: a probe view behind the same two limits (per IP, per user) and every app hook, no database;
- `exempt`: GET /health, the same hooks without any limit (what the limits add = limited - exempt).
Redis round trips per request are counted on the client's connections. Limits are set too high to refuse.
One child process per tree and storage builds its app once; rounds run the trees back to back per kind.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef0123456789"
STORAGES = {"memory": "memory://", "redis": "redis://127.0.0.1:6379/14"}
KINDS = ("complete", "limited", "exempt")


def build_app(storage_uri: str, db_path: str):
    """The real app on a fresh SQLite file, plus a probe blueprint behind the per-user limit."""
    from flask import Blueprint, g

    from gateway.app import create_app
    from gateway.blueprints.caller import user_rate_limit
    from gateway.extensions import db

    app = create_app({
        "GATEWAY_ENV": "testing", "DATABASE_URL": f"sqlite:///{db_path}", "ADMIN_TOKEN": ADMIN_TOKEN,
        "MOCK_PROVIDER": "on", "RATELIMIT_STORAGE_URI": storage_uri, "SWEEP_INTERVAL_S": "0",
        "RATE_LIMIT_MAX": "1000000000", "IP_RATE_LIMIT_MAX": "1000000000", "AUTH_FAILURE_LIMIT": "1000000",
        "DEFAULT_DAILY_REQUESTS": "1000000000", "DEFAULT_DAILY_TOKENS": "1000000000000",
        "DEFAULT_MONTHLY_SPEND_CAP_USD": "1000000000", "PROMPT_LOGGING": "redacted",
    })
    probe = Blueprint("bench_probe", __name__, url_prefix="/bench")
    caller = SimpleNamespace(user_id=1, key_prefix="dom_bench",
                             limits=SimpleNamespace(rate_limit_max=1000000000))

    @probe.before_request
    def _caller():
        g.caller = caller

    @probe.get("/limited")
    @user_rate_limit
    def limited():
        return {"ok": True}

    app.register_blueprint(probe)
    with app.app_context():
        db.create_all()
    return app


def make_key(app) -> str:
    client = app.test_client()
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    user = client.post("/admin/users", json={"name": "Bench", "email": "bench@example.com"}, headers=admin)
    key = client.post("/admin/keys", json={"user_id": user.get_json()["id"], "name": "bench"}, headers=admin)
    return key.get_json()["api_key"]


def environ_for(method: str, path: str, key: str | None, body: bytes = b"") -> dict:
    from werkzeug.test import EnvironBuilder

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    builder = EnvironBuilder(path=path, method=method, headers=headers, data=body or None,
                             content_type="application/json" if body else None,
                             environ_base={"REMOTE_ADDR": "192.0.2.10"})
    try:
        return builder.get_environ()
    finally:
        builder.close()


def run_requests(app, template: dict, body: bytes, count: int, pace_s: float = 0) -> float:
    """CPU seconds of `count` requests, each a copy of template through app.wsgi_app, pace_s of sleep
    between them (a paced client: background threads get to run, as between real requests); all 200."""
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    wsgi = app.wsgi_app
    started = time.process_time()
    for _ in range(count):
        environ = dict(template)
        environ["wsgi.input"] = io.BytesIO(body)
        result = wsgi(environ, start_response)
        for _chunk in result:
            pass
        if hasattr(result, "close"):
            result.close()
        if pace_s:
            time.sleep(pace_s)
    spent = time.process_time() - started
    bad = [s for s in statuses if not s.startswith("200")]
    if bad:
        raise SystemExit(f"{len(bad)} requests were not 200, e.g. {bad[0]}")
    return spent


class RoundTrips:
    """Counts commands sent to Redis (a pipeline is one send) by wrapping the client's connection class."""

    def __init__(self) -> None:
        self.count = 0
        try:
            from redis.connection import Connection
        except ImportError:
            return
        original = Connection.send_packed_command

        def counted(conn, command, check_health=True):
            self.count += 1
            return original(conn, command, check_health)

        Connection.send_packed_command = counted


def serve(storage: str, warmup: int, pace_s: float) -> None:
    """Child process: build the app once, then answer "<kind> <count>" lines on stdin with one JSON line
    each (ms of CPU per request, Redis round trips per request) until stdin closes."""
    trips = RoundTrips()
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(STORAGES[storage], f"{tmp}/bench.db")
        key = make_key(app)
        body = json.dumps({"model": "mock-1", "max_tokens": 16,
                           "messages": [{"role": "user", "content": "hello"}]}).encode()
        cases = {"complete": (environ_for("POST", "/v1/chat/completions", key, body), body),
                 "limited": (environ_for("GET", "/bench/limited", None), b""),
                 "exempt": (environ_for("GET", "/health", None), b"")}
        for template, payload in cases.values():
            run_requests(app, template, payload, warmup)
        print("ready", flush=True)
        for line in sys.stdin:
            kind, count = line.split()
            template, payload = cases[kind]
            before = trips.count
            spent = run_requests(app, template, payload, int(count), pace_s)
            print(json.dumps({"ms": 1000 * spent / int(count), "trips": (trips.count - before) / int(count)}),
                  flush=True)


class Child:
    """One serving child process on one tree and storage."""

    def __init__(self, tree: Path, storage: str, warmup: int, pace_ms: float) -> None:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        self.proc = subprocess.Popen([sys.executable, str(HERE / "limiter_cost.py"), "--child", storage,
                                      "--warmup", str(warmup), "--pace-ms", str(pace_ms)], cwd=tree, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"{tree} {storage}: the child did not start (run it alone to see why)")

    def run(self, kind: str, count: int) -> dict:
        self.proc.stdin.write(f"{kind} {count}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", choices=sorted(STORAGES))
    parser.add_argument("--storage", nargs="+", default=["memory", "redis"], choices=sorted(STORAGES))
    parser.add_argument("--requests", type=int, default=500, help="requests per kind per round")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--pace-ms", type=float, default=0, help="sleep between requests (0: back to back)")
    parser.add_argument("--compare", type=Path, help="another checkout (the 'before'), run alternately")
    args = parser.parse_args()
    if args.child:
        sys.stderr = open(os.devnull, "w")  # the JSON access log, as gunicorn would write it, but unread
        serve(args.child, args.warmup, args.pace_ms / 1000)
        return
    trees = {"this": HERE.parent}
    if args.compare:
        trees = {"before": args.compare.resolve(), "after": HERE.parent}
    children = {(t, s): Child(tree, s, args.warmup, args.pace_ms) for t, tree in trees.items() for s in args.storage}
    results = {key: {kind: [] for kind in KINDS} for key in children}
    trips = {}
    try:
        for _ in range(args.rounds):
            for storage in args.storage:
                for kind in KINDS:
                    for name in trees:  # before and after back to back: drift hits both
                        measured = children[(name, storage)].run(kind, args.requests)
                        results[(name, storage)][kind].append(measured["ms"])
                        trips[(name, storage, kind)] = measured["trips"]
    finally:
        for child in children.values():
            child.close()
    report(results, trips, trees, args)


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}..{max(values):.3f}]"


def report(results: dict, trips: dict, trees: dict, args) -> None:
    pace = f"{args.pace_ms:g} ms apart" if args.pace_ms else "back to back"
    print(f"CPU ms/request, median [min..max] of {args.rounds} rounds x {args.requests} requests per kind "
          f"({pace}); load average at the end {os.getloadavg()[0]:.1f}")
    print("| storage | tree | complete | limited | exempt | limits (limited - exempt) | redis trips/req "
          "(complete, limited) |")
    print("|---|---|---|---|---|---|---|")
    for (name, storage), kinds in results.items():
        limits = [a - b for a, b in zip(kinds["limited"], kinds["exempt"])]
        print(f"| {storage} | {name} | " + " | ".join(_cell(kinds[k]) for k in KINDS) +
              f" | {_cell(limits)} | {trips[(name, storage, 'complete')]:g}, "
              f"{trips[(name, storage, 'limited')]:g} |")
    if "before" not in trees:
        return
    print()
    print("after/before, median of the per-round ratios [min..max] (each round runs both back to back)")
    print("| storage | complete | limited | exempt | limits (limited - exempt) |")
    print("|---|---|---|---|---|")
    for storage in args.storage:
        before, after = results[("before", storage)], results[("after", storage)]
        cells = [_cell([a / b for a, b in zip(after[k], before[k])]) for k in KINDS]
        limits_before = [a - b for a, b in zip(before["limited"], before["exempt"])]
        limits_after = [a - b for a, b in zip(after["limited"], after["exempt"])]
        ratio = statistics.median(limits_after) / statistics.median(limits_before)
        print(f"| {storage} | " + " | ".join(cells) + f" | {ratio:.2f} |")


if __name__ == "__main__":
    main()
