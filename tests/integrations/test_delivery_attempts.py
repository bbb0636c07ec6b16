"""Every failure of a delivery is an attempt, and the last one dead-letters it.

A webhook secret is checked when saved (Standard Webhooks: `whsec_` + base64 of 24 to 64 bytes).
A secret stored before that check, one the configured keys cannot decrypt, a config a request
cannot be built from: each fails the attempt (counted, recorded), never leaves the delivery
claimed in `sending` to be handed back for ever. A claim left by a killed worker has used its
attempt too. A local receiver on 127.0.0.1 shows what was (not) sent.
"""

import base64
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.cache import cache
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.integrations import services, signing
from apps.integrations.models import Connector, Delivery, DeliveryStatus
from apps.integrations.receiver import Receiver
from tests.conftest import api_client_for


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    # The API rate limiter counts in the cache, which outlives a test: start every test at zero.
    cache.clear()
    yield
    cache.clear()


MAX_ATTEMPTS = 3


@pytest.fixture(autouse=True)
def _few_attempts(settings):
    settings.READINESS_DELIVERY_MAX_ATTEMPTS = MAX_ATTEMPTS


@pytest.fixture
def receiver():
    r = Receiver()
    server = r.start()
    yield r
    server.shutdown()
    server.server_close()


def webhook(world, url, secret=None):
    connector, _ = services.connector_create(
        access=world.access(world.owner),
        organization=world.org,
        name="hook",
        kind="webhook",
        url=url,
        secret=secret,
        events=["decision.changed"],
    )
    return connector


def attempt_until_done(delivery: Delivery) -> list[tuple[str, int]]:
    """Attempt whenever due (as beat would), recording (status, attempts) after each try."""
    seen = []
    for _ in range(MAX_ATTEMPTS + 2):
        Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(next_attempt_at=timezone.now())
        services.send_due()
        delivery.refresh_from_db()
        seen.append((delivery.status, delivery.attempts))
        if delivery.status in (DeliveryStatus.DEAD, DeliveryStatus.FAILED, DeliveryStatus.SUCCEEDED):
            break
    return seen


DEAD_AFTER_MAX = [("pending", 1), ("pending", 2), ("dead", 3)]


# --- the secret is checked when saved -------------------------------------------------------------

BAD_SECRETS = {
    "no prefix": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "not base64": "whsec_not*base64*at*all*but*long*enough",
    "nothing after the prefix": "whsec_",
    "too short a key": "whsec_" + base64.b64encode(b"8 bytes!").decode(),
    "too long a key": "whsec_" + base64.b64encode(bytes(65)).decode(),
}


@pytest.mark.parametrize("secret", BAD_SECRETS.values(), ids=BAD_SECRETS.keys())
def test_an_invalid_webhook_secret_is_refused_on_create_and_update(world, secret):
    with pytest.raises(ApplicationError) as created:
        webhook(world, "http://127.0.0.1:9/hooks", secret=secret)
    connector = webhook(world, "http://127.0.0.1:9/hooks")
    before = Connector.objects.get(pk=connector.pk).secret.reveal()
    with pytest.raises(ApplicationError) as updated:
        services.connector_update(access=world.access(world.owner), connector=connector, secret=secret)

    for failure in (created, updated):
        assert list(failure.value.detail) == ["secret"]
        assert "whsec_" in failure.value.detail["secret"][0]
    assert Connector.objects.get(pk=connector.pk).secret.reveal() == before


def test_the_api_refuses_an_invalid_webhook_secret_naming_the_field(world):
    body = {
        "organization": "acme",
        "name": "hook",
        "kind": "webhook",
        "url": "http://127.0.0.1:9/hooks",
        "secret": "whsec_not*base64",
        "events": ["decision.changed"],
    }

    response = api_client_for(world.owner).post("/api/v1/connectors/", body, format="json")

    assert response.status_code == 400
    assert "base64" in response.json()["error"]["detail"]["secret"][0]
    assert not Connector.objects.exists()


def test_valid_secrets_are_accepted(world):
    valid = [
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        signing.new_secret(),
        "whsec_" + base64.b64encode(bytes(range(64))).decode(),
    ]
    for n, secret in enumerate(valid):
        services.connector_create(
            access=world.access(world.owner),
            organization=world.org,
            name=f"h{n}",
            url="http://127.0.0.1:9/hooks",
            secret=secret,
            events=["decision.changed"],
        )
    assert signing.secret_problem(signing.new_secret()) is None


# --- every failure is an attempt ------------------------------------------------------------------


def test_a_stored_secret_that_cannot_sign_counts_each_attempt_and_dead_letters(world, receiver):
    connector = webhook(world, receiver.url)
    # Saved before secrets were checked: the row holds what the service now refuses.
    Connector.objects.filter(pk=connector.pk).update(secret="whsec_not*base64")
    [delivery] = services.emit("decision.changed", project=world.project)

    assert attempt_until_done(delivery) == DEAD_AFTER_MAX
    delivery.refresh_from_db()
    assert "secret" in delivery.error and "base64" in delivery.error
    assert receiver.received == []


def test_a_secret_the_configured_keys_cannot_decrypt_counts_each_attempt_and_dead_letters(world, receiver, settings):
    webhook(world, receiver.url)
    [delivery] = services.emit("decision.changed", project=world.project)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the old key was rotated away

    assert attempt_until_done(delivery) == DEAD_AFTER_MAX
    delivery.refresh_from_db()
    assert "cannot be decrypted" in delivery.error
    assert receiver.received == []


def test_a_test_delivery_with_a_secret_that_cannot_sign_answers_instead_of_raising(world, receiver):
    connector = webhook(world, receiver.url)
    Connector.objects.filter(pk=connector.pk).update(secret="whsec_not*base64")

    delivery = services.send_test(access=world.access(world.owner), connector=connector)

    assert (delivery.status, delivery.attempts) == ("pending", 1)
    page = api_client_for(world.owner).post(f"/api/v1/connectors/{connector.pk}/test/")
    assert page.status_code == 200 and page.json()["attempts"] == 1


def test_a_request_that_cannot_be_built_counts_each_attempt_and_dead_letters(world, receiver):
    connector, _ = services.connector_create(
        access=world.access(world.owner),
        organization=world.org,
        name="gh",
        kind="github",
        url=receiver.url.removesuffix("/hooks/readiness"),
        config={"repo": "acme/copilot"},
        secret="ghp_x",
        events=["decision.changed"],
    )
    Connector.objects.filter(pk=connector.pk).update(config={})  # edited in the database: no repo any more
    [delivery] = services.emit(
        "decision.changed",
        project=world.project,
        finding_key="decision",
        data={"from": "GO", "to": "NO-GO", "reasons": []},
    )

    assert attempt_until_done(delivery) == DEAD_AFTER_MAX
    delivery.refresh_from_db()
    assert delivery.error.startswith("could not send: KeyError")
    assert receiver.received == []


def test_a_claim_left_by_a_killed_worker_has_used_its_attempt(world, receiver, settings):
    webhook(world, receiver.url)
    [last, earlier] = [services.emit("decision.changed", project=world.project)[0] for _ in range(2)]
    long_ago = timezone.now() - timedelta(seconds=settings.READINESS_OUTBOUND_TIMEOUT_SECONDS * 4)
    # What a worker killed mid-send leaves: the claim, with the attempt it was making counted.
    Delivery.objects.filter(pk=last.pk).update(status="sending", attempts=MAX_ATTEMPTS, last_attempt_at=long_ago)
    Delivery.objects.filter(pk=earlier.pk).update(status="sending", attempts=1, last_attempt_at=long_ago)

    services.send_due()

    last.refresh_from_db()
    earlier.refresh_from_db()
    assert (last.status, last.attempts, last.next_attempt_at) == ("dead", MAX_ATTEMPTS, None)
    assert "worker" in last.error
    assert (earlier.status, earlier.attempts) == ("succeeded", 2)
    assert [r.headers["webhook-id"] for r in receiver.received] == [earlier.event_id]
