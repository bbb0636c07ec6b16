"""With DEBUG on, Django's error page lists every frame's local variables and the POST parameters.
A key being saved, or one revealed to be sent, must show there as stars.

Each test makes a request fail the way a misconfigured deployment does (an encryption key that
is not a Fernet key, a missing setting) at the moment a secret is in clear, and reads the
technical 500 page Django answers.
"""

import re

import pytest
from django.core.cache import cache
from django.test import Client
from django.views.debug import ExceptionReporter

from apps.integrations import services as integrations
from apps.integrations import signing
from tests.conftest import api_client_for


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    # The API rate limiter counts in the cache, which outlives a test: start every test at zero.
    cache.clear()
    yield
    cache.clear()


NOT_A_FERNET_KEY = "not-a-fernet-key"
STORED_KEY = "sk-acme-very-secret"  # the world's endpoint key
WHSEC = re.compile(r"whsec_[A-Za-z0-9+/]{20,}")


@pytest.fixture
def debug(settings):
    settings.DEBUG = True


def failing(client):
    client.raise_request_exception = False  # answer Django's 500 page instead of raising in the test
    return client


def error_page(response) -> str:
    assert response.status_code == 500, response.content[:500]
    text = response.content.decode()
    assert "Traceback" in text  # the technical page, with its frames
    return text


ENDPOINT_FORM = {
    "name": "primary",
    "base_url": "http://127.0.0.1:9/v1",
    "api_flavour": "chat",
    "model_name": "sim-llama-3-8b",
    "price_model": "self_hosted",
    "gpu_type": "NVIDIA L4",
    "gpus_per_replica": "1",
    "gpu_hourly_usd": "0.80",
    "min_replicas": "1",
    "max_replicas": "2",
    "request_id_header": "X-Request-Id",
}


def test_a_key_typed_into_the_endpoint_form_is_not_on_the_error_page(debug, settings, world):
    settings.FIELD_ENCRYPTION_KEYS = [NOT_A_FERNET_KEY]  # saving the key fails
    client = failing(Client())
    client.force_login(world.member)

    response = client.post(
        f"/o/acme/endpoints/{world.endpoint.pk}/edit/", {**ENDPOINT_FORM, "api_key": "sk-typed-into-the-form"}
    )

    text = error_page(response)
    assert "Fernet key" in text
    assert "sk-typed-into-the-form" not in text


def test_a_key_sent_to_the_endpoint_api_is_not_on_the_error_page(debug, settings, world):
    settings.FIELD_ENCRYPTION_KEYS = [NOT_A_FERNET_KEY]
    client = failing(api_client_for(world.member))

    created = client.post(
        "/api/v1/endpoints/",
        {"project": world.project.pk, **ENDPOINT_FORM, "name": "second", "api_key": "sk-posted-to-the-api"},
        format="json",
    )
    updated = client.patch(
        f"/api/v1/endpoints/{world.endpoint.pk}/", {"api_key": "sk-patched-over-the-api"}, format="json"
    )

    assert "sk-posted-to-the-api" not in error_page(created)
    assert "sk-patched-over-the-api" not in error_page(updated)


def test_the_stored_key_revealed_for_test_connection_is_not_on_the_error_page(debug, settings, world):
    del settings.READINESS_OUTBOUND_MAX_BYTES  # fails after the key is put in the request headers
    client = failing(Client())
    client.force_login(world.member)

    page = client.post(f"/o/acme/endpoints/{world.endpoint.pk}/test/")
    api = failing(api_client_for(world.member)).post(f"/api/v1/endpoints/{world.endpoint.pk}/test-connection/")

    for response in (page, api):
        text = error_page(response)
        assert "READINESS_OUTBOUND_MAX_BYTES" in text
        assert STORED_KEY not in text


def test_a_connector_secret_being_saved_is_not_on_the_error_page(debug, settings, world):
    settings.FIELD_ENCRYPTION_KEYS = [NOT_A_FERNET_KEY]
    secret = signing.new_secret()
    form = {
        "name": "hook",
        "kind": "webhook",
        "url": "http://127.0.0.1:8999/hooks",
        "config": "{}",
        "events": ["decision.changed"],
        "secret": secret,
        "active": "on",
    }
    client = failing(Client())
    client.force_login(world.owner)

    page = client.post("/o/acme/connectors/", form)
    api = failing(api_client_for(world.owner)).post(
        "/api/v1/connectors/", {**form, "organization": "acme", "config": {}}, format="json"
    )

    for response in (page, api):
        assert secret not in error_page(response)


def test_secrets_held_by_the_connector_services_are_not_in_an_error_report(settings, world, rf):
    connector = integrations.connector_create(  # [0]: this frame is in the report too; keep no secret here
        access=world.access(world.owner),
        organization=world.org,
        name="hook",
        kind="webhook",
        url="http://127.0.0.1:8999/hooks",
        events=["decision.changed"],
    )[0]
    settings.FIELD_ENCRYPTION_KEYS = [NOT_A_FERNET_KEY]
    owner = world.access(world.owner)
    calls = {
        "update with a new secret": lambda: integrations.connector_update(
            access=owner, connector=connector, secret=signing.new_secret()
        ),
        "rotate the inbound secret": lambda: integrations.inbound_secret_rotate(access=owner, connector=connector),
    }

    for what, call in calls.items():
        with pytest.raises(ValueError) as failure:
            call()
        report = ExceptionReporter(rf.post("/"), failure.type, failure.value, failure.tb)
        for text in (report.get_traceback_text(), report.get_traceback_html()):
            assert "Fernet key" in text, what
            assert not WHSEC.search(text), what
