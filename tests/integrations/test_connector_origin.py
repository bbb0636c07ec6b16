"""A connector's stored secret goes only to the origin (scheme, host, port) it was given for.

A URL on another origin drops it unless the same update brings a new one: a webhook gets a new
signing secret, shown once; a ticketing connector (Jira, ServiceNow, GitHub) needs its token again
and the update is refused without it. Local servers on 127.0.0.1 play the old and the new
receiver and record what they get.
"""

import time

import pytest
from django.core.cache import cache

from apps.core.errors import ApplicationError
from apps.core.models import AuditEvent
from apps.integrations import services, signing
from apps.integrations.models import Connector
from apps.integrations.receiver import Receiver
from tests.conftest import api_client_for


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    # The API rate limiter counts in the cache, which outlives a test: start every test at zero.
    cache.clear()
    yield
    cache.clear()


WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TOKEN = "ghp_old-token-for-the-real-github"


@pytest.fixture
def servers():
    started = []

    def start(secret=None) -> Receiver:
        r = Receiver(secret=secret)
        started.append(r.start())
        r.base = r.url.removesuffix("/hooks/readiness")
        return r

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def github(world, url):
    connector, _ = services.connector_create(
        access=world.access(world.owner),
        organization=world.org,
        name="gh",
        kind="github",
        url=url,
        config={"repo": "acme/copilot"},
        secret=TOKEN,
        events=["item.blocker_failed"],
    )
    return connector


def webhook(world, url):
    connector, _ = services.connector_create(
        access=world.access(world.owner),
        organization=world.org,
        name="hook",
        kind="webhook",
        url=url,
        secret=WEBHOOK_SECRET,
        events=["decision.changed"],
    )
    return connector


def seen(server: Receiver) -> str:
    return " ".join(f"{r.headers} {r.body!r}" for r in server.received)


def test_a_ticketing_connector_moved_to_another_origin_needs_its_token_again(world, servers):
    old, new = servers(), servers()
    connector = github(world, old.base)
    client = api_client_for(world.owner)

    refused = client.patch(f"/api/v1/connectors/{connector.pk}/", {"url": new.base}, format="json")
    client.post(f"/api/v1/connectors/{connector.pk}/test/")

    assert refused.status_code == 400
    assert "another origin" in refused.json()["error"]["detail"]["secret"][0]
    assert Connector.objects.get(pk=connector.pk).url == old.base
    assert new.received == [] and len(old.received) == 1
    assert old.received[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_ticketing_connector_moved_with_a_new_token_sends_only_the_new_token(world, servers):
    old, new = servers(), servers()
    connector = github(world, old.base)
    client = api_client_for(world.owner)

    moved = client.patch(f"/api/v1/connectors/{connector.pk}/", {"url": new.base, "secret": "ghp_new"}, format="json")
    client.post(f"/api/v1/connectors/{connector.pk}/test/")

    assert moved.status_code == 200, moved.content
    assert [r.headers["Authorization"] for r in new.received] == ["Bearer ghp_new"]
    assert TOKEN not in seen(new)
    event = AuditEvent.objects.get(action="connector.update")
    assert event.changes["secret"] == ["(set)", "(changed)"]


def test_another_path_on_the_same_origin_keeps_the_token(world, servers):
    server = servers()
    connector = github(world, server.base)

    services.connector_update(access=world.access(world.owner), connector=connector, url=server.base + "/api/v3")
    services.send_test(access=world.access(world.owner), connector=connector)

    assert server.received[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert "secret" not in AuditEvent.objects.get(action="connector.update").changes


def test_a_webhook_moved_to_another_origin_gets_a_new_secret_shown_once_over_the_api(world, servers):
    old = servers(secret=WEBHOOK_SECRET)
    connector = webhook(world, old.url)
    new_with_old_secret = servers(secret=WEBHOOK_SECRET)
    client = api_client_for(world.owner)

    moved = client.patch(f"/api/v1/connectors/{connector.pk}/", {"url": new_with_old_secret.url}, format="json")
    client.post(f"/api/v1/connectors/{connector.pk}/test/")

    assert moved.status_code == 200, moved.content
    fresh = moved.json()["signing_secret"]
    assert fresh.startswith("whsec_") and fresh != WEBHOOK_SECRET and signing.secret_problem(fresh) is None
    assert client.get(f"/api/v1/connectors/{connector.pk}/").json().get("signing_secret") is None
    # Signed with the new secret: what the new server gets proves nothing signed with the old one.
    assert [r.verified for r in new_with_old_secret.received] == [False]
    got = new_with_old_secret.received[0]
    signing.verify(
        fresh,
        got.headers["webhook-id"],
        got.headers["webhook-timestamp"],
        got.headers["webhook-signature"],
        got.body,
        now=time.time(),
    )
    event = AuditEvent.objects.get(action="connector.update")
    assert event.changes["secret"] == ["(set)", "(dropped: origin changed; a new one generated)"]


def test_a_webhook_moved_with_a_new_secret_keeps_the_one_given(world, servers):
    old = servers(secret=WEBHOOK_SECRET)
    connector = webhook(world, old.url)
    given = signing.new_secret()

    updated, shown = services.connector_update(
        access=world.access(world.owner), connector=connector, url="http://127.0.0.1:8999/hooks", secret=given
    )

    assert shown is None
    assert Connector.objects.get(pk=updated.pk).secret.reveal() == given


def test_the_connector_page_shows_the_new_signing_secret_once_after_a_move(client, world, servers):
    old = servers(secret=WEBHOOK_SECRET)
    connector = webhook(world, old.url)
    client.force_login(world.owner)
    form = {
        "name": "hook",
        "kind": "webhook",
        "url": "http://127.0.0.1:8999/hooks",
        "config": "{}",
        "events": ["decision.changed"],
        "secret": "",
        "active": "on",
    }

    response = client.post(f"/o/acme/connectors/{connector.pk}/", form)

    assert response.status_code == 200
    text = response.content.decode()
    stored = Connector.objects.get(pk=connector.pk).secret.reveal()
    assert stored != WEBHOOK_SECRET and stored in text and "another origin" in text
    assert WEBHOOK_SECRET not in text
    assert stored not in client.get(f"/o/acme/connectors/{connector.pk}/").content.decode()


def test_the_connector_page_refuses_moving_a_ticketing_connector_without_its_token(client, world, servers):
    old = servers()
    connector = github(world, old.base)
    client.force_login(world.owner)
    form = {
        "name": "gh",
        "kind": "github",
        "url": "http://127.0.0.1:8999",
        "config": '{"repo": "acme/copilot"}',
        "events": ["item.blocker_failed"],
        "secret": "",
        "active": "on",
    }

    response = client.post(f"/o/acme/connectors/{connector.pk}/", form)

    assert response.status_code == 200
    assert "another origin" in response.content.decode()
    assert Connector.objects.get(pk=connector.pk).url == old.base


def test_the_service_refuses_a_ticketing_move_without_a_token(world):
    connector = github(world, "https://api.github.com")

    with pytest.raises(ApplicationError) as exc:
        services.connector_update(access=world.access(world.owner), connector=connector, url="https://evil.test")

    assert list(exc.value.detail) == ["secret"]
    assert Connector.objects.get(pk=connector.pk).secret.reveal() == TOKEN
