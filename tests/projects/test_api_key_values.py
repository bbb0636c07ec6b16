"""An endpoint's API key goes into the head of every probe request, so a key that would break out
of its header line (CR, LF, other control characters) is refused when saved, over the API and on
the form, and nothing is saved."""

from decimal import Decimal

import pytest
from django.core.cache import cache
from django.urls import reverse

from apps.core.models import AuditEvent
from apps.projects.models import Endpoint
from tests.conftest import api_client_for, endpoint_fields

INJECTED = "sk-abc\r\nX-Evil: 1"
STORED = "sk-acme-very-secret"  # world.endpoint's key


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    cache.clear()
    yield
    cache.clear()


def endpoint_url(pk) -> str:
    return reverse("api:endpoint-detail", kwargs={"pk": pk})


def stored_key(endpoint) -> str:
    return Endpoint.objects.get(pk=endpoint.pk).api_key.reveal()


@pytest.mark.parametrize("key", [INJECTED, "sk-abc\nX-Evil: 1", "sk-abc\x01", "sk-\x7f", "sk-clé"])
def test_patching_an_endpoint_with_a_key_that_is_not_a_header_value_is_refused_and_the_old_key_kept(world, key):
    audit_before = AuditEvent.objects.count()

    response = api_client_for(world.owner).patch(
        endpoint_url(world.endpoint.pk), {"api_key": key, "model_name": "m2"}, format="json"
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert list(error["detail"]) == ["api_key"]
    assert "printable ASCII" in error["detail"]["api_key"][0]
    assert "X-Evil" not in response.content.decode()
    assert stored_key(world.endpoint) == STORED
    assert Endpoint.objects.get(pk=world.endpoint.pk).model_name == "sim-llama-3-8b"
    assert AuditEvent.objects.count() == audit_before


def test_creating_an_endpoint_with_a_crlf_in_its_key_is_refused_and_nothing_is_saved(world, tokens):
    fields = endpoint_fields(name="secondary", api_key=INJECTED)
    payload = {k: str(v) if isinstance(v, Decimal) else v for k, v in fields.items()}
    before = Endpoint.objects.count()

    response = api_client_for(token=tokens["read_write"]).post(
        reverse("api:endpoint-list"), {**payload, "project": world.project.pk}, format="json"
    )

    assert response.status_code == 400
    assert "line break" in response.json()["error"]["detail"]["api_key"][0]
    assert Endpoint.objects.count() == before


def test_a_clean_key_is_still_saved(world):
    response = api_client_for(world.owner).patch(
        endpoint_url(world.endpoint.pk), {"api_key": "sk-new_KEY.123+/="}, format="json"
    )

    assert response.status_code == 200
    assert stored_key(world.endpoint) == "sk-new_KEY.123+/="


def form_data(**overrides) -> dict:
    data = {
        "name": "primary",
        "base_url": "http://127.0.0.1:9/v1",
        "api_flavour": "chat",
        "model_name": "m-typed",
        "api_key": INJECTED,
        "price_model": "self_hosted",
        "gpu_type": "L4",
        "gpus_per_replica": 1,
        "gpu_hourly_usd": "1.25",
        "min_replicas": 1,
        "max_replicas": 3,
    }
    return {**data, **overrides}


def test_the_endpoint_form_shows_the_key_error_keeps_what_was_typed_and_saves_nothing(client, world):
    client.force_login(world.owner)

    response = client.post(
        reverse("endpoint-edit", kwargs={"org_slug": "acme", "pk": world.endpoint.pk}),
        form_data(gpu_type="H100 typed"),
    )

    assert response.status_code == 200
    text = response.content.decode()
    assert "character 7 is a line break (CR or LF)" in text
    assert 'value="m-typed"' in text and 'value="H100 typed"' in text and 'value="1.25"' in text
    assert "X-Evil" not in text  # the key itself is never sent back to the browser
    endpoint = Endpoint.objects.get(pk=world.endpoint.pk)
    assert endpoint.model_name == "sim-llama-3-8b" and endpoint.gpu_type == "NVIDIA L4"
    assert endpoint.api_key.reveal() == STORED


def test_the_new_endpoint_form_refuses_the_key_and_creates_nothing(client, world):
    client.force_login(world.owner)
    before = Endpoint.objects.count()

    response = client.post(
        reverse("endpoint-create", kwargs={"org_slug": "acme", "slug": world.project.slug}),
        form_data(name="secondary", api_key="sk-\x01abc"),
    )

    assert response.status_code == 200
    assert "character 4 is a control character" in response.content.decode()
    assert 'value="secondary"' in response.content.decode()
    assert Endpoint.objects.count() == before
