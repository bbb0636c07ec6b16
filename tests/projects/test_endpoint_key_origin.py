"""A stored endpoint key goes only to the origin (scheme, host, port) it was entered for.

Otherwise a member could point the endpoint at their own server and press "test connection" (or
run the compatibility check) to collect the key. A base_url on another origin drops the stored
key unless the same update brings one; the audit trail, the API and the page say so. Local
servers on 127.0.0.1 play the old and the new server and record the headers they get.
"""

import pytest
from django.core.cache import cache

from apps.core.models import AuditEvent
from apps.integrations.receiver import Receiver
from apps.net.netguard import same_origin
from apps.projects import services
from apps.projects.models import Endpoint
from tests.conftest import api_client_for


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    # The API rate limiter counts in the cache, which outlives a test: start every test at zero.
    cache.clear()
    yield
    cache.clear()


STORED_KEY = "sk-acme-very-secret"  # the world's endpoint key
ENDPOINT_FORM = {
    "name": "primary",
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
MODELS = (200, {"Content-Type": "application/json"}, b'{"object": "list", "data": [{"id": "sim-llama-3-8b"}]}')


@pytest.fixture
def servers():
    """Two recording servers: two origins on 127.0.0.1 (different ports)."""
    started = []

    def start() -> Receiver:
        r = Receiver(replies=[MODELS])
        started.append(r.start())
        r.base = r.url.removesuffix("/hooks/readiness") + "/v1"
        return r

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def endpoint_url(pk: int) -> str:
    return f"/api/v1/endpoints/{pk}/"


def authorizations(server: Receiver) -> list[str | None]:
    return [r.headers.get("Authorization") for r in server.received]


@pytest.mark.parametrize(
    "a, b, same",
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v2/", True),
        ("https://API.example.com/v1", "https://api.example.com:443/other", True),
        ("http://example.com/v1", "http://example.com:80", True),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8001/v1", False),
        ("http://api.example.com/v1", "https://api.example.com/v1", False),
        ("https://api.example.com/v1", "https://api.example.com.evil.test/v1", False),
        ("https://api.example.com/v1", "https://evil.test/api.example.com/v1", False),
        ("https://api.example.com/v1", "not a url", False),
    ],
)
def test_same_origin_compares_scheme_host_and_port_only(a, b, same):
    assert same_origin(a, b) is same
    assert same_origin(b, a) is same


def test_a_member_pointing_the_endpoint_elsewhere_drops_the_key_and_the_api_says_so(world):
    client = api_client_for(world.member)

    response = client.patch(endpoint_url(world.endpoint.pk), {"base_url": "http://127.0.0.1:8999/v1"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["has_api_key"] is False and body["api_key_dropped"] is True
    assert "another origin" in body["notice"]
    assert Endpoint.objects.get(pk=world.endpoint.pk).api_key is None
    event = AuditEvent.objects.get(action="endpoint.update", object_id=str(world.endpoint.pk))
    assert event.changes["api_key"] == ["(set)", "(dropped: origin changed)"]
    assert event.changes["base_url"] == ["http://127.0.0.1:9/v1", "http://127.0.0.1:8999/v1"]


def test_a_key_given_with_the_new_origin_is_kept(world):
    client = api_client_for(world.member)

    response = client.patch(
        endpoint_url(world.endpoint.pk),
        {"base_url": "http://127.0.0.1:8999/v1", "api_key": "sk-new-origin"},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["has_api_key"] is True and response.json()["api_key_dropped"] is False
    assert "notice" not in response.json()
    assert Endpoint.objects.get(pk=world.endpoint.pk).api_key.reveal() == "sk-new-origin"
    event = AuditEvent.objects.get(action="endpoint.update", object_id=str(world.endpoint.pk))
    assert event.changes["api_key"] == ["(set)", "(changed)"]


def test_another_path_on_the_same_origin_keeps_the_key(world):
    client = api_client_for(world.member)

    response = client.patch(
        endpoint_url(world.endpoint.pk), {"base_url": "HTTP://127.0.0.1:9/openai/v1"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["has_api_key"] is True and response.json()["api_key_dropped"] is False
    assert Endpoint.objects.get(pk=world.endpoint.pk).api_key.reveal() == STORED_KEY
    event = AuditEvent.objects.get(action="endpoint.update", object_id=str(world.endpoint.pk))
    assert "api_key" not in event.changes


def test_an_update_that_is_refused_keeps_the_key(world):
    response = api_client_for(world.member).patch(
        endpoint_url(world.endpoint.pk), {"base_url": "http://127.0.0.1:8999/v1", "model_name": ""}, format="json"
    )

    assert response.status_code == 400
    endpoint = Endpoint.objects.get(pk=world.endpoint.pk)
    assert endpoint.api_key.reveal() == STORED_KEY and endpoint.base_url == "http://127.0.0.1:9/v1"


def test_the_endpoint_form_drops_the_key_on_a_new_origin_and_the_page_says_so(client, world):
    client.force_login(world.member)
    form = {**ENDPOINT_FORM, "base_url": "http://127.0.0.1:8999/v1", "api_key": ""}

    response = client.post(f"/o/acme/endpoints/{world.endpoint.pk}/edit/", form, follow=True)

    assert response.status_code == 200
    assert "another origin" in response.content.decode()
    assert Endpoint.objects.get(pk=world.endpoint.pk).api_key is None
    event = AuditEvent.objects.get(action="endpoint.update", object_id=str(world.endpoint.pk))
    assert event.changes["api_key"] == ["(set)", "(dropped: origin changed)"]


def test_the_audit_page_and_api_say_the_key_was_dropped(client, world):
    services.endpoint_update(
        access=world.access(world.member), endpoint=world.endpoint, base_url="http://127.0.0.1:8999/v1"
    )

    client.force_login(world.viewer)
    page = client.get("/o/acme/audit/?action=endpoint.update").content.decode()
    api = api_client_for(world.viewer).get("/api/v1/audit-events/?action=endpoint.update").json()

    assert "(set) → (dropped: origin changed)" in page
    assert api["results"][0]["changes"]["api_key"] == ["(set)", "(dropped: origin changed)"]


def test_test_connection_on_a_new_origin_never_sends_the_old_key(world, servers):
    old, new = servers(), servers()
    owner = world.access(world.owner)
    services.endpoint_update(access=owner, endpoint=world.endpoint, base_url=old.base, api_key=STORED_KEY)
    client = api_client_for(world.member)
    assert client.post(f"{endpoint_url(world.endpoint.pk)}test-connection/").json()["ok"] is True
    assert authorizations(old) == [f"Bearer {STORED_KEY}"]  # the key goes where it was entered

    assert client.patch(endpoint_url(world.endpoint.pk), {"base_url": new.base}, format="json").status_code == 200
    result = client.post(f"{endpoint_url(world.endpoint.pk)}test-connection/").json()
    client.post(f"/api/v1/endpoints/{world.endpoint.pk}/compatibility/")

    assert result["url"] == new.base + "/models"
    assert len(new.received) >= 2  # test connection and the compatibility check both reached it
    assert authorizations(new) == [None] * len(new.received)
    assert not any(STORED_KEY.encode() in r.body or STORED_KEY in str(r.headers) for r in new.received)


def test_the_test_connection_button_on_the_page_never_sends_the_old_key(client, world, servers):
    new = servers()
    client.force_login(world.member)
    form = {**ENDPOINT_FORM, "base_url": new.base}
    assert client.post(f"/o/acme/endpoints/{world.endpoint.pk}/edit/", form).status_code == 302

    client.post(f"/o/acme/endpoints/{world.endpoint.pk}/test/")

    assert authorizations(new) == [None]


def test_a_key_reentered_for_the_new_origin_is_sent_there(world, servers):
    new = servers()
    client = api_client_for(world.member)
    client.patch(
        endpoint_url(world.endpoint.pk), {"base_url": new.base, "api_key": "sk-for-the-new-server"}, format="json"
    )

    client.post(f"{endpoint_url(world.endpoint.pk)}test-connection/")

    assert authorizations(new) == ["Bearer sk-for-the-new-server"]


def test_a_run_started_before_the_key_was_reentered_elsewhere_does_not_send_it_to_the_runs_url(world, servers):
    from apps.probes import services as probes
    from apps.probes.execution import shard_execute

    attacker, real = servers(), servers()
    member, owner = world.access(world.member), world.access(world.owner)
    services.endpoint_update(access=member, endpoint=world.endpoint, base_url=attacker.base)  # the key is dropped
    plan = probes.probe_plan_create(
        access=member,
        endpoint=world.endpoint,
        name="p",
        max_tokens=8,
        profile={"stages": [{"kind": "poisson", "rate": 1, "duration": 1}]},
    )
    run = probes.probe_run_start(access=member, plan=plan)  # its URL is fixed now; its shard waits in the queue
    # The owner notices, points the endpoint back at the real server and enters the key for it.
    services.endpoint_update(access=owner, endpoint=world.endpoint, base_url=real.base, api_key="sk-for-the-real-one")

    shard_execute(shard_id=run.shards.get().pk, org_id=world.org.pk)

    assert attacker.received, "the run went to the URL it started with"
    assert authorizations(attacker) == [None] * len(attacker.received)
