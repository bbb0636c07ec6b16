"""Callbacks from Jira, GitHub and Standard-Webhooks senders: signatures over the raw body, replays,
stale timestamps, oversized or malformed bodies, and tenancy of the inbound endpoint."""

import hashlib
import hmac
import json
import time

import pytest

from apps.core.models import AuditEvent
from apps.integrations import services, signing
from apps.integrations.models import InboundEvent, TicketLink


def connector(world, kind, config, org=None, user=None, name=None):
    c, _ = services.connector_create(
        access=world.access(user or world.owner),
        organization=org or world.org,
        name=name or kind,
        kind=kind,
        url="https://tickets.example.test",
        config=config,
        secret="t",
        events=["item.blocker_failed"],
    )
    c.refresh_from_db()  # secrets read back from the database are EncryptedSecret
    return c


def ticket(c, key, project):
    return TicketLink.objects.create(connector=c, project=project, finding_key=f"item:1:{key}", external_key=key)


def post(client, c, body, **headers):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(f"/hooks/in/{c.inbound_id}/", raw, content_type="application/json", headers=headers)


def github_headers(c, raw: bytes, delivery="d-1", event="issues"):
    sig = "sha256=" + hmac.new(c.inbound_secret.reveal().encode(), raw, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": sig, "X-GitHub-Delivery": delivery, "X-GitHub-Event": event}


def test_a_signed_github_close_closes_the_linked_ticket_once(client, world):
    c = connector(world, "github", {"repo": "acme/copilot"})
    link = ticket(c, "42", world.project)
    body = {"action": "closed", "issue": {"number": 42, "state": "closed"}}
    raw = json.dumps(body).encode()
    reply = post(client, c, raw, **github_headers(c, raw))
    assert reply.status_code == 200 and reply.json() == {"status": "applied", "ticket": "42", "state": "closed"}
    link.refresh_from_db()
    assert link.state == "closed"
    event = AuditEvent.objects.get(action="ticket.update")
    assert event.changes["state"] == ["open", "closed"] and event.organization_id == world.org.pk
    replay = post(client, c, raw, **github_headers(c, raw))  # the same delivery again
    assert replay.status_code == 409 and "replay" in replay.json()["error"]["message"]
    reopen = json.dumps({"action": "reopened", "issue": {"number": 42}}).encode()
    assert post(client, c, reopen, **github_headers(c, reopen, delivery="d-2")).json()["state"] == "open"
    statuses = list(InboundEvent.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == ["applied", "rejected", "applied"]
    client.force_login(world.owner)
    page = client.get("/o/acme/projects/support-copilot/readiness/").content.decode()
    assert 'data-testid="tickets"' in page and ">42<" in page


@pytest.mark.parametrize(
    "mutate, status, reason",
    [
        (lambda h, raw: {**h, "X-Hub-Signature-256": "sha256=" + "0" * 64}, 401, "does not match"),
        (lambda h, raw: {k: v for k, v in h.items() if k != "X-Hub-Signature-256"}, 401, "missing signature"),
        (lambda h, raw: {k: v for k, v in h.items() if k != "X-GitHub-Delivery"}, 400, "X-GitHub-Delivery"),
    ],
)
def test_bad_github_calls_are_refused_recorded_and_change_nothing(client, world, mutate, status, reason):
    c = connector(world, "github", {"repo": "acme/copilot"})
    link = ticket(c, "42", world.project)
    raw = json.dumps({"action": "closed", "issue": {"number": 42}}).encode()
    reply = post(client, c, raw, **mutate(github_headers(c, raw), raw))
    assert reply.status_code == status and reason in reply.json()["error"]["message"]
    link.refresh_from_db()
    assert link.state == "open"
    assert InboundEvent.objects.get().status == "rejected"


def test_malformed_oversized_and_unrelated_bodies_get_a_clear_4xx_never_a_500(client, world, settings):
    c = connector(world, "github", {"repo": "acme/copilot"})
    raw = b"{not json"
    assert post(client, c, raw, **github_headers(c, raw)).status_code == 400
    raw = json.dumps({"action": "closed"}).encode()
    assert post(client, c, raw, **github_headers(c, raw, delivery="d-3")).status_code == 400
    ping = json.dumps({"zen": "Keep it simple."}).encode()
    assert post(client, c, ping, **github_headers(c, ping, delivery="d-4", event="ping")).status_code == 202
    unknown = json.dumps({"action": "closed", "issue": {"number": 999}}).encode()
    assert post(client, c, unknown, **github_headers(c, unknown, delivery="d-5")).json() == {"status": "ignored"}
    settings.READINESS_INBOUND_MAX_BYTES = 1024
    big = json.dumps({"pad": "x" * 2000}).encode()
    assert post(client, c, big, **github_headers(c, big, delivery="d-6")).status_code == 413
    assert client.get(f"/hooks/in/{c.inbound_id}/").status_code == 405
    assert post(client, c, raw).status_code == 401
    assert client.post("/hooks/in/no-such-connector/", b"{}", content_type="application/json").status_code == 404


def test_a_jira_issue_moved_to_done_closes_its_ticket(client, world):
    c = connector(world, "jira", {"email": "bot@acme.test", "project_key": "OPS"})
    link = ticket(c, "OPS-7", world.project)
    status = {"name": "Done", "statusCategory": {"key": "done"}}
    body = {"webhookEvent": "jira:issue_updated", "issue": {"key": "OPS-7", "fields": {"status": status}}}
    raw = json.dumps(body).encode()
    sig = "sha256=" + hmac.new(c.inbound_secret.reveal().encode(), raw, hashlib.sha256).hexdigest()
    reply = post(client, c, raw, **{"X-Hub-Signature": sig, "X-Atlassian-Webhook-Identifier": "j-1"})
    assert reply.status_code == 200
    link.refresh_from_db()
    assert link.state == "closed"


def test_a_standard_webhooks_callback_with_a_stale_timestamp_is_refused(client, world):
    c = connector(world, "servicenow", {"table": "incident", "auth": "bearer"})
    link = ticket(c, "abc123", world.project)
    raw = json.dumps({"type": "ticket.closed", "ticket": "abc123"}).encode()
    secret = c.inbound_secret.reveal()
    stale = int(time.time()) - 3600
    reply = post(client, c, raw, **signing.headers(secret, "msg_1", stale, raw))
    assert reply.status_code == 401 and "tolerance" in reply.json()["error"]["message"]
    fresh = post(client, c, raw, **signing.headers(secret, "msg_2", int(time.time()), raw))
    assert fresh.status_code == 200
    link.refresh_from_db()
    assert link.state == "closed"


def test_a_callback_to_another_orgs_connector_cannot_touch_this_orgs_tickets(client, world):
    ours = connector(world, "github", {"repo": "acme/copilot"})
    link = ticket(ours, "42", world.project)
    theirs = connector(world, "github", {"repo": "globex/bot"}, org=world.other_org, user=world.outsider)
    raw = json.dumps({"action": "closed", "issue": {"number": 42}}).encode()
    reply = post(client, theirs, raw, **github_headers(theirs, raw))  # correctly signed for *their* connector
    assert reply.status_code == 202 and reply.json() == {"status": "ignored"}
    link.refresh_from_db()
    assert link.state == "open"
    # And their secret does not open our endpoint.
    forged = post(client, ours, raw, **github_headers(theirs, raw, delivery="d-9"))
    assert forged.status_code == 401


def test_a_github_body_replayed_under_a_new_delivery_id_is_refused(client, world):
    """What must survive: the ticket's state. GitHub signs the body, not the delivery id beside it,
    so a captured close replayed under a fresh id after a reopen must not close the ticket again."""
    c = connector(world, "github", {"repo": "acme/copilot"})
    link = ticket(c, "7", world.project)
    close = json.dumps({"action": "closed", "issue": {"number": 7}, "updated_at": "t1"}).encode()
    reopen = json.dumps({"action": "reopened", "issue": {"number": 7}, "updated_at": "t2"}).encode()
    assert post(client, c, close, **github_headers(c, close, delivery="d-1")).status_code == 200
    assert post(client, c, reopen, **github_headers(c, reopen, delivery="d-2")).status_code == 200
    replay = post(client, c, close, **github_headers(c, close, delivery="d-forged"))
    assert replay.status_code == 409 and "another delivery id" in replay.json()["error"]["message"]
    link.refresh_from_db()
    assert link.state == "open"


@pytest.mark.parametrize("delivery", ["x" * 101, "bad\tid"])
def test_an_overlong_or_unprintable_delivery_id_is_refused_with_a_clear_400(client, world, delivery):
    c = connector(world, "github", {"repo": "acme/copilot"})
    raw = json.dumps({"action": "closed", "issue": {"number": 1}}).encode()
    reply = post(client, c, raw, **github_headers(c, raw, delivery=delivery))
    assert reply.status_code == 400 and "at most 100 printable characters" in reply.json()["error"]["message"]


def test_callbacks_beyond_the_rate_limit_are_refused_before_any_work(client, world, settings):
    from django.core.cache import cache

    cache.clear()
    settings.READINESS_INBOUND_RATE_PER_MINUTE = 3
    c = connector(world, "github", {"repo": "acme/copilot"})
    answers = []
    for i in range(5):
        raw = json.dumps({"action": "opened", "issue": {"number": i}}).encode()
        answers.append(post(client, c, raw, **github_headers(c, raw, delivery=f"d-{i}")).status_code)
    assert answers[:3] == [202, 202, 202] and answers[3:] == [429, 429]
    # Forged bodies in a flood, too: refused before the signature check, and no row for any of them.
    for i in range(20):
        post(client, c, b"{}", **github_headers(c, b"forged", delivery=f"f-{i}"))
    assert InboundEvent.objects.filter(connector=c).count() == 3  # the three accepted, nothing more
    cache.clear()
