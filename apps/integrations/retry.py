"""When to try a delivery again (pure Python).

Transient: connection errors and timeouts, 429 (honouring Retry-After), 5xx. Permanent: any
other 4xx. Success: 2xx. Backoff doubles from `base_s` up to `cap_s`; a Retry-After longer than
the cap is cut to the cap so one receiver cannot park a delivery for days.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

SUCCESS, RETRY, GIVE_UP = "success", "retry", "give_up"


def classify(status_code: int | None) -> str:
    """None means no HTTP response (connect error, timeout, refused address)."""
    if status_code is None or status_code == 429 or status_code >= 500:
        return RETRY
    if 200 <= status_code < 300:
        return SUCCESS
    return GIVE_UP


def retry_after_seconds(value: str | None, *, now: datetime) -> float | None:
    """Retry-After as delay-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def next_delay(
    attempts: int, *, retry_after: float | None = None, base_s: float = 30.0, cap_s: float = 3600.0
) -> float:
    """Seconds to wait after the `attempts`-th failed attempt (1-based)."""
    backoff = min(cap_s, base_s * 2 ** (attempts - 1))
    if retry_after is not None:
        return min(cap_s, max(backoff, retry_after))
    return backoff
