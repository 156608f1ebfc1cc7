"""tests/fake_upstream.py as a container on a compose network, for the container tests.

Run inside any Python 3.11 image with tests/ mounted: `python /srv/tests/docker_upstream.py`. The fake
answers on :8000 (the gateway's OPENAI_BASE_URL is http://<alias>:8000/v1); a control API on :8001 lets
the test process, outside the container, queue behaviours and read what the fake received:
  POST /enqueue   [{Behavior fields}, ...]     POST /reset     GET /requests -> [{"path", "body"}, ...]
Standard library only: it must run in the bare base image.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# The directory holding tests/, so the fake imports itself and its validation (tests.fake_rich) the way the
# test suite does.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fake_upstream import Behavior, FakeUpstream  # noqa: E402

UPSTREAM_PORT = 8000
CONTROL_PORT = 8001


class _Control(BaseHTTPRequestHandler):
    fake: FakeUpstream

    def log_message(self, format, *args):  # noqa: A002 - quiet container logs
        pass

    def do_GET(self):
        if self.path != "/requests":
            self._reply(404, {"error": self.path})
            return
        self._reply(200, [{"path": r.path, "body": r.body} for r in list(self.fake.requests)])

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/enqueue":
            self.fake.enqueue(*(Behavior(**fields) for fields in json.loads(raw or b"[]")))
        elif self.path == "/reset":
            self.fake.reset()
        else:
            self._reply(404, {"error": self.path})
            return
        self._reply(200, {"ok": True})

    def _reply(self, status: int, payload) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main() -> None:
    """Serve the fake and its control API until the container stops."""
    _Control.fake = FakeUpstream(host="0.0.0.0", port=UPSTREAM_PORT).start()
    print(f"fake upstream on :{UPSTREAM_PORT}, control on :{CONTROL_PORT}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", CONTROL_PORT), _Control).serve_forever()


if __name__ == "__main__":
    main()
