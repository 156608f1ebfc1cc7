"""Per-user count of admitted requests not yet settled: the concurrency cap's counter.

It always equals the user's `pending` audit rows (flask quotas check verifies it): reservation raises
it in the same transaction that inserts the pending row, settlement and the reconciler lower it in the
transaction that finishes the row.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from gateway.extensions import db


class InFlight(db.Model):
    __tablename__ = "usage_in_flight"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
