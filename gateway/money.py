"""Money's one unit, integer nano-USD (1 USD = 10^9), and the only conversions between it and USD."""

from __future__ import annotations

from decimal import Decimal

NANOUSD_PER_USD = 10**9


def usd_to_nanousd(usd: Decimal) -> int:
    """An exact USD amount in whole nano-USD (amounts are validated to at most 9 decimal places)."""
    return int(usd * NANOUSD_PER_USD)


def nanousd_to_usd(nanousd: int | None) -> Decimal:
    """Integer nano-USD as an exact Decimal amount of USD."""
    return Decimal(int(nanousd or 0)).scaleb(-9)


def usd_number(nanousd: int | None) -> float:
    """USD as a JSON number (exact up to ~15 significant digits: more than any real bill)."""
    return float(nanousd_to_usd(nanousd))
