"""A caller of the gateway: identity, status and optional limit overrides (null = the configured default)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, Integer, Numeric, String, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gateway.extensions import db
from gateway.models.types import UTCDateTime
from gateway.services.limits import LIMIT_NAMES

USER_STATUSES = ("active", "suspended")
LIMIT_FIELDS = LIMIT_NAMES  # the nullable override columns below, one per limit


class User(db.Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("status IN ('active', 'suspended')", name="ck_users_status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    daily_requests: Mapped[int | None] = mapped_column(Integer)
    daily_tokens: Mapped[int | None] = mapped_column(BigInteger)
    monthly_spend_cap_usd: Mapped[Decimal | None] = mapped_column(Numeric(14, 6))
    rate_limit_max: Mapped[int | None] = mapped_column(Integer)
    max_concurrent_requests: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now(), onupdate=func.now())

    keys = relationship("ApiKey", back_populates="user", lazy="selectin", order_by="ApiKey.id")
