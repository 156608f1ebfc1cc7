"""gunicorn settings: gthread workers sized for long upstream calls, graceful drains, no secrets logged.

Reads .env (if present; DOTENV_PATH names another file) so `make run` and the Docker image start from the
same settings. Environment: WEB_CONCURRENCY (workers), GUNICORN_THREADS (threads per worker),
GUNICORN_GRACEFUL_TIMEOUT (seconds a stopping worker may finish in-flight requests),
GUNICORN_ACCESS_LOG ("-" = also write gunicorn's own access line; the app already logs one JSON line per
request as logger gateway.access), GUNICORN_LOG_LEVEL, PROMETHEUS_MULTIPROC_DIR (a fresh temp dir if unset),
GUNICORN_CLIENT_TIMEOUT (seconds a client socket may stall in one read or write; 0 = never time out).
"""

import glob
import os
import shutil
import tempfile

from dotenv import load_dotenv
from gunicorn.workers import gthread

from gateway.config import ConfigError, Settings, exit_on_config_error, integer_setting, load_settings
from gateway.services.catalog import ModelCatalog

load_dotenv(os.environ.get("DOTENV_PATH", ".env"), override=False)


def _read(name: str, default: int, minimum: int = 0) -> int:
    """A gunicorn knob, validated like every other setting: a bad one ends start-up with one line."""
    try:
        return integer_setting(os.environ, name, default, minimum)
    except ConfigError as error:
        exit_on_config_error(error)


def _default_workers(settings: Settings) -> int:
    """memory:// limits are exact only inside one process; shared (Redis) storage lets several serve."""
    if settings.ratelimit_storage_uri.startswith("memory"):
        return 1
    return min(max(2, os.cpu_count() or 1), 8)


try:  # everything a worker would refuse, checked once here so a bad setting is one line, not a boot loop
    _settings = load_settings(os.environ)
    ModelCatalog.load(_settings.model_catalog_file)
except ConfigError as _error:
    exit_on_config_error(_error)


_OWNED_MARKER = "DOMINION_OWNED_METRICS_DIR"


def _multiproc_dir() -> tuple[str, bool]:
    """prometheus_client's per-worker files: the operator's directory, or a fresh one we remove on exit."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if given:
        os.makedirs(given, exist_ok=True)
        return given, given == os.environ.get(_OWNED_MARKER)
    created = tempfile.mkdtemp(prefix="dominion-prometheus-")
    os.environ[_OWNED_MARKER] = created  # a reload (SIGHUP) re-reads this file: still ours then
    return created, True


_upstream_timeout = _settings.upstream_timeout_s
_metrics_dir, _metrics_dir_is_ours = _multiproc_dir()
# Set before any worker imports prometheus_client: it picks multiprocess mode at import time.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir

bind = f"{_settings.host}:{_settings.port}"
worker_class = "gthread"
workers = _read("WEB_CONCURRENCY", _default_workers(_settings), minimum=1)
# The app reads WEB_CONCURRENCY to warn when memory:// limits would multiply across workers.
os.environ["WEB_CONCURRENCY"] = str(workers)
# A thread waits on the upstream for a whole LLM call (seconds to minutes), so threads, not CPUs, bound
# concurrency; connections beyond them wait in the worker, then in the listen backlog.
threads = _read("GUNICORN_THREADS", 512, minimum=1)
worker_connections = threads * 2
# gthread workers heartbeat from their main loop, so a long call never trips this; it catches a hung worker.
timeout = int(_upstream_timeout) + 30
# SIGTERM: stop accepting, let in-flight calls (up to one upstream timeout) finish, then exit.
graceful_timeout = _read("GUNICORN_GRACEFUL_TIMEOUT", int(_upstream_timeout) + 15)
keepalive = 5
max_requests = 0
# Path only (%(U)s), never the query string; no request headers: keys live in headers and are never logged.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "").strip() or None
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# No runtime control socket (gunicornc): it would live in $HOME, which the container user cannot write,
# and two gateways on one host would fight over it. GUNICORN_CONTROL_SOCKET=<path> turns it on.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "").strip() or "gunicorn.ctl"
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET", "").strip()
# Worker heartbeats in memory, not on the container's overlay filesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# gthread gives a connection a thread once a byte arrives, then reads the request on a blocking socket with no
# timeout: a client that stalls mid-request holds the thread for good, and `threads` of them freeze the worker.
# Behind nginx (the compose stack) nginx reads whole requests first; served directly (`make run`, the SQLite
# compose) every read and write of a client socket gets this timeout instead. A client stalled that long is
# dropped (a stream it stopped reading is settled as client_disconnected).
client_timeout = _read("GUNICORN_CLIENT_TIMEOUT", 30)


class _ClientTimeoutConn(gthread.TConn):
    """A gthread connection whose socket operations time out after client_timeout seconds."""

    def init(self):
        super().init()
        self.sock.settimeout(client_timeout)


if client_timeout > 0:
    gthread.TConn = _ClientTimeoutConn


def on_starting(server):
    """Files left by a previous run would be summed into this one's metrics: start from an empty dir."""
    for path in glob.glob(os.path.join(_metrics_dir, "*.db")):
        os.remove(path)


def child_exit(server, worker):
    """A dead worker's live gauges (streams in flight) must stop counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _metrics_dir)


def on_exit(server):
    """Remove the metrics directory if this run created it."""
    if _metrics_dir_is_ours:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
