"""Each worker's ledger thread: heartbeats the reservations this process serves, and runs the reconciler
every SWEEP_INTERVAL_S (charging reservations whose worker stopped heartbeating them)."""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask

from gateway.extensions import db
from gateway.services.settlement import heartbeat, reconcile_stale_reservations
from gateway.state import GatewayState

log = logging.getLogger("gateway.sweeper")
# Heartbeats come at least this many times per RESERVATION_TTL_S, so one late beat never looks like death.
BEATS_PER_TTL = 3


def start_sweeper(app: Flask) -> threading.Thread:
    """Start the ledger thread of this process (one per worker; heartbeats and sweeps are idempotent)."""
    state: GatewayState = app.extensions["gateway"]
    settings = state.settings
    sweep_every = settings.sweep_interval_s
    beat_every = settings.reservation_ttl_s / BEATS_PER_TTL
    tick = min(beat_every, sweep_every) if sweep_every > 0 else beat_every
    stop = threading.Event()

    def loop() -> None:
        last_sweep = time.monotonic()
        while not stop.wait(tick):
            try:
                with app.app_context():
                    heartbeat(state.live.snapshot())
                    if sweep_every > 0 and time.monotonic() - last_sweep >= sweep_every:
                        last_sweep = time.monotonic()
                        reconcile_stale_reservations(settings.reservation_ttl_s)
                    db.session.remove()
            except Exception:  # a database outage must not kill the ledger thread
                log.exception("ledger heartbeat or sweep failed; will retry")

    thread = threading.Thread(target=loop, name="ledger", daemon=True)
    thread.stop_event = stop
    thread.start()
    return thread
