"""Connector secrets: ticketing tokens go in an Authorization header and a webhook secret is typed
on the receiving side too, so one with a line break or another control character is refused when
saved, through the service, the API and the page, and the stored secret stays."""

import pytest
from django.core.cache import cache

from apps.core.errors import ApplicationError
from apps.integrations import services
from apps.integrations.models import Connector
from tests.conftest import api_client_for

INJECTED = "tok-abc\r\nX-Evil: 1"
KINDS = [
    ("webhook", {}),
    ("jira", {"email": "ops@x.test", "project_key": "OPS"}),
    ("servicenow", {"table": "incident", "auth": "bearer"}),
    ("github", {"repo": "acme/copilot"}),
]


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    cache.clear()
    yield
    cache.clear()


def create(world, kind, config, secret):
    return services.connector_create(
        access=world.access(world.owner),
        organization=world.org,
        name=kind,
        kind=kind,
        url="http://127.0.0.1:9/x",
        config=config,
        secret=secret,
        events=["decision.changed"],
    )


@pytest.mark.parametrize("kind, config", KINDS)
@pytest.mark.parametrize("secret", [INJECTED, "tok\nabc", "tok\x00", "tok\x7f", "tök"])
def test_a_secret_that_is_not_a_header_value_is_refused_for_every_kind_and_nothing_is_saved(
    world, kind, config, secret
):
    with pytest.raises(ApplicationError) as exc:
        create(world, kind, config, secret)

    assert list(exc.value.detail) == ["secret"]
    assert "printable ASCII" in exc.value.detail["secret"][0]
    assert not world.org.connectors.exists()


def test_patching_a_connector_secret_with_a_crlf_is_refused_and_the_old_secret_kept(world):
    connector, _ = create(world, "github", {"repo": "acme/copilot"}, "ghp_old")
    client = api_client_for(world.owner)

    response = client.patch(f"/api/v1/connectors/{connector.pk}/", {"secret": INJECTED, "name": "gh"}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and list(error["detail"]) == ["secret"]
    connector = Connector.objects.get(pk=connector.pk)
    assert connector.secret.reveal() == "ghp_old" and connector.name == "github"


def test_creating_a_connector_over_the_api_with_a_crlf_secret_is_refused(world):
    body = {
        "organization": "acme",
        "name": "jira",
        "kind": "jira",
        "url": "http://127.0.0.1:9/x",
        "config": {"email": "ops@x.test", "project_key": "OPS"},
        "secret": INJECTED,
        "events": ["decision.changed"],
    }

    response = api_client_for(world.owner).post("/api/v1/connectors/", body, format="json")

    assert response.status_code == 400
    assert "line break" in response.json()["error"]["detail"]["secret"][0]
    assert not world.org.connectors.exists()


def test_the_connector_page_shows_the_secret_error_and_keeps_what_was_typed(client, world):
    connector, _ = create(world, "servicenow", {"table": "incident", "auth": "bearer"}, "old-bearer")
    client.force_login(world.owner)

    response = client.post(
        f"/o/acme/connectors/{connector.pk}/",
        {
            "name": "snow typed",
            "kind": "servicenow",
            "url": "http://127.0.0.1:9/x",
            "config": '{"table": "incident", "auth": "bearer"}',
            "events": ["decision.changed"],
            "secret": INJECTED,
            "active": "on",
        },
    )

    assert response.status_code == 200
    text = response.content.decode()
    assert "character 8 is a line break (CR or LF)" in text and 'value="snow typed"' in text
    assert "X-Evil" not in text
    connector = Connector.objects.get(pk=connector.pk)
    assert connector.secret.reveal() == "old-bearer" and connector.name == "servicenow"


def test_the_page_that_creates_a_connector_shows_its_inbound_secret_once(client, world):
    client.force_login(world.owner)
    form = {"name": "relay", "kind": "webhook", "url": "http://127.0.0.1:9/x", "events": ["decision.changed"]}
    page = client.post("/o/acme/connectors/", form).content.decode()
    connector = Connector.objects.get(organization=world.org, name="relay")
    inbound = connector.inbound_secret.reveal()
    assert inbound and f'<code class="secret">{inbound}</code>' in page
    assert f"/hooks/in/{connector.inbound_id}" in page  # where the other side calls back
    # Once: neither the list nor the connector's page repeats it.
    assert inbound not in client.get("/o/acme/connectors/").content.decode()
    assert inbound not in client.get(f"/o/acme/connectors/{connector.pk}/").content.decode()
