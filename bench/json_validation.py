"""What validating a request body costs, against json.loads of the same bytes (docs/reliability.md).

    .venv/bin/python bench/json_validation.py [--size BYTES] [--runs N]

For bodies of every hostile shape up to MAX_REQUEST_BYTES (default 1 MiB), it prints the CPU time of
json.loads, of the gateway's strict JSON step (blueprints/body.py: NaN/Infinity/overflow refused with
parse hooks, no tree walk) and of the whole validation of /v1/chat/completions, /v1/messages and
/v1/llm/complete (JSON + schema), each the best of N runs, and each as a multiple of json.loads.
Nothing is sent anywhere: the bodies are validated inside a test request context.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.app import create_app  # noqa: E402
from gateway.blueprints.body import _strict_json, load_body  # noqa: E402
from gateway.schemas.compat import ChatCompletionSchema, MessagesSchema  # noqa: E402
from gateway.schemas.llm import CompleteRequestSchema  # noqa: E402

SCHEMAS = {"chat": ChatCompletionSchema, "messages": MessagesSchema, "native": CompleteRequestSchema}


def fill(template: str, size: int, unit: str, close: str) -> bytes:
    """template's opening, then unit repeated until the body is just under size bytes, then close."""
    count = max(1, (size - len(template) - len(close)) // len(unit))
    return (template + unit * count).rstrip(",").encode() + close.encode()


def shapes(size: int) -> dict[str, bytes]:
    """Bodies that are cheap to send and were (or could be) expensive to check."""
    messages = '{"model":"gpt-4o-mini","max_tokens":16,"messages":['
    return {
        "zeros in an unknown field": fill('{"model":"gpt-4o-mini","messages":[],"x":[', size, "0,", "]}"),
        "floats in an unknown field": fill('{"model":"gpt-4o-mini","messages":[],"x":[', size, "0.5,", "]}"),
        "tiny objects in an unknown field": fill('{"model":"gpt-4o-mini","messages":[],"x":[', size, '{"a":1},',
                                                 "]}"),
        "many short messages": fill(messages, size, '{"role":"user","content":"hi"},', "]}"),
        "one long message": (messages + '{"role":"user","content":"' + "a " * ((size - 120) // 2) + '"}]}').encode(),
        "deep nesting (refused)": ('{"model":"m","messages":[],"x":' + "[" * 100_000 + "]" * 100_000 + "}").encode(),
    }


def best_cpu(action, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        try:
            action()
        except Exception:  # a refused body is a 400: its cost is what we measure
            pass
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_048_576)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"GATEWAY_ENV": "testing", "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
                          "MOCK_PROVIDER": "on", "MAX_REQUEST_BYTES": str(args.size * 2)})
        print(f"body validation CPU, best of {args.runs}, bodies of ~{args.size} bytes; x = multiple of json.loads")
        print(f"{'shape':34} {'json.loads':>11} {'strict JSON':>14} " +
              " ".join(f"{name + ' (all)':>16}" for name in SCHEMAS))
        for name, raw in shapes(args.size).items():
            base = max(best_cpu(lambda: json.loads(raw), args.runs), 1e-6)
            strict = best_cpu(lambda: _strict_json(raw), args.runs)
            cells = [f"{base * 1000:9.1f}ms", f"{strict * 1000:7.1f}ms {strict / base:4.1f}x"]
            for schema in SCHEMAS.values():
                def validate(schema=schema):
                    with app.test_request_context(method="POST", data=raw, content_type="application/json"):
                        load_body(schema())
                spent = best_cpu(validate, args.runs)
                cells.append(f"{spent * 1000:8.1f}ms {spent / base:5.1f}x")
            print(f"{name:34} " + " ".join(cells))


if __name__ == "__main__":
    main()
