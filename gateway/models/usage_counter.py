"""Per-user running totals per UTC day and month; quota checks read these, never the audit log."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.extensions import db
from gateway.models.types import BigId


class UsageCounter(db.Model):
    __tablename__ = "usage_counters"
    __table_args__ = (
        UniqueConstraint("user_id", "period", "period_start", name="uq_usage_counters_period"),
        CheckConstraint("period IN ('day', 'month')", name="ck_usage_counters_period"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(8))
    period_start: Mapped[date] = mapped_column(Date)
    requests: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tokens: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    spend_nanousd: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
