"""Callbacks from the ticketing side (pure Python): verify, parse, and say which ticket changed.

GitHub signs with `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` and names the
delivery in `X-GitHub-Delivery`; Jira Cloud signs with `X-Hub-Signature: sha256=<hex>` and names it
in `X-Atlassian-Webhook-Identifier`; everything else (ServiceNow business rules, custom tools)
uses Standard Webhooks with a `{"type": "ticket.closed" | "ticket.reopened", "ticket": key}` body.
Signatures are compared in constant time over the raw bytes, before the body is parsed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

from apps.integrations import signing

CLOSED, OPEN = "closed", "open"
MAX_DELIVERY_ID = 100
# GitHub and Jira sign the body only, not the delivery id beside it: a captured body would replay
# under a new id. Their bodies differ from event to event (timestamps), so a body seen before is a
# replay. Standard Webhooks signs the id with the body, so there the id alone decides.
BODY_DEDUPED = ("github", "jira")


class Rejected(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Update:
    delivery_id: str
    ticket: str | None = None  # external key (Jira key, GitHub number, ServiceNow sys_id)
    state: str | None = None  # None: nothing about a ticket's state (a ping, another event)


def _hmac_hex(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _check_hex(header: str | None, secret: str, body: bytes) -> None:
    if not header:
        raise Rejected(401, "missing signature header")
    if not hmac.compare_digest(header.strip().encode(), _hmac_hex(secret, body).encode()):
        raise Rejected(401, "signature does not match")


def _delivery(headers, name: str) -> str:
    delivery = headers.get(name) or ""
    if not delivery:
        raise Rejected(400, f"missing {name}")
    if len(delivery) > MAX_DELIVERY_ID or not delivery.isprintable():
        raise Rejected(400, f"{name} must be at most {MAX_DELIVERY_ID} printable characters")
    return delivery


def _json(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Rejected(400, "body is not JSON") from None
    if not isinstance(payload, dict):
        raise Rejected(400, "body is not a JSON object")
    return payload


def github(headers, body: bytes, secret: str, *, now: float) -> Update:
    _check_hex(headers.get("X-Hub-Signature-256"), secret, body)
    delivery = _delivery(headers, "X-GitHub-Delivery")
    payload = _json(body)
    if headers.get("X-GitHub-Event") != "issues":
        return Update(delivery)
    try:
        number, action = str(payload["issue"]["number"]), payload["action"]
    except (KeyError, TypeError):
        raise Rejected(400, "an issues event without issue.number and action") from None
    return Update(delivery, number, {"closed": CLOSED, "reopened": OPEN}.get(action))


def jira(headers, body: bytes, secret: str, *, now: float) -> Update:
    _check_hex(headers.get("X-Hub-Signature"), secret, body)
    delivery = _delivery(headers, "X-Atlassian-Webhook-Identifier")
    payload = _json(body)
    issue = payload.get("issue")
    if not isinstance(issue, dict) or "key" not in issue:
        return Update(delivery)
    try:
        category = issue["fields"]["status"]["statusCategory"]["key"]
    except (KeyError, TypeError):
        raise Rejected(400, "an issue without fields.status.statusCategory.key") from None
    return Update(delivery, str(issue["key"]), CLOSED if category == "done" else OPEN)


def standard(headers, body: bytes, secret: str, *, now: float) -> Update:
    try:
        signing.verify(
            secret,
            headers.get("webhook-id", ""),
            headers.get("webhook-timestamp", ""),
            headers.get("webhook-signature", ""),
            body,
            now=now,
        )
    except signing.SignatureError as exc:
        raise Rejected(401, str(exc)) from None
    _delivery(headers, "webhook-id")
    payload = _json(body)
    kind = payload.get("type")
    if kind not in ("ticket.closed", "ticket.reopened") or not payload.get("ticket"):
        raise Rejected(400, 'expected {"type": "ticket.closed" | "ticket.reopened", "ticket": "<key>"}')
    return Update(headers["webhook-id"], str(payload["ticket"]), CLOSED if kind == "ticket.closed" else OPEN)


PARSERS = {"github": github, "jira": jira, "servicenow": standard, "webhook": standard}
