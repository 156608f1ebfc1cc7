"""Structured JSON log lines on stderr; fields are explicit, so no key or prompt text slips in."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from gateway.config import Settings

STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(settings: Settings) -> None:
    """Send the gateway's logs to stderr as JSON, once per process."""
    root = logging.getLogger("gateway")
    root.propagate = settings.gateway_env == "testing"  # let pytest's caplog see records in tests
    if any(getattr(h, "_dominion", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._dominion = True
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in ("flask-limiter", "flask_limiter"):
        logging.getLogger(name).addHandler(handler)
