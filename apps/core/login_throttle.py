"""Failed log-ins, counted in the cache per username and per client address.

After READINESS_LOGIN_MAX_FAILURES failures for one username (or
READINESS_LOGIN_MAX_FAILURES_PER_ADDRESS from one address), with less than
READINESS_LOGIN_WINDOW_S between one failure and the next, log-ins for it are refused without
checking the password, until the window has passed since the last failure. Refused attempts are not
counted: they do not prolong the lock, and a correct password during it reveals nothing.

Counts live in the cache (Redis in production, shared by every web process). A username is
counted whether or not the account exists, so the lock says nothing about which names are real.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or behind READINESS_NUM_PROXIES proxies, the address the
    outermost of them saw (X-Forwarded-For, counted from the right: entries further left are the
    client's own claims)."""
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.READINESS_NUM_PROXIES
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    if proxies and forwarded:
        return forwarded[-min(proxies, len(forwarded))]
    return remote


def _keys(username: str, address: str) -> tuple[str, str]:
    # Hashed: usernames may hold any character, and cache keys (memcached) may not.
    name = hashlib.sha256(username.strip().casefold().encode()).hexdigest()
    addr = hashlib.sha256(address.encode()).hexdigest()
    return f"login-failures:user:{name}", f"login-failures:addr:{addr}"


def login_blocked(*, username: str, address: str) -> bool:
    user_key, addr_key = _keys(username, address)
    counts = cache.get_many([user_key, addr_key])
    return (
        counts.get(user_key, 0) >= settings.READINESS_LOGIN_MAX_FAILURES
        or counts.get(addr_key, 0) >= settings.READINESS_LOGIN_MAX_FAILURES_PER_ADDRESS
    )


def login_failed(*, username: str, address: str) -> None:
    window = settings.READINESS_LOGIN_WINDOW_S
    for key in _keys(username, address):
        cache.add(key, 0, timeout=window)
        try:
            cache.incr(key)  # atomic on Redis, so parallel guesses are all counted
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window)
        # incr keeps the key's expiry on Redis but not on every backend (the file cache resets it
        # to the default): the window runs from the last failure either way.
        cache.touch(key, timeout=window)


def login_succeeded(*, username: str, address: str) -> None:
    """The username's count starts again; the address's stays, so one good account cannot be
    used to reset the count of an address guessing others' passwords."""
    cache.delete(_keys(username, address)[0])


class ThrottledLoginMixin:
    """For an AuthenticationForm (the log-in page's, the admin's): checks the locks before the
    password, counts a failure, clears the username's count on success."""

    throttled_message = (
        "Too many failed log-ins for this account or from this address. Try again in %(minutes)s minutes, "
        "or reset your password."
    )

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        if login_blocked(username=username, address=address):
            minutes = max(1, round(settings.READINESS_LOGIN_WINDOW_S / 60))
            raise ValidationError(self.throttled_message, code="throttled", params={"minutes": minutes})
        try:
            cleaned = super().clean()
        except ValidationError:
            login_failed(username=username, address=address)
            raise
        if self.user_cache is not None:  # not when a field was missing: nothing was checked
            login_succeeded(username=username, address=address)
        return cleaned
