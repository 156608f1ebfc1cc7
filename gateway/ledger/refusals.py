"""The limits admit() can refuse on, by the names the caller's 429 uses."""

CONCURRENCY = "max_concurrent_requests"
DAILY = "daily"  # daily_requests or daily_tokens: the caller reads which
MONTHLY_SPEND = "monthly_spend_cap_usd"
