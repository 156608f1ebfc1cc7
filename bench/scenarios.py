"""The benchmark's scenarios: overhead table, streaming, in-flight capacity, growth, soak.

The side-by-side comparison with the floor and LiteLLM lives in compare.py, the profile in cpu_profile.py.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.request

import harness
from harness import Gateway, tree
from hold import hold
from load import BODY, Figure, Run, differences, figures, table, wrk


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, "").strip() or default)


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, "").strip() or default)


DURATION = env_float("BENCH_DURATION", 10)
RUNS = env_int("BENCH_RUNS", 3)
WARMUP = env_float("BENCH_WARMUP", 2)
LEVELS = [int(x) for x in os.environ.get("BENCH_CONCURRENCY", "1 8 32 128").split()]
THREADS = env_int("BENCH_THREADS", 64)
PG_WORKERS = env_int("BENCH_WORKERS", 2)
SQLITE_WORKERS = env_int("BENCH_SQLITE_WORKERS", 1)


def databases() -> list[str]:
    chosen = os.environ.get("BENCH_DB", "sqlite postgres").replace(",", " ").split()
    unknown = set(chosen) - {"sqlite", "postgres"}
    if unknown:
        raise SystemExit(f"BENCH_DB: sqlite and/or postgres, got {' '.join(sorted(unknown))}")
    return chosen


def gateway(db: str, base_url: str, anthropic_url: str, threads: int = THREADS,
            extra: dict | None = None, **where) -> Gateway:
    """Start the gateway; BENCH_GATEWAY_ENV="NAME=value ..." adds settings (e.g. MALLOC_ARENA_MAX=2); `where`
    is harness.Gateway's root / pg_db / redis_db (another checkout beside this one)."""
    workers = PG_WORKERS if db == "postgres" else SQLITE_WORKERS
    added = dict(pair.split("=", 1) for pair in os.environ.get("BENCH_GATEWAY_ENV", "").split())
    return Gateway(db, base_url, anthropic_url, workers, threads, {**added, **(extra or {})}, **where).start()


def fast_upstream() -> tuple[str, str, callable]:
    """(OpenAI base, Anthropic base, pids of nginx) of the canned upstream."""
    port, proc = harness.start_nginx()
    return f"http://127.0.0.1:{port}/v1", f"http://127.0.0.1:{port}", lambda: tree(proc.pid)


def measure(targets: dict[str, tuple[str, str | None, callable]], level: int,
            runs: int = RUNS, duration: float = DURATION) -> dict[str, list[Run]]:
    """Warm each target, then `runs` rounds of one run per target back to back (drift hits all alike)."""
    for url, auth, pids in targets.values():
        wrk(url, level, WARMUP, auth, pids=pids)
    results = {name: [] for name in targets}
    for _ in range(runs):
        for name, (url, auth, pids) in targets.items():
            results[name].append(wrk(url, level, duration, auth, pids=pids))
    return results


def _row(db: str, level: int, name: str, runs: list[Run]) -> list[str]:
    f = figures(runs)
    return [db, str(level), name, f["rps"].show(0), f["p50_ms"].show(), f["p99_ms"].show(),
            str(sum(r.errors for r in runs)), f["cpu_ms"].show(3)]


def _overhead_row(db: str, level: int, gw: list[Run], direct: list[Run]) -> list[str]:
    d = differences(gw, direct)
    return [db, str(level), "overhead (gw - direct)", "", "+" + d["p50_ms"].show(), "+" + d["p99_ms"].show(),
            "", "+" + d["cpu_ms"].show(3)]


HEAD = ["db", "conc", "target", "req/s", "p50 ms", "p99 ms", "errors", "CPU ms/req"]


def overhead_table() -> tuple[str, dict]:
    """The main table: each level through the gateway and straight to nginx, per database."""
    openai_base, anthropic_base, nginx_pids = fast_upstream()
    rows, labels, summary = [], [], {}
    for db in databases():
        gw = gateway(db, openai_base, anthropic_base)
        labels.append(f"{db}: {gw.label()}")
        targets = {"gateway": (f"{gw.url}/v1/chat/completions", gw.auth, gw.pids),
                   "direct": (f"{openai_base}/chat/completions", None, nginx_pids)}
        try:
            for level in LEVELS:
                result = measure(targets, level)
                summary[(db, level)] = result
                rows.append(_row(db, level, "gateway", result["gateway"]))
                rows.append(_row(db, level, "direct (nginx)", result["direct"]))
                rows.append(_overhead_row(db, level, result["gateway"], result["direct"]))
                print(f"  {db} c={level} done", flush=True)
        finally:
            gw.stop()
    title = (f"Overhead: POST /v1/chat/completions (gpt-4o-mini, canned nginx upstream), median of {RUNS} x "
             f"{DURATION:g}s runs [min..max], wrk -t1\n  " + "\n  ".join(labels))
    return title + "\n" + table(HEAD, rows), summary


# ---- streaming -----------------------------------------------------------------------------------

STREAM_CHUNKS = env_int("BENCH_STREAM_CHUNKS", 20)
STREAM_GAP_MS = env_int("BENCH_STREAM_GAP_MS", 20)
STREAM_COUNT = env_int("BENCH_STREAM_COUNT", 20)
STREAM_BODY = json.dumps({"model": "gpt-4o-mini", "stream": True, "max_tokens": 64,
                          "messages": [{"role": "user", "content": "Count slowly."}]})


def stream_once(port: int, path: str, key: str | None, chunks: int) -> tuple[float, list[float], float]:
    """(seconds to the first response byte, seconds to each content chunk, the wall-clock time.time() the
    request was sent at) of one streamed request."""
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json",
            f"Content-Length: {len(STREAM_BODY)}", "Connection: close"]
    if key:
        head.append(f"Authorization: Bearer {key}")
    request = ("\r\n".join(head) + "\r\n\r\n" + STREAM_BODY).encode()
    arrivals: list[float] = []
    first = None
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sent_at, started = time.time(), time.perf_counter()
        sock.sendall(request)
        buffer = b""
        while True:
            data = sock.recv(65536)
            now = time.perf_counter() - started
            if not data:
                break
            first = now if first is None else first
            buffer += data
            while len(arrivals) < chunks and b"tok%d " % len(arrivals) in buffer:
                arrivals.append(now)
            if b"data: [DONE]" in buffer:
                break
    if len(arrivals) != chunks:
        raise RuntimeError(f"stream from {path} delivered {len(arrivals)} of {chunks} chunks: {buffer[-300:]!r}")
    return first, arrivals, sent_at


def streaming() -> str:
    """Added time to first token and per-chunk delay: the gateway vs the same upstream directly."""
    up_port, _ = harness.start_upstream()
    stream_path = f"/stream/{STREAM_CHUNKS}/{STREAM_GAP_MS}/v1"
    base = f"http://127.0.0.1:{up_port}{stream_path}"
    db = "postgres" if "postgres" in databases() else "sqlite"
    gw = gateway(db, base, f"http://127.0.0.1:{up_port}")
    try:
        stream_once(gw.port, "/v1/chat/completions", gw.key, STREAM_CHUNKS)  # warm
        direct, through = [], []
        for _ in range(STREAM_COUNT):
            direct.append(stream_once(up_port, f"{stream_path}/chat/completions", None, STREAM_CHUNKS))
            through.append(stream_once(gw.port, "/v1/chat/completions", gw.key, STREAM_CHUNKS))
    finally:
        gw.stop()
    ms = lambda xs: Figure.of([x * 1000 for x in xs])
    gap = lambda arr: (arr[-1] - arr[0]) / (len(arr) - 1)
    rows = [
        ["first response byte", ms([d[0] for d in direct]).show(), ms([g[0] for g in through]).show(),
         "+" + ms([g[0] - d[0] for d, g in zip(direct, through)]).show()],
        ["first token (chunk 1)", ms([d[1][0] for d in direct]).show(), ms([g[1][0] for g in through]).show(),
         "+" + ms([g[1][0] - d[1][0] for d, g in zip(direct, through)]).show()],
        ["mean gap between chunks", ms([gap(d[1]) for d in direct]).show(3), ms([gap(g[1]) for g in through]).show(3),
         "+" + ms([gap(g[1]) - gap(d[1]) for d, g in zip(direct, through)]).show(3)],
        [f"last token (chunk {STREAM_CHUNKS})", ms([d[1][-1] for d in direct]).show(),
         ms([g[1][-1] for g in through]).show(),
         "+" + ms([g[1][-1] - d[1][-1] for d, g in zip(direct, through)]).show()],
    ]
    title = (f"Streaming: {STREAM_CHUNKS} chunks {STREAM_GAP_MS} ms apart (Python SSE upstream, first chunk after "
             f"{STREAM_GAP_MS} ms), {STREAM_COUNT} sequential streams each way, median [min..max] ms; "
             f"gateway on {gw.label()}.\n  The gateway answers once the upstream's first token is in (so an "
             "early upstream failure is still a plain HTTP error): its first byte carries the first token.")
    return title + "\n" + table(["", "direct", "gateway", "added"], rows)


# ---- in-flight capacity --------------------------------------------------------------------------

SLOW_MS = env_int("BENCH_SLOW_MS", 5000)


def _upstream_stats(port: int, reset: bool = False) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats{'/reset' if reset else ''}", timeout=5) as r:
        return json.load(r)


def _hold(gw: Gateway, up_port: int, level: int) -> list[str]:
    """`level` connections opened evenly over one upstream delay, two 5-second requests each."""
    deadline = time.time() + 60
    while _upstream_stats(up_port)["inflight"] and time.time() < deadline:
        time.sleep(0.5)  # the previous level's requests drain first
    _upstream_stats(up_port, reset=True)
    peak = [0.0, 0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            rss, pss = harness.memory_mib(gw.pids())
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = hold(gw.port, "/v1/chat/completions", gw.key, BODY, level, ramp_s=SLOW_MS / 1000, rounds=2,
                  timeout=4 * SLOW_MS / 1000 + 10)
    done.set()
    sampler.join()
    stats = _upstream_stats(up_port)
    held = result.errors == 0 and stats["peak"] >= 0.98 * level and result.p99_ms < SLOW_MS + 1000
    if result.first_error:
        print(f"  first error at N={level}: {result.first_error}", flush=True)
    return [f"{gw.db}/{gw.threads}", str(level), str(stats["peak"]), str(result.ok), str(result.errors),
            f"{result.p50_ms:.0f}", f"{result.p99_ms:.0f}", f"{result.max_ms:.0f}", f"{peak[0]:.0f}",
            f"{peak[1]:.0f}", "yes" if held else "NO"]


def capacity() -> str:
    """How many concurrent 5-second requests each threads-per-worker setting holds, and the memory."""
    up_port, _ = harness.start_upstream()
    base = f"http://127.0.0.1:{up_port}/slow/{SLOW_MS}/v1"
    default_db = "postgres" if "postgres" in databases() else "sqlite"
    plan = os.environ.get("BENCH_CAPACITY_PLAN", "64:1000 512:500,1000,1200 sqlite/1024:1000")
    rows, labels = [], []
    for item in plan.split():
        db, _, item = item.rpartition("/")
        threads, levels = item.split(":")
        gw = gateway(db or default_db, base, f"http://127.0.0.1:{up_port}", threads=int(threads))
        labels.append(gw.label())
        try:
            for level in levels.split(","):
                rows.append(_hold(gw, up_port, int(level)))
                print(f"  capacity threads={threads} c={level} done", flush=True)
        finally:
            gw.stop()
    title = (f"In-flight capacity: upstream answers after {SLOW_MS} ms; N keep-alive connections opened evenly over "
             f"{SLOW_MS} ms, two requests each (bench/hold.py); 'held' = no errors, the upstream saw >= 98% of N "
             f"at once, p99 < {SLOW_MS + 1000} ms.\n  " + "\n  ".join(dict.fromkeys(labels)) +
             "\n  RSS/PSS = peak sum over gunicorn master + workers (MiB)")
    return title + "\n" + table(["db/threads per worker", "N", "upstream peak", "requests", "errors", "p50 ms",
                                 "p99 ms", "max ms", "RSS MiB", "PSS MiB", "held"], rows)


# ---- growth: the same overhead with a big audit log ----------------------------------------------

GROWTH_ROWS = env_int("BENCH_GROWTH_ROWS", 1_000_000)
GROWTH_LEVEL = env_int("BENCH_GROWTH_CONCURRENCY", 8)
SEED_COLUMNS = ("request_id, user_id, key_id, endpoint, provider, model, status, http_status, stream, counted, "
                "reserved_prompt_tokens, reserved_completion_tokens, reserved_cost_nanousd, prompt_tokens, "
                "completion_tokens, cached_tokens, cost_nanousd, price_snapshot, latency_ms, upstream_latency_ms, "
                "client_ip, prompt_record, day_start, month_start, created_at, finished_at")
PG_SEED = f"""
INSERT INTO usage_records ({SEED_COLUMNS})
SELECT 'seed-' || g, {{user}}, {{key}}, 'chat.completions', 'openai', 'gpt-4o-mini', 'ok', 200, false, false,
       14, 64, 48000, 14, 9, 0, 7500, '{{{{"input":"0.15","output":"0.60"}}}}'::json, 5, 3, '127.0.0.1',
       '{{{{"mode":"redacted"}}}}'::json, (ts)::date, date_trunc('month', ts)::date, ts, ts
FROM (SELECT g, now() - g * interval '7 seconds' - interval '1 day' AS ts
      FROM generate_series(1, {{rows}}) AS g) AS s;
ANALYZE usage_records;
"""
SQLITE_SEED = f"""
WITH RECURSIVE seq(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM seq WHERE g < {{rows}})
INSERT INTO usage_records ({SEED_COLUMNS})
SELECT 'seed-' || g, {{user}}, {{key}}, 'chat.completions', 'openai', 'gpt-4o-mini', 'ok', 200, 0, 0,
       14, 64, 48000, 14, 9, 0, 7500, '{{{{"input":"0.15","output":"0.60"}}}}', 5, 3, '127.0.0.1',
       '{{{{"mode":"redacted"}}}}', date(ts), date(ts, 'start of month'), ts, ts
FROM (SELECT g, strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 day', '-' || (g * 7) || ' seconds') AS ts FROM seq);
"""


def seed(gw: Gateway, rows: int) -> float:
    """Insert `rows` settled historical audit rows for the benchmark user, in SQL; returns seconds taken."""
    started = time.time()
    key_id = 1
    if gw.db == "postgres":
        sql = PG_SEED.format(user=gw.user_id, key=key_id, rows=rows)
        subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", harness.PG_DB, "-v",
                        "ON_ERROR_STOP=1", "-c", sql], check=True, stdout=subprocess.DEVNULL)
    else:
        connection = sqlite3.connect(gw.sqlite_path, timeout=60)
        connection.execute(SQLITE_SEED.format(user=gw.user_id, key=key_id, rows=rows))
        connection.commit()
        connection.execute("ANALYZE")
        connection.close()
    return time.time() - started


def growth() -> str:
    """Gateway overhead with an empty audit log, then with GROWTH_ROWS more rows: the same within noise."""
    openai_base, anthropic_base, _ = fast_upstream()
    rows = []
    for db in databases():
        gw = gateway(db, openai_base, anthropic_base)
        target = {"gateway": (f"{gw.url}/v1/chat/completions", gw.auth, gw.pids)}
        try:
            before = measure(target, GROWTH_LEVEL)["gateway"]
            seconds = seed(gw, GROWTH_ROWS)
            after = measure(target, GROWTH_LEVEL)["gateway"]
        finally:
            gw.stop()
        for label, runs in (("~0 (fresh)", before), (f"+{GROWTH_ROWS:,} (seeded in {seconds:.0f}s)", after)):
            f = figures(runs)
            rows.append([db, label, f["rps"].show(0), f["p50_ms"].show(), f["p99_ms"].show(),
                         str(sum(r.errors for r in runs)), f["cpu_ms"].show(3)])
        print(f"  growth {db} done", flush=True)
    title = (f"Growth: the gateway at concurrency {GROWTH_LEVEL} before and after seeding the audit log "
             f"(INSERT ... SELECT in SQL, then ANALYZE), median of {RUNS} x {DURATION:g}s [min..max]")
    return title + "\n" + table(["db", "audit rows", "req/s", "p50 ms", "p99 ms", "errors", "CPU ms/req"], rows)


# ---- soak: memory under steady load ---------------------------------------------------------------

SOAK_SECONDS = env_float("BENCH_SOAK_SECONDS", 60)
SOAK_LEVEL = env_int("BENCH_SOAK_CONCURRENCY", 32)


def soak() -> str:
    """RSS of the gunicorn processes sampled through SOAK_SECONDS of steady load."""
    openai_base, anthropic_base, _ = fast_upstream()
    db = "postgres" if "postgres" in databases() else "sqlite"
    gw = gateway(db, openai_base, anthropic_base)
    samples: list[tuple[float, float, float]] = []
    result: list[Run] = []
    try:
        loader = threading.Thread(target=lambda: result.append(
            wrk(f"{gw.url}/v1/chat/completions", SOAK_LEVEL, SOAK_SECONDS, gw.auth, pids=gw.pids)))
        started = time.time()
        loader.start()
        while loader.is_alive():
            rss, pss = harness.memory_mib(gw.pids())
            samples.append((time.time() - started, rss, pss))
            loader.join(timeout=max(1.0, SOAK_SECONDS / 30))
    finally:
        gw.stop()
    run = result[0]
    warm = [s for s in samples if s[0] >= SOAK_SECONDS * 0.2] or samples
    first, last = warm[0], warm[-1]
    peak = max(s[1] for s in samples)
    growth_mib = last[1] - first[1]
    verdict = "flat" if growth_mib <= max(5.0, first[1] * 0.03) else "GROWING"
    curve = "  ".join(f"{s[0]:.0f}s:{s[1]:.0f}" for s in samples[:: max(1, len(samples) // 10)])
    return (f"Soak: {SOAK_SECONDS:g}s at concurrency {SOAK_LEVEL} on {gw.label()}\n"
            f"  {run.requests:,} requests, {run.rps:.0f} req/s, {run.errors} errors, p50 {run.p50_ms:.2f} ms, "
            f"p99 {run.p99_ms:.2f} ms, CPU {run.cpu_ms:.3f} ms/req\n"
            f"  RSS sum (MiB) after warm-up {first[1]:.1f} at {first[0]:.0f}s -> {last[1]:.1f} at end "
            f"(change {growth_mib:+.1f}, peak {peak:.1f}); PSS {first[2]:.1f} -> {last[2]:.1f}: {verdict}\n"
            f"  RSS curve: {curve}")
