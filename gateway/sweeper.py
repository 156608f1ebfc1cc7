"""Background release of reservations left pending by crashed workers, every SWEEP_INTERVAL_S."""

from __future__ import annotations

import logging
import threading

from flask import Flask

from gateway.extensions import db
from gateway.services.settlement import sweep_stale_reservations
from gateway.state import GatewayState

log = logging.getLogger("gateway.sweeper")


def start_sweeper(app: Flask) -> threading.Thread | None:
    """Start a daemon thread in this process (one per worker; sweeps are idempotent)."""
    state: GatewayState = app.extensions["gateway"]
    interval = state.settings.sweep_interval_s
    if interval <= 0:
        return None
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                with app.app_context():
                    sweep_stale_reservations(state.settings.reservation_ttl_s)
                    db.session.remove()
            except Exception:  # a database outage must not kill the sweeper
                log.exception("sweep failed; will retry")

    thread = threading.Thread(target=loop, name="reservation-sweeper", daemon=True)
    thread.stop_event = stop
    thread.start()
    return thread
