"""A delivery keeps every attempt it made; a redelivery starts a new round and forgets none."""

import pytest
from django.core.cache import cache

from apps.integrations import services
from apps.integrations.receiver import Receiver
from tests.conftest import api_client_for

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def receiver():
    r = Receiver(secret=SECRET)
    server = r.start()
    yield r
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    cache.clear()  # the API's rate limiter counts in the cache, which outlives a test
    yield
    cache.clear()


@pytest.fixture
def dead_delivery(world, receiver, settings):
    settings.READINESS_DELIVERY_MAX_ATTEMPTS = 2
    settings.READINESS_DELIVERY_BACKOFF_BASE_S = 0
    services.connector_create(
        access=world.access(world.owner),
        organization=world.org,
        name="hooks",
        url=receiver.url,
        secret=SECRET,
        events=["decision.changed"],
    )
    receiver.replies = [(503, {}, b"busy"), (500, {}, b"broken")]
    [delivery] = services.emit("decision.changed", project=world.project, data={"to": "GO"})
    services.attempt(delivery.pk)
    services.attempt(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "dead"
    return delivery


def test_a_redelivery_keeps_the_earlier_attempts_and_adds_its_own(world, receiver, dead_delivery):
    receiver.replies = [(200, {}, b"ok")]
    services.redeliver(access=world.access(world.owner), delivery=dead_delivery)
    services.attempt(dead_delivery.pk)
    dead_delivery.refresh_from_db()
    assert (dead_delivery.status, dead_delivery.attempts, dead_delivery.redeliveries) == ("succeeded", 1, 1)
    history = list(dead_delivery.history.values_list("round", "number", "response_code", "response_excerpt"))
    assert history == [(0, 1, 503, "busy"), (0, 2, 500, "broken"), (1, 1, 200, "ok")]


def test_the_delivery_page_and_the_api_show_every_attempt(world, receiver, dead_delivery):
    receiver.replies = [(200, {}, b"ok")]
    client = api_client_for(world.owner)
    assert client.post(f"/o/acme/deliveries/{dead_delivery.pk}/redeliver/").status_code == 302
    services.attempt(dead_delivery.pk)
    page = client.get(f"/o/acme/deliveries/{dead_delivery.pk}/").content.decode()
    table = page.split('data-testid="attempts"')[1].split("</table>")[0]
    assert "HTTP 503" in table and "HTTP 500" in table and "HTTP 200" in table and "Redelivery 1" in table
    body = client.get(f"/api/v1/deliveries/{dead_delivery.pk}/").json()
    assert [(a["round"], a["number"], a["response_code"]) for a in body["history"]] == [
        (0, 1, 503),
        (0, 2, 500),
        (1, 1, 200),
    ]


def test_an_outsider_gets_404_on_the_delivery_its_history_and_redelivery(world, dead_delivery):
    client = api_client_for(world.outsider)
    assert client.get(f"/o/acme/deliveries/{dead_delivery.pk}/").status_code == 404
    assert client.get(f"/o/globex/deliveries/{dead_delivery.pk}/").status_code == 404
    assert client.get(f"/api/v1/deliveries/{dead_delivery.pk}/").status_code == 404
    assert client.post(f"/o/globex/deliveries/{dead_delivery.pk}/redeliver/").status_code == 404
    assert dead_delivery.history.count() == 2


def test_a_viewer_reads_the_history_but_cannot_redeliver(world, dead_delivery):
    client = api_client_for(world.viewer)
    page = client.get(f"/o/acme/deliveries/{dead_delivery.pk}/")
    assert page.status_code == 200 and "HTTP 503" in page.content.decode()
    assert client.post(f"/o/acme/deliveries/{dead_delivery.pk}/redeliver/").status_code == 403
    dead_delivery.refresh_from_db()
    assert dead_delivery.redeliveries == 0
