"""Closed-loop load with wrk, CPU per request from /proc, medians with spread, and plain-text tables."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from harness import BENCH, cpu_seconds

BODY = json.dumps({"model": "gpt-4o-mini", "max_tokens": 64,
                   "messages": [{"role": "user", "content": "Say hello in one short sentence."}]},
                  separators=(",", ":"))


@dataclass(frozen=True)
class Run:
    """One wrk run against one target."""

    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    requests: int
    cpu_ms: float  # target processes' CPU per completed request


def wrk(url: str, connections: int, seconds: float, auth: str | None = None, body: str = BODY,
        timeout_s: float = 10, pids: Callable[[], list[int]] | None = None) -> Run:
    """One wrk run (1 thread, bounded by -d and a hard subprocess timeout); CPU of `pids` across it."""
    env = {**os.environ, "BENCH_BODY": body, "BENCH_AUTH": auth or ""}
    watched = pids() if pids else []
    cpu_before = cpu_seconds(watched)
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", f"{max(1, round(timeout_s))}s",
         "-s", str(BENCH / "post.lua"), url],
        env=env, capture_output=True, text=True, timeout=seconds + timeout_s + 60)
    cpu = cpu_seconds(watched) - cpu_before
    line = next((x for x in result.stdout.splitlines() if x.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {result.stdout[-500:]} {result.stderr[-500:]}")
    data = json.loads(line.removeprefix("BENCHJSON "))
    done = data["requests"]
    errors = data["connect"] + data["read"] + data["write"] + data["status"] + data["timeout"]
    return Run(rps=done / (data["duration_us"] / 1e6), p50_ms=data["p50_us"] / 1000,
               p99_ms=data["p99_us"] / 1000, max_ms=data["max_us"] / 1000, errors=errors, requests=done,
               cpu_ms=(cpu * 1000 / done) if done and watched else float("nan"))


@dataclass(frozen=True)
class Figure:
    """Median of repeated runs with their min and max."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> "Figure":
        return cls(statistics.median(values), min(values), max(values))

    def show(self, digits: int = 2, spread: bool = True) -> str:
        if self.median != self.median:  # nan
            return "n/a"
        text = f"{self.median:.{digits}f}"
        if spread and self.low != self.high:
            text += f" [{self.low:.{digits}f}..{self.high:.{digits}f}]"
        return text


def figures(runs: list[Run]) -> dict[str, Figure]:
    return {name: Figure.of([getattr(run, name) for run in runs])
            for name in ("rps", "p50_ms", "p99_ms", "max_ms", "cpu_ms")}


def differences(left: list[Run], right: list[Run]) -> dict[str, Figure]:
    """Pairwise left - right of runs made back to back: the spread of the overhead itself."""
    return {name: Figure.of([getattr(a, name) - getattr(b, name) for a, b in zip(left, right)])
            for name in ("p50_ms", "p99_ms", "cpu_ms")}


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A fixed-width text table (also valid Markdown)."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *[line(row) for row in rows]])
