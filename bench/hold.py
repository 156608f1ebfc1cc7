"""Open-loop-ish holder for the capacity test: N keep-alive connections, started evenly over one upstream
delay, each sending `rounds` requests back to back, so N requests are in flight at once in steady state.

wrk starts every connection at the same instant, which measures a thundering herd rather than how many
long calls the gateway holds; this ramps up the way real traffic arrives. Bounded in count (N x rounds)
and in time (every request has a timeout); loopback only.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class HoldResult:
    ok: int
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    first_error: str | None


async def _one(port: int, request: bytes, delay: float, rounds: int, timeout: float,
               latencies: list[float], errors: list[str]) -> None:
    await asyncio.sleep(delay)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        errors.extend([f"connect: {exc!r}"] * rounds)
        return
    try:
        for done in range(rounds):
            started = time.perf_counter()
            try:
                writer.write(request)
                status, body = await asyncio.wait_for(_response(reader), timeout)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                errors.extend([f"{type(exc).__name__}: {exc}"] * (rounds - done))
                return
            if status != 200:
                errors.append(f"HTTP {status}: {body[:200]!r}")
            else:
                latencies.append((time.perf_counter() - started) * 1000)
    finally:
        writer.close()


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ")[1])
    length = next((int(line.split(":", 1)[1]) for line in head[1:]
                   if line.lower().startswith("content-length:")), None)
    if length is None:
        raise ValueError("response without Content-Length")
    return status, await reader.readexactly(length)


async def _hold(port: int, path: str, key: str, body: str, connections: int, ramp_s: float, rounds: int,
                timeout: float) -> HoldResult:
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
               f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()
    latencies: list[float] = []
    errors: list[str] = []
    await asyncio.gather(*[_one(port, request, i * ramp_s / connections, rounds, timeout, latencies, errors)
                           for i in range(connections)])
    ordered = sorted(latencies) or [float("nan")]
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return HoldResult(ok=len(latencies), errors=len(errors), p50_ms=statistics.median(ordered),
                      p99_ms=pick(0.99), max_ms=ordered[-1], first_error=errors[0] if errors else None)


def hold(port: int, path: str, key: str, body: str, connections: int, ramp_s: float, rounds: int = 2,
         timeout: float = 30) -> HoldResult:
    """Run the holder in a fresh event loop (called from the benchmark's plain threads)."""
    return asyncio.run(_hold(port, path, key, body, connections, ramp_s, rounds, timeout))
