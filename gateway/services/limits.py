"""A user's effective limits: their overrides where set, the configured defaults otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from gateway.config import Settings
from gateway.money import usd_to_nanousd

LIMIT_NAMES = ("daily_requests", "daily_tokens", "monthly_spend_cap_usd", "rate_limit_max", "max_concurrent_requests")


@dataclass(frozen=True)
class EffectiveLimits:
    """Limits in force for one user, and which of them are overrides."""

    daily_requests: int
    daily_tokens: int
    monthly_spend_cap_usd: Decimal
    rate_limit_max: int
    max_concurrent_requests: int  # 0 = unlimited
    overrides: tuple[str, ...]

    @property
    def monthly_spend_cap_nanousd(self) -> int:
        return usd_to_nanousd(self.monthly_spend_cap_usd)

    def as_stored(self) -> dict:
        """The user's five limit columns as the database holds them: the override, or None for a default.
        The reservation admits only while the row still holds exactly these (gateway/ledger)."""
        return {name: getattr(self, name) if name in self.overrides else None for name in LIMIT_NAMES}

    def as_dict(self) -> dict:
        """JSON shape used by the admin API and the quota endpoint."""
        return {
            "daily_requests": self.daily_requests,
            "daily_tokens": self.daily_tokens,
            "monthly_spend_cap_usd": float(self.monthly_spend_cap_usd),
            "rate_limit_max": self.rate_limit_max,
            "max_concurrent_requests": self.max_concurrent_requests,
            "overrides": list(self.overrides),
        }


def effective_limits(user, settings: Settings) -> EffectiveLimits:
    """Resolve overrides against defaults; works on a User or anything with the same attributes."""
    defaults = {
        "daily_requests": settings.default_daily_requests,
        "daily_tokens": settings.default_daily_tokens,
        "monthly_spend_cap_usd": settings.default_monthly_spend_cap_usd,
        "rate_limit_max": settings.rate_limit_max,
        "max_concurrent_requests": settings.default_max_concurrent_requests,
    }
    values, overrides = {}, []
    for name, default in defaults.items():
        value = getattr(user, name)
        if value is None:
            values[name] = default
        else:
            values[name] = value
            overrides.append(name)
    values["monthly_spend_cap_usd"] = Decimal(values["monthly_spend_cap_usd"])
    return EffectiveLimits(**values, overrides=tuple(overrides))
