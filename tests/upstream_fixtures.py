"""Fixtures for the provider tests: a FakeUpstream per test module, reset per test, and a sleep recorder."""

from __future__ import annotations

import socket

import pytest

from tests.fake_upstream import FakeUpstream


class SleepRecorder(list):
    """An injected sleep that records how long it was asked to wait, and returns at once."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(scope="module")
def upstream_server():
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(upstream_server):
    """The module's fake upstream, with an empty queue and no recorded requests."""
    upstream_server.reset()
    return upstream_server


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


def closed_port() -> int:
    """A local port nothing listens on (bound, then released), for connection-refused tests."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
