"""Typed readers for environment variables.

Each helper fails loudly (ImproperlyConfigured) on a value it cannot parse, so a typo in
production config stops the process at start-up instead of silently using a default.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlparse, urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false/1/0), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_url(name: str, *, schemes: tuple[str, ...]) -> str:
    """A URL whose scheme is one of `schemes`, or "" when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return ""
    parsed = urlparse(raw)
    if parsed.scheme not in schemes:
        allowed = ", ".join(schemes)
        raise ImproperlyConfigured(f"{name} must use one of the schemes {allowed}; got {raw!r}")
    return raw


def redis_neighbour_db(url: str) -> str:
    """The same Redis server's next database (redis://h:6379/0 -> /1): where the cache goes by
    default, so clearing the cache can never flush the broker's queues. Other URLs (a unix
    socket, a database given by name) are returned unchanged."""
    parts = urlsplit(url)
    db = parts.path.strip("/") or "0"
    if parts.scheme not in ("redis", "rediss") or not db.isdigit():
        return url
    return urlunsplit(parts._replace(path=f"/{int(db) + 1}"))


def env_secret_file(name: str, path: Path, *, generate) -> str:
    """The env value if set, else a value persisted in `path`, generated on first use.

    Used for SECRET_KEY and the field-encryption key in the embedded default, so a fresh
    checkout works without configuration and nothing secret is ever committed.
    """
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = generate()
    # O_EXCL: if two processes start at once, the loser reads the winner's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def random_secret_key() -> str:
    return secrets.token_urlsafe(50)


def env_required(name: str, hint: str = "") -> str:
    """The value of `name`; unset or blank stops start-up with a message naming it."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} must be set in the environment. {hint}".strip())
    return value


def check_fernet_keys(source: str, keys: list[str]) -> list[str]:
    """`keys` unchanged if each is a Fernet key (32 url-safe base64-encoded bytes), else
    ImproperlyConfigured naming `source` (the variable or file) and the key's position. The key
    itself is never in the message: start-up errors end up in logs."""
    from cryptography.fernet import Fernet

    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            which = f"key {position} of {source}" if len(keys) > 1 else source
            raise ImproperlyConfigured(
                f"{which} is not a valid Fernet key (32 url-safe base64-encoded bytes). Generate one with: "
                'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
            ) from None
    return keys
