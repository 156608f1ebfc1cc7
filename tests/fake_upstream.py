"""A real HTTP server on 127.0.0.1 speaking OpenAI chat completions and Anthropic messages, for tests.

Each request takes the next queued Behavior (FIFO), or the default one, which answers normally.
Default token counts, so tests can predict costs exactly:
- prompt_tokens = whitespace-separated words in every message's text plus Anthropic's `system`
  (at least 1); it is the total prompt, cached and cache-write tokens included (OpenAI semantics;
  the Anthropic wire gets input_tokens = prompt - cached - cache_write);
- completion_tokens = number of content chunks (reply split into words, spaces kept).

Ledger modes (each a Behavior field): bill_bytes bills the worst case the gateway's contract allows, one
token per UTF-8 byte of text plus bill_message_overhead per message and bill_primer once; redirect_to
answers 307 to another address (a second FakeUpstream on 127.0.0.2, say); sse_framing sends a stream
chunked (the default), close-delimited (no length, the connection closes) or with a Content-Length.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
# Azure OpenAI: the OpenAI dialect at a deployment's URL (the api-version query is recorded, not checked).
AZURE_PATH = re.compile(r"^/openai/deployments/[^/]+/chat/completions$")
CREATED = 1727346173
OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
                      404: "invalid_request_error", 429: "requests"}
ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                         404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                         529: "overloaded_error"}


@dataclass
class Behavior:
    """How the fake answers one request; the defaults give a normal success."""

    status: int = 200
    error_type: str | None = None
    error_message: str | None = None
    retry_after: float | None = None
    headers: dict = field(default_factory=dict)
    delay_s: float = 0
    chunk_delay_s: float = 0
    reply: str = "Hello from the fake upstream."
    chunks: list[str] | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    finish_reason: str | None = None
    drop_after_chunks: int | None = None
    malformed: bool = False
    error_midstream: bool = False
    omit_usage: bool = False
    error_param: str | None = None
    bill_bytes: bool = False
    bill_message_overhead: int = 0
    bill_primer: int = 0
    redirect_to: str | None = None
    sse_framing: str = "chunked"
    # Richer answers (tests/fake_rich.py): [(tool name, arguments dict or JSON text)], Claude thinking text,
    # an OpenAI refusal, the stop sequence Claude matched.
    tool_calls: list | None = None
    thinking: str | None = None
    refusal: str | None = None
    stop_sequence: str | None = None

    def pieces(self) -> list[str]:
        """The streamed content pieces: chunks, or the reply split into words keeping their spaces."""
        if self.chunks is not None:
            return list(self.chunks)
        return re.findall(r"\s*\S+\s*", self.reply) or [self.reply]

    def text(self) -> str:
        """The whole reply (the joined chunks when chunks are given)."""
        return "".join(self.pieces())

    def completion_count(self) -> int:
        """completion_tokens, or one per content piece."""
        return self.completion_tokens if self.completion_tokens is not None else len(self.pieces())

    def prompt_count(self, body: dict) -> int:
        """prompt_tokens, the byte bound (bill_bytes), or the words of the request's text (module docstring)."""
        if self.prompt_tokens is not None:
            return self.prompt_tokens
        if self.bill_bytes:
            return count_prompt_bytes(body, self.bill_message_overhead, self.bill_primer)
        return count_prompt_words(body)


def count_prompt_words(body: dict) -> int:
    """Whitespace-separated words in all message text and a top-level system, at least 1."""
    texts = [body.get("system")] + [m.get("content") for m in body.get("messages") or [] if isinstance(m, dict)]
    words = 0
    for text in texts:
        if isinstance(text, list):
            text = " ".join(p.get("text", "") for p in text if isinstance(p, dict))
        if isinstance(text, str):
            words += len(text.split())
    return max(words, 1)


def count_prompt_bytes(body: dict, per_message: int, primer: int) -> int:
    """UTF-8 bytes of all message text and a top-level system, + per_message for each, + primer."""
    texts = ([body["system"]] if body.get("system") else []) + \
        [m.get("content") for m in body.get("messages") or [] if isinstance(m, dict)]
    total = primer
    for text in texts:
        if isinstance(text, list):
            text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
        total += len(str(text or "").encode()) + per_message
    return total


class Headers(dict):
    """Request headers as received, looked up case-insensitively."""

    def _key(self, key):
        return next((k for k in self.keys() if k.lower() == str(key).lower()), key)

    def __getitem__(self, key):
        return super().__getitem__(self._key(key))

    def __contains__(self, key):
        return super().__contains__(self._key(key))

    def get(self, key, default=None):
        return super().get(self._key(key), default)


@dataclass
class Recorded:
    """One request as the fake received it."""

    path: str
    headers: Headers
    body: dict
    query: str = ""


@dataclass(frozen=True)
class Frame:
    """One SSE frame; kind is head, content or tail (drop_after_chunks counts content frames)."""

    data: bytes
    kind: str


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def process_request(self, request, client_address):
        """Count each TCP connection (a client that reuses its connections opens few)."""
        with self.fake._lock:
            self.fake.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        """Clients that hang up (timeouts, closed streams) are normal here; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeUpstream:
    """The server: start(), enqueue()/set_default(), inspect requests, reset(), stop()."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._queue: deque[Behavior] = deque()
        self._default = Behavior()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[Recorded] = []
        self.connections = 0

    def start(self) -> FakeUpstream:
        """Listen on the given port (a free one by default) and serve from a daemon thread."""
        self._server = _Server((self._host, self._port), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-upstream", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=2)
            self._server = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._server.server_address[1]}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    @property
    def hits(self) -> int:
        return len(self.requests)

    def reset(self) -> None:
        """Forget queued behaviours and recorded requests; answer normally again."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.connections = 0
            self._default = Behavior()

    def enqueue(self, *behaviors: Behavior) -> None:
        """Behaviours for the next requests, one each, in order."""
        with self._lock:
            self._queue.extend(behaviors)

    def set_default(self, behavior: Behavior) -> None:
        """The behaviour used when the queue is empty."""
        with self._lock:
            self._default = behavior

    def take(self, recorded: Recorded, consume: bool) -> tuple[Behavior, int]:
        """Record a request (before any delay) and return its behaviour and sequence number."""
        with self._lock:
            self.requests.append(recorded)
            behavior = self._queue.popleft() if consume and self._queue else self._default
            return behavior, len(self.requests)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeUpstream/1.0"
    # Head and body go out in separate writes; with Nagle on, the body waits ~40 ms for the client's ACK.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # noqa: A002 - quiet test output
        pass

    def do_POST(self):
        from tests import fake_rich  # validation and rich answers; imported late, it builds on this module

        path, _, query = self.path.partition("?")
        body = self._read_json()
        dialect = fake_rich.DIALECTS.get(path)
        if AZURE_PATH.match(path):  # Azure deployments speak OpenAI's format (not validated as strictly)
            dialect = fake_rich.DIALECTS[OPENAI_PATH]
        behavior, number = self.server.fake.take(Recorded(path, Headers(self.headers.items()), body, query),
                                                 consume=dialect is not None)
        try:
            if dialect is None:
                self._send_json(404, {"error": {"type": "not_found_error", "message": f"no route {path}"}}, {})
                return
            time.sleep(behavior.delay_s)
            refused = fake_rich.refusal(path, body, self.headers) if behavior.status < 400 else None
            if refused is not None:
                self._send_json(400, refused, {})
                return
            self._answer(dialect(behavior, body, number))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _read_json(self) -> dict:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return {"_unparsed": raw.decode("utf-8", "replace")}
        return body if isinstance(body, dict) else {"_unparsed": body}

    def _answer(self, dialect) -> None:
        behavior = dialect.behavior
        headers = {k: str(v) for k, v in behavior.headers.items()}
        if behavior.retry_after is not None:
            headers["retry-after"] = format(behavior.retry_after, "g")
        if behavior.redirect_to is not None:
            self._send_json(307, {"moved": True}, {**headers, "Location": behavior.redirect_to + self.path})
        elif behavior.status >= 400:
            self._send_json(behavior.status, dialect.error_body(), headers)
        elif dialect.body.get("stream") is True:
            self._stream(dialect.stream_frames(), behavior, headers)
        elif behavior.malformed:
            self._send_raw(200, b'{"id": "broken", "choices": [', headers)
        else:
            self._send_json(200, dialect.response(), headers)

    def _send_json(self, status: int, payload: dict, headers: dict) -> None:
        self._send_raw(status, json.dumps(payload).encode(), headers)

    def _send_raw(self, status: int, data: bytes, headers: dict) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, frames: list[Frame], behavior: Behavior, headers: dict) -> None:
        """SSE flushed per frame, framed as behavior.sse_framing says; drop_after_chunks aborts the socket."""
        framing = behavior.sse_framing
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        if framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        elif framing == "content-length":
            self.send_header("Content-Length", str(sum(len(frame.data) for frame in frames)))
        else:  # close-delimited: the body ends when the connection does
            self.send_header("Connection", "close")
            self.close_connection = True
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        sent = 0
        for frame in frames:
            if behavior.drop_after_chunks is not None and sent >= behavior.drop_after_chunks \
                    and frame.kind != "head":
                self._abort()
                return
            if frame.kind == "content":
                time.sleep(behavior.chunk_delay_s)
                sent += 1
            self._write_frame(frame.data, framing)
        if framing == "chunked":
            self._write_frame(b"", framing)

    def _write_frame(self, data: bytes, framing: str = "chunked") -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if framing == "chunked" else data)
        self.wfile.flush()

    def _abort(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class OpenAIDialect:
    """Chat Completions bodies, errors and data-only SSE frames for one behaviour."""

    def __init__(self, behavior: Behavior, body: dict, number: int) -> None:
        self.behavior, self.body = behavior, body
        self.id = f"chatcmpl-fake{number}"
        self.model = body.get("model", "unknown")

    def error_body(self) -> dict:
        b = self.behavior
        error_type = b.error_type or OPENAI_ERROR_TYPES.get(b.status, "server_error")
        return {"error": {"message": b.error_message or f"fake upstream error {b.status}", "type": error_type,
                          "param": b.error_param, "code": None}}

    def usage(self) -> dict:
        b = self.behavior
        usage = {"prompt_tokens": b.prompt_count(self.body), "completion_tokens": b.completion_count()}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        usage["prompt_tokens_details"] = {"cached_tokens": b.cached_tokens, "audio_tokens": 0}
        if b.cache_write_tokens:
            usage["prompt_tokens_details"]["cache_write_tokens"] = b.cache_write_tokens
        usage["completion_tokens_details"] = {"reasoning_tokens": 0}
        return usage

    def response(self) -> dict:
        b = self.behavior
        body = {"id": self.id, "object": "chat.completion", "created": CREATED, "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": b.text(), "refusal": None},
                             "logprobs": None, "finish_reason": b.finish_reason or "stop"}],
                "service_tier": "default"}
        if not b.omit_usage:
            body["usage"] = self.usage()
        return body

    def stream_frames(self) -> list[Frame]:
        b = self.behavior
        if b.malformed:
            return [Frame(b"data: {not json at all\n\n", "head")]
        frames = [self._frame({"role": "assistant", "content": "", "refusal": None}, None, "head")]
        for piece in b.pieces():
            frames.append(self._frame({"content": piece}, None, "content"))
            if b.error_midstream:
                error = {"error": {"message": b.error_message or "The server had an error while processing "
                                   "your request.", "type": "server_error", "param": None, "code": None}}
                return frames + [_data_frame(error, "tail")]
        frames.append(self._frame({}, b.finish_reason or "stop", "tail"))
        include = (self.body.get("stream_options") or {}).get("include_usage") is True
        if include and not b.omit_usage:
            frames.append(_data_frame(self._chunk([], usage=self.usage()), "tail"))
        return frames + [Frame(b"data: [DONE]\n\n", "tail")]

    def _frame(self, delta: dict, finish_reason: str | None, kind: str) -> Frame:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        chunk = self._chunk([choice])
        if kind == "content":
            chunk["obfuscation"] = "q7Zk"
        return _data_frame(chunk, kind)

    def _chunk(self, choices: list, usage: dict | None = None) -> dict:
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": CREATED, "model": self.model,
                 "system_fingerprint": "fp_fake", "choices": choices}
        if usage is not None:
            chunk["usage"] = usage
        return chunk


class AnthropicDialect:
    """Messages bodies, errors and event+data SSE frames for one behaviour."""

    def __init__(self, behavior: Behavior, body: dict, number: int) -> None:
        self.behavior, self.body = behavior, body
        self.id = f"msg_fake{number}"
        self.model = body.get("model", "unknown")

    def error_body(self) -> dict:
        b = self.behavior
        error_type = b.error_type or ANTHROPIC_ERROR_TYPES.get(b.status, "api_error")
        return {"type": "error", "error": {"type": error_type,
                                           "message": b.error_message or f"fake upstream error {b.status}"},
                "request_id": "req_fake"}

    def usage(self, output_tokens: int | None = None) -> dict:
        b = self.behavior
        prompt = b.prompt_count(self.body)
        return {"input_tokens": max(prompt - b.cached_tokens - b.cache_write_tokens, 0),
                "cache_creation_input_tokens": b.cache_write_tokens, "cache_read_input_tokens": b.cached_tokens,
                "output_tokens": b.completion_count() if output_tokens is None else output_tokens,
                "service_tier": "standard"}

    def response(self) -> dict:
        b = self.behavior
        body = {"id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": [{"type": "text", "text": b.text()}], "stop_reason": b.finish_reason or "end_turn",
                "stop_sequence": None}
        if not b.omit_usage:
            body["usage"] = self.usage()
        return body

    def stream_frames(self) -> list[Frame]:
        b = self.behavior
        if b.malformed:
            return [Frame(b"event: message_start\ndata: {garbage\n\n", "head")]
        message = {"id": self.id, "type": "message", "role": "assistant", "content": [], "model": self.model,
                   "stop_reason": None, "stop_sequence": None}
        if not b.omit_usage:
            message["usage"] = self.usage(output_tokens=1)
        frames = [_event("message_start", {"message": message}, "head"),
                  _event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}, "head"),
                  _event("ping", {}, "head")]
        for piece in b.pieces():
            delta = {"index": 0, "delta": {"type": "text_delta", "text": piece}}
            frames.append(_event("content_block_delta", delta, "content"))
            if b.error_midstream:
                error = {"error": {"type": "overloaded_error", "message": b.error_message or "Overloaded"}}
                return frames + [_event("error", error, "tail")]
        delta = {"delta": {"stop_reason": b.finish_reason or "end_turn", "stop_sequence": None}}
        if not b.omit_usage:
            delta["usage"] = {"output_tokens": b.completion_count()}
        return frames + [_event("content_block_stop", {"index": 0}, "tail"),
                         _event("message_delta", delta, "tail"), _event("message_stop", {}, "tail")]


def _data_frame(payload: dict, kind: str) -> Frame:
    return Frame(b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n", kind)


def _event(name: str, fields: dict, kind: str) -> Frame:
    payload = json.dumps({"type": name, **fields}, separators=(",", ":")).encode()
    return Frame(b"event: " + name.encode() + b"\ndata: " + payload + b"\n\n", kind)
