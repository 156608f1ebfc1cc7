"""The data model: users, their keys, the audit log and the quota counters."""

from gateway.models.api_key import ApiKey
from gateway.models.in_flight import InFlight
from gateway.models.usage_counter import UsageCounter
from gateway.models.usage_record import UsageRecord
from gateway.models.user import User

__all__ = ["ApiKey", "InFlight", "UsageCounter", "UsageRecord", "User"]
