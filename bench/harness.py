"""Starting and always stopping what a benchmark needs: nginx, the Python upstream, the gateway, the floor, LiteLLM.

Every process is started in its own session and registered; stop_all() (run at exit, on Ctrl-C and on
SIGTERM) ends exactly those process groups, by id. Nothing listens anywhere but 127.0.0.1.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
VENV_BIN = ROOT / ".venv" / "bin"
LITELLM_BIN = BENCH / ".litellm-venv" / "bin"
# One database per run: worktrees benchmarking at once on a shared PostgreSQL must not drop each other's.
PG_DB = os.environ.get("BENCH_PG_DB", f"dominion_bench_{os.getpid()}")
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{PG_DB}"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
HIGH = "1000000000"
_started: list[subprocess.Popen] = []
_created_databases: list[str] = []
WORK = Path(tempfile.mkdtemp(prefix="dominion-bench-"))


def stop_all() -> None:
    """End every process group we started, newest first (the gateway before its upstreams)."""
    for proc in list(reversed(_started)):
        try:
            stop(proc, grace_s=10)
        except ProcessLookupError:
            pass
    _started.clear()


def _on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


def drop_databases() -> None:
    """Drop the benchmark databases this run created (after stop_all: atexit runs newest first)."""
    for name in _created_databases:
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "-f", name],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _created_databases.clear()


def install_cleanup() -> None:
    """Stop everything at exit, on Ctrl-C and on SIGTERM; raise the open-files limit for big -c runs."""
    atexit.register(shutil.rmtree, WORK, True)  # atexit runs newest first: this last, after the processes
    atexit.register(drop_databases)
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def start(args: list[str], log_name: str, env: dict | None = None, cwd: Path = ROOT) -> subprocess.Popen:
    """Start a process in its own session (so its whole group can be ended), output to a log file."""
    RESULTS.mkdir(exist_ok=True)
    log = open(RESULTS / f"{log_name}.log", "ab")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                            start_new_session=True)
    _started.append(proc)
    return proc


def stop(proc: subprocess.Popen, grace_s: float = 30) -> None:
    """End one process group we started: SIGTERM (gunicorn drains), SIGKILL after grace_s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc in _started:
        _started.remove(proc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, seconds: float = 60, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}; see bench/results/*.log")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds}s")


def ensure_tools() -> None:
    """nginx and wrk from Debian, installed on first use like CI would."""
    missing = [tool for tool in ("nginx", "wrk") if shutil.which(tool) is None
               and not Path(f"/usr/sbin/{tool}").exists()]
    if missing:
        print(f"installing {' '.join(missing)} with apt-get ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


# ---- /proc ---------------------------------------------------------------------------------------

def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()


def tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes, in seconds."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def memory_mib(pids: list[int]) -> tuple[float, float]:
    """(sum of RSS, sum of PSS) in MiB; PSS splits pages forked workers share."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


# ---- servers -------------------------------------------------------------------------------------

def start_upstream() -> tuple[int, subprocess.Popen]:
    port = free_port()
    proc = start([str(VENV_BIN / "python"), str(BENCH / "upstream.py"), "--port", str(port)], "upstream")
    wait_http(f"http://127.0.0.1:{port}/health", 15, proc)
    return port, proc


def start_nginx(workers: int = int(os.environ.get("BENCH_NGINX_WORKERS", "1"))) -> tuple[int, subprocess.Popen]:
    """nginx answering canned OpenAI and Anthropic bodies (see bench/nginx.conf)."""
    port = free_port()
    prefix = WORK / "nginx"
    prefix.mkdir(exist_ok=True)
    conf = (BENCH / "nginx.conf").read_text().replace("@PORT@", str(port)).replace(
        "@WORKERS@", str(workers)).replace("@PREFIX@", str(prefix))
    (prefix / "nginx.conf").write_text(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = start([nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"], "nginx")
    wait_http(f"http://127.0.0.1:{port}/health", 15, proc)
    return port, proc


def reset_postgres(name: str = PG_DB) -> None:
    """A fresh benchmark database (never the test database)."""
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "-f", name], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
    if name not in _created_databases:
        _created_databases.append(name)


def postgres_backends(name: str = PG_DB) -> list[int]:
    """Server processes serving the benchmark database: their CPU is the gateway's, spent in PostgreSQL."""
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", name, "-Atc",
                          "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                          "AND pid <> pg_backend_pid()"], capture_output=True, text=True)
    return [int(line) for line in out.stdout.split() if line.isdigit()]


def postgres_commit_ms(samples: int = 100) -> float:
    """Median wall ms of one durable one-row UPDATE + COMMIT in the benchmark database (the server's WAL
    fsync): a floor under the latency of every write transaction the gateway makes."""
    import statistics

    import psycopg2

    connection = psycopg2.connect(PG_URL)
    try:
        cursor = connection.cursor()
        cursor.execute("CREATE TABLE bench_commit_probe (id int PRIMARY KEY, n int NOT NULL)")
        cursor.execute("INSERT INTO bench_commit_probe VALUES (1, 0)")
        connection.commit()
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            cursor.execute("UPDATE bench_commit_probe SET n = n + 1 WHERE id = 1")
            connection.commit()
            times.append((time.perf_counter() - started) * 1000)
        cursor.execute("DROP TABLE bench_commit_probe")
        connection.commit()
        return statistics.median(times)
    finally:
        connection.close()


def flush_redis(number: int = 14) -> None:
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "-n", str(number), "FLUSHDB"], check=True,
                   stdout=subprocess.DEVNULL)


class Gateway:
    """The gateway under gunicorn with production settings, migrated, with one user and one key.

    root: the source tree to run (another checkout, for a before/after in one run: BENCH_BASELINE), with
    its own PostgreSQL database and Redis database number so that the two never share state.
    """

    def __init__(self, db: str, base_url: str, anthropic_url: str, workers: int, threads: int,
                 extra: dict | None = None, root: Path = ROOT, pg_db: str = PG_DB, redis_db: int = 14) -> None:
        self.db, self.workers, self.threads = db, workers, threads
        self.root, self.pg_db, self.redis_db = root, pg_db, redis_db
        self.port = free_port()
        self.admin_token = secrets.token_urlsafe(32)
        self.sqlite_path = WORK / f"gateway-{self.port}.db"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8", "DOTENV_PATH": str(WORK / "no.env"), "FLASK_SKIP_DOTENV": "1",
            "GATEWAY_ENV": "production", "ADMIN_TOKEN": self.admin_token, "MOCK_PROVIDER": "off",
            "HOST": "127.0.0.1", "PORT": str(self.port),
            "OPENAI_API_KEY": "sk-bench-openai-key", "OPENAI_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": "sk-ant-bench-key", "ANTHROPIC_BASE_URL": anthropic_url,
            "RATE_LIMIT_MAX": HIGH, "IP_RATE_LIMIT_MAX": HIGH, "AUTH_FAILURE_LIMIT": "10",
            "DEFAULT_DAILY_REQUESTS": HIGH, "DEFAULT_DAILY_TOKENS": "1000000000000",
            "DEFAULT_MONTHLY_SPEND_CAP_USD": "1000000", "PROMPT_LOGGING": "redacted",
            "WEB_CONCURRENCY": str(workers), "GUNICORN_THREADS": str(threads),
            "GUNICORN_LOG_LEVEL": "warning", "UPSTREAM_TIMEOUT_S": "120",
            # As the image and both compose files ship it (Dockerfile: argon2's memory per malloc arena).
            "MALLOC_ARENA_MAX": "2",
            "PYTHONPATH": str(root),  # this tree's gateway, whichever checkout the venv was installed from
        }
        if db == "postgres":
            self.env.update(DATABASE_URL=f"postgresql://postgres@127.0.0.1:5432/{pg_db}",
                            RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:6379/{redis_db}")
        else:
            self.env.update(SQLITE_PATH=str(self.sqlite_path), RATELIMIT_STORAGE_URI="memory://")
        self.env.update(extra or {})
        self.proc: subprocess.Popen | None = None
        self.key: str | None = None

    def start(self) -> "Gateway":
        if self.db == "postgres":
            reset_postgres(self.pg_db)
            flush_redis(self.redis_db)
        subprocess.run([str(VENV_BIN / "flask"), "--app", "gateway.app:serve_app", "db", "upgrade"], cwd=self.root,
                       env=self.env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.proc = start([str(VENV_BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
                          f"gateway-{self.db}-{self.port}", env=self.env, cwd=self.root)
        wait_http(f"{self.url}/health", 60, self.proc)
        self.keys = []
        for number in range(max(1, int(os.environ.get("BENCH_USERS", "1")))):
            user = self._admin("/admin/users", {"name": f"Bench {number}",
                                                "email": f"bench{number}-{self.port}@example.com"})
            self.keys.append(self._admin("/admin/keys", {"user_id": user["id"], "name": "bench"})["api_key"])
            if number == 0:
                self.user_id, self.key = user["id"], self.keys[0]
        return self

    @property
    def auth(self) -> str:
        """Every benchmark user's key, comma-separated: bench/post.lua rotates through them."""
        return ",".join(self.keys)

    def _admin(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(f"{self.url}{path}", data=json.dumps(body).encode(), method="POST",
                                         headers={"Authorization": f"Bearer {self.admin_token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        return tree(self.proc.pid)

    def server_pids(self) -> list[int]:
        """PostgreSQL's processes serving this gateway's database."""
        return postgres_backends(self.pg_db)

    def worker_pids(self) -> list[int]:
        return [pid for pid in self.pids() if pid != self.proc.pid]

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def label(self) -> str:
        storage = "Redis limiter" if self.db == "postgres" else "memory:// limiter"
        name = "PostgreSQL" if self.db == "postgres" else "SQLite"
        users = f", {len(self.keys)} users" if len(getattr(self, "keys", [])) > 1 else ", 1 user"
        return f"{name} + {storage}, {self.workers} worker(s) x {self.threads} threads{users}"


def start_floor(upstream_base: str, workers: int, threads: int) -> tuple[str, subprocess.Popen]:
    """bench/floor_app.py under gunicorn with the gateway's gthread settings (deploy/gunicorn.conf.py)."""
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "FLOOR_UPSTREAM": upstream_base,
           "FLOOR_POOL_SIZE": str(threads)}
    args = [str(VENV_BIN / "gunicorn"), "--worker-class", "gthread", "--workers", str(workers),
            "--threads", str(threads), "--worker-connections", str(2 * threads), "--keep-alive", "5",
            "--log-level", "warning", "--bind", f"127.0.0.1:{port}", "floor_app:create_app()"]
    if os.path.isdir("/dev/shm"):
        args[1:1] = ["--worker-tmp-dir", "/dev/shm"]
    proc = start(args, f"floor-{workers}", env=env, cwd=BENCH)
    wait_http(f"http://127.0.0.1:{port}/health", 30, proc)
    return f"http://127.0.0.1:{port}", proc


def start_litellm(upstream_base: str, workers: int = 2) -> tuple[str, str, subprocess.Popen]:
    """LiteLLM proxy from bench/.litellm-venv: offline cost map, no telemetry, no database, master key."""
    port = free_port()
    master = "sk-bench-" + secrets.token_hex(16)
    config = WORK / f"litellm-{port}.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-4o-mini\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4o-mini\n"
        f"      api_base: {upstream_base}\n"
        "      api_key: sk-bench-openai-key\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  drop_params: true\n"
        "general_settings:\n"
        f"  master_key: {master}\n")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(WORK), "LANG": "C.UTF-8",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False", "LITELLM_LOG": "ERROR",
           "DISABLE_SCHEMA_UPDATE": "True", "LITELLM_MASTER_KEY": master,
           "NO_DOCS": "True", "NO_REDOC": "True"}
    args = [str(LITELLM_BIN / "litellm"), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
            "--num_workers", str(workers)]
    if workers > 1:  # uvicorn kills a worker that has not answered its ping in 5 s, and a spawned worker
        args += ["--timeout_worker_healthcheck", "120"]  # re-imports litellm first: a restart loop on a busy box
    proc = start(args, f"litellm-{workers}", env=env, cwd=WORK)
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", 180, proc)
    return f"http://127.0.0.1:{port}", master, proc
