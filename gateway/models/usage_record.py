"""The audit log: one row per authenticated request, from reservation to settlement.

counted says whether the row holds a share of the user's counters: a pending row holds its
reserved amounts, a settled row its actual ones, a refused or released row nothing.
provider and model name the upstream and model that answered (or failed last); when a fallback model
answered, fallback_from is the model the caller asked for; attempts lists every upstream call when
there was more than one (null: the one upstream named). billing_rule says why a settled row costs what
it costs (gateway/services/settlement.py names the rules); heartbeat_at is when the worker serving a
pending row last said it is alive (the reconciler charges rows whose worker went quiet).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, false, func
from sqlalchemy.orm import Mapped, mapped_column

from gateway.extensions import db
from gateway.models.types import BigId, UTCDateTime

RECORD_STATUSES = ("pending", "ok", "upstream_error", "client_disconnected", "internal_error", "quota_exceeded",
                   "concurrency_limited", "invalid_request", "reconciled", "released")


class UsageRecord(db.Model):
    __tablename__ = "usage_records"
    __table_args__ = (
        Index("ix_usage_records_user_created", "user_id", "created_at"),
        Index("ix_usage_records_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    endpoint: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(24))
    http_status: Mapped[int | None] = mapped_column(Integer)
    error_type: Mapped[str | None] = mapped_column(String(64))
    stream: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    counted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    reserved_prompt_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reserved_completion_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reserved_cost_nanousd: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cost_nanousd: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    billing_rule: Mapped[str | None] = mapped_column(String(24))
    price_snapshot: Mapped[dict | None] = mapped_column(JSON)
    fallback_from: Mapped[str | None] = mapped_column(String(100))
    attempts: Mapped[list | None] = mapped_column(JSON)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    upstream_latency_ms: Mapped[int | None] = mapped_column(Integer)
    client_ip: Mapped[str | None] = mapped_column(String(64))
    prompt_record: Mapped[dict | None] = mapped_column(JSON)
    day_start: Mapped[date] = mapped_column(Date)
    month_start: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
