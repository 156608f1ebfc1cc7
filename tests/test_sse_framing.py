"""The SSE reader delivers each event as it arrives, whatever the body framing: chunked, Content-Length or
close-delimited (HTTP/1.0 style). A small raw-socket server sends events with pauses between them."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from gateway.providers.base import UpstreamError, UpstreamTimeout
from gateway.providers.transport import RELEASE_WAIT_S, iter_sse, release

EVENTS = [b"event: one\r\ndata: {\"n\": 1}\r\n\r\n", b"event: two\ndata: {\"n\": 2}\n\n",
          b"data: {\"n\": 3}\n\n"]
PAUSE_S = 0.4


class RawServer:
    """Answers one request per connection with a fixed head and the given body pieces, pausing between them."""

    def __init__(self, framing: str, pieces: list[bytes], pause_s: float = PAUSE_S, cut: bool = False,
                 tail_pause_s: float = 0.0) -> None:
        self.framing, self.pieces, self.pause_s, self.cut = framing, pieces, pause_s, cut
        self.tail_pause_s = tail_pause_s  # before the chunked body's terminator
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/stream"

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        try:
            self._answer(connection)
        except OSError:  # the client gave up first (the timeout test): nothing left to send to
            pass
        finally:
            connection.close()

    def _answer(self, connection: socket.socket) -> None:
        connection.recv(65536)
        body = b"".join(self.pieces)
        head = {"chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n",
                "content-length": b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n" % len(body),
                "close": b"HTTP/1.0 200 OK\r\nConnection: close\r\n"}[self.framing]
        connection.sendall(head + b"Content-Type: text/event-stream\r\n\r\n")
        for index, piece in enumerate(self.pieces):
            if index:
                time.sleep(self.pause_s)
            if self.cut and index == len(self.pieces) - 1:
                connection.shutdown(socket.SHUT_RDWR)
                return
            data = b"%x\r\n%s\r\n" % (len(piece), piece) if self.framing == "chunked" else piece
            connection.sendall(data)
        if self.framing == "chunked":
            time.sleep(self.tail_pause_s)
            connection.sendall(b"0\r\n\r\n")

    def close(self) -> None:
        self.listener.close()


def timed_events(server: RawServer, timeout: float = 5) -> list[tuple[float, str, str]]:
    started = time.monotonic()
    response = requests.get(server.url, stream=True, timeout=(2, timeout))
    try:
        return [(time.monotonic() - started, e.event, e.data) for e in iter_sse(response, "fake")]
    finally:
        response.close()
        server.close()


@pytest.mark.parametrize("framing", ["chunked", "content-length", "close"])
def test_events_arrive_as_they_are_sent(framing):
    events = timed_events(RawServer(framing, EVENTS))
    assert [(name, data) for _, name, data in events] == [("one", '{"n": 1}'), ("two", '{"n": 2}'),
                                                          ("message", '{"n": 3}')]
    first, _, last = (at for at, _, _ in events)
    assert first < PAUSE_S < last, events  # the first event came before the last one was even sent


@pytest.mark.parametrize("framing", ["chunked", "content-length", "close"])
def test_a_crlf_split_across_reads_is_one_line_end(framing):
    pieces = [b"event: one\r", b"\ndata: {\"n\": 1}\r", b"\n\r", b"\n"]
    events = timed_events(RawServer(framing, pieces, pause_s=0.05))
    assert [(name, data) for _, name, data in events] == [("one", '{"n": 1}')]


def test_a_lone_cr_ends_a_line():
    events = timed_events(RawServer("close", [b"event: one\rdata: x\r\rdata: y\n\n"], pause_s=0))
    assert [(name, data) for _, name, data in events] == [("one", "x"), ("message", "y")]


def test_a_cut_connection_is_an_upstream_error():
    server = RawServer("content-length", [EVENTS[0], EVENTS[1]], pause_s=0.05, cut=True)
    with pytest.raises(UpstreamError, match="broke mid-response"):
        timed_events(server)


def test_silence_longer_than_the_read_timeout_is_an_upstream_timeout():
    server = RawServer("chunked", [EVENTS[0], EVENTS[1]], pause_s=1.0)
    with pytest.raises(UpstreamTimeout):
        timed_events(server, timeout=0.3)


def read_events_then_release(server: RawServer) -> tuple[bool, float]:
    """Read the three events as a provider does (stopping at the last one, not at the body's end), then
    release(): whether the connection went back to the pool, and how long release() took."""
    response = requests.get(server.url, stream=True, timeout=(2, 5))
    try:
        events = iter_sse(response, "fake")
        assert [next(events).data for _ in EVENTS] == ['{"n": 1}', '{"n": 2}', '{"n": 3}']
        started = time.monotonic()
        released = release(response)
        return released, time.monotonic() - started
    finally:
        response.close()
        server.close()


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_a_finished_stream_gives_its_connection_back(framing):
    released, took = read_events_then_release(RawServer(framing, EVENTS, pause_s=0.01))
    assert released and took < RELEASE_WAIT_S


def test_a_body_that_does_not_end_after_its_last_event_loses_its_connection_quickly():
    released, took = read_events_then_release(RawServer("chunked", EVENTS, pause_s=0.01, tail_pause_s=2))
    assert not released and took < RELEASE_WAIT_S + 0.5
