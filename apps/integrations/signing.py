"""Standard Webhooks signatures (https://www.standardwebhooks.com), pure Python.

`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with the secret's
bytes (`whsec_<base64>`). Receivers check the signature in constant time and refuse timestamps
outside a tolerance, which together with remembering ids stops replays.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
TOLERANCE_SECONDS = 300
# The spec's secrets are 24 to 64 random bytes; shorter is guessable, longer is a paste of something else.
KEY_BYTES = (24, 64)


class SignatureError(ValueError):
    pass


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_problem(secret: str) -> str | None:
    """Why `secret` is not a signing secret (`whsec_` + base64 of 24 to 64 bytes), or None when it is."""
    if not secret.startswith(PREFIX):
        return f"A signing secret starts with {PREFIX} (Standard Webhooks); leave it empty to have one generated."
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except ValueError:
        return f"After {PREFIX} comes base64 (A-Z, a-z, 0-9, + and /, padded with =)."
    low, high = KEY_BYTES
    if not low <= len(key) <= high:
        return f"The key after {PREFIX} is {len(key)} bytes; Standard Webhooks keys are {low} to {high} bytes."
    return None


def _key(secret: str) -> bytes:
    if secret.startswith(PREFIX):
        try:
            return base64.b64decode(secret[len(PREFIX) :], validate=True)
        except ValueError:
            raise SignatureError("the secret is not valid base64 after whsec_") from None
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def verify(secret: str, msg_id: str, timestamp: str, signature_header: str, body: bytes, *, now: float) -> None:
    """Raise SignatureError unless one of the header's signatures matches and the time is fresh."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        raise SignatureError("webhook-timestamp is not a number") from None
    if abs(now - ts) > TOLERANCE_SECONDS:
        raise SignatureError("webhook-timestamp is outside the tolerance (stale or from the future)")
    expected = sign(secret, msg_id, ts, body).encode()
    for candidate in (signature_header or "").split():
        if hmac.compare_digest(candidate.encode(), expected):
            return
    raise SignatureError("no matching signature")
