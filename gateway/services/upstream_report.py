"""GET /admin/upstreams: every upstream and each deployment on it, as this process has seen them.

Health (cooldowns, counters, last error) is kept per process since it started; with several gunicorn
workers each answers with its own view (`pid` says whose). Prometheus sums the counters over workers.
"""

from __future__ import annotations

import os

from gateway.providers.registry import MOCK
from gateway.state import GatewayState


def upstream_report(state: GatewayState) -> dict:
    """{scope, pid, data: [upstream with its deployments]} in definition order, mock last."""
    deployments: dict[str, list[dict]] = {}
    for entry in state.catalog.entries():
        for target in state.router.targets(entry.id):
            deployments.setdefault(target.deployment.upstream, []).append({
                "model": entry.id, "upstream_model": target.deployment.upstream_id,
                "weight": target.deployment.weight, **target.health.snapshot()})
    data = [_upstream(u.name, u.kind, u.base_url, u.api_key_env, u.source, u.unavailable_reason,
                      deployments.get(u.name, [])) for u in state.upstreams]
    if state.providers.available(MOCK) or MOCK in deployments:
        reason = None if state.providers.available(MOCK) else "MOCK_PROVIDER is off"
        data.append(_upstream(MOCK, MOCK, None, None, "environment", reason, deployments.get(MOCK, [])))
    return {"scope": "process", "pid": os.getpid(), "data": data}


def _upstream(name, kind, base_url, key_env, source, unavailable_reason, deployments: list[dict]) -> dict:
    return {"name": name, "kind": kind, "base_url": base_url, "api_key_env": key_env, "source": source,
            "state": _state(unavailable_reason, deployments), "unavailable_reason": unavailable_reason,
            "requests": sum(d["requests"] for d in deployments),
            "failures": sum(d["failures"] for d in deployments), "deployments": deployments}


def _state(unavailable_reason: str | None, deployments: list[dict]) -> str:
    """unavailable (no key), cooling_down (every deployment), degraded (some) or ok."""
    if unavailable_reason:
        return "unavailable"
    cooling = sum(d["state"] == "cooling_down" for d in deployments)
    if cooling and cooling == len(deployments):
        return "cooling_down"
    return "degraded" if cooling else "ok"
