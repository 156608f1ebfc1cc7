"""A tiny asyncio upstream for the benchmark's slow and streaming cases (the fast case is nginx).

The behaviour is chosen by the URL prefix, so one process serves every variant and the gateway's
OPENAI_BASE_URL says which one it talks to:

  POST /slow/<ms>/v1/chat/completions                 canned chat.completion after <ms> milliseconds
  POST /stream/<n>/<gap_ms>/v1/chat/completions       SSE: <n> content chunks, <gap_ms> apart (the first
                                                      one also after <gap_ms>), then usage and [DONE]
  GET /stats, GET /stats/reset                        requests in flight now and at peak (as JSON)
  GET /timeline                                       the last stream's wall-clock times (as JSON): when
                                                      its request was in (body read) and when its first
                                                      content chunk was written
  anything else                                       canned chat.completion at once

asyncio, not threads: 1,000+ connections each waiting 5 s cost one coroutine apiece. HTTP/1.1
keep-alive, Content-Length bodies (requests, wrk and litellm all send those); stdlib only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time

COMPLETION = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1735689600, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I help you today?",
                                         "refusal": None},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 14, "completion_tokens": 9, "total_tokens": 23,
              "prompt_tokens_details": {"cached_tokens": 0}},
}, separators=(",", ":")).encode()


def _chunk(delta: dict, finish_reason=None) -> bytes:
    body = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1735689600,
            "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


USAGE_CHUNK = b"data: " + json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1735689600, "model": "gpt-4o-mini",
    "choices": [], "usage": {"prompt_tokens": 14, "completion_tokens": 20, "total_tokens": 34}},
    separators=(",", ":")).encode() + b"\n\n"


class Stats:
    """Requests in flight in the slow and streaming variants: the capacity test reads the peak."""

    inflight = 0
    peak = 0
    served = 0

    @classmethod
    def body(cls) -> bytes:
        return json.dumps({"inflight": cls.inflight, "peak": cls.peak, "served": cls.served}).encode()


class Timeline:
    """The last stream's wall-clock times (time.time(), comparable across processes on this host), so the
    benchmark can split a time to first token into getting to the upstream and getting back from it."""

    last: dict = {}


def _head(status: str, content_type: str, length: int | None) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}", "Connection: keep-alive"]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def _read_request(reader: asyncio.StreamReader) -> str | None:
    """The request path, after reading (and dropping) headers and body; None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return path


async def _stream(writer: asyncio.StreamWriter, chunks: int, gap_s: float, received_at: float) -> None:
    writer.write(_head("200 OK", "text/event-stream", None))
    await writer.drain()
    frames = [_chunk({"role": "assistant", "content": ""})]
    for index in range(chunks):
        await asyncio.sleep(gap_s)
        frames.append(_chunk({"content": f"tok{index} "}))
        if index == 0:
            Timeline.last = {"received": received_at, "first_chunk": time.time()}
        writer.write(b"".join(_http_chunk(frame) for frame in frames))
        await writer.drain()
        frames = []
    tail = _chunk({}, "stop") + USAGE_CHUNK + b"data: [DONE]\n\n"
    writer.write(_http_chunk(tail) + b"0\r\n\r\n")
    await writer.drain()


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            path = await _read_request(reader)
            if path is None:
                break
            received_at = time.time()
            parts = path.strip("/").split("/")
            if parts[0] == "timeline":
                body = json.dumps(Timeline.last).encode()
                writer.write(_head("200 OK", "application/json", len(body)) + body)
                await writer.drain()
                continue
            if parts[0] == "stats":
                if parts[-1] == "reset":
                    Stats.peak, Stats.served = Stats.inflight, 0
                body = Stats.body()
                writer.write(_head("200 OK", "application/json", len(body)) + body)
                await writer.drain()
                continue
            Stats.inflight += 1
            Stats.peak = max(Stats.peak, Stats.inflight)
            try:
                if parts[0] == "slow" and len(parts) > 1:
                    await asyncio.sleep(int(parts[1]) / 1000)
                if parts[0] == "stream" and len(parts) > 2:
                    await _stream(writer, int(parts[1]), int(parts[2]) / 1000, received_at)
                    continue
                writer.write(_head("200 OK", "application/json", len(COMPLETION)) + COMPLETION)
                await writer.drain()
            finally:
                Stats.inflight -= 1
                Stats.served += 1
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", port, backlog=4096, limit=1 << 20)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"upstream listening on 127.0.0.1:{port} at {time.time():.0f}", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
