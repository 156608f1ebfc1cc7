"""What admit() can refuse on: the limits, by the names the caller's 429 uses, and the caller itself."""

CONCURRENCY = "max_concurrent_requests"
DAILY = "daily"  # daily_requests or daily_tokens: the caller reads which
MONTHLY_SPEND = "monthly_spend_cap_usd"
CALLER = "caller_changed"  # the key is no longer live, its user not active, or the limits not those given
