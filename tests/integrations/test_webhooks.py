"""Signed webhooks: signing, the exact request sent, retries with backoff, the dead letter,
redelivery, events from readiness, the API and the pages, tenancy."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.checklists import services as checklists
from apps.checklists.models import ChecklistTemplate
from apps.core.errors import ApplicationError
from apps.integrations import retry, services, signing
from apps.integrations.models import Delivery, DeliveryStatus
from apps.integrations.receiver import Receiver
from tests.conftest import api_client_for
from tests.readiness_helpers import decided, one_passing_checklist, run_until_evidence

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks spec's example key


# --- signing and retry rules (pure) --------------------------------------------------------------


def test_signature_matches_the_standard_webhooks_reference_vector():
    # From the Standard Webhooks spec test vectors.
    body = b'{"test": 2432232314}'
    signature = signing.sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    signing.verify(
        SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", f"v1,bad {signature}", body, now=1614265330 + 10
    )


@pytest.mark.parametrize(
    "bad",
    [dict(body=b'{"test": 1}'), dict(now=1614265330 + 301), dict(signature="v1,AAAA")],
    ids=["other-body", "stale-timestamp", "wrong-signature"],
)
def test_a_changed_body_a_stale_timestamp_or_a_wrong_signature_is_refused(bad):
    body = b'{"test": 2432232314}'
    signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="  # the reference vector's
    with pytest.raises(signing.SignatureError):
        signing.verify(
            SECRET,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            bad.get("signature", signature),
            bad.get("body", body),
            now=bad.get("now", 1614265330),
        )


@pytest.mark.parametrize(
    "code, outcome",
    [
        (200, "success"),
        (204, "success"),
        (None, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
        (400, "give_up"),
        (401, "give_up"),
        (404, "give_up"),
        (410, "give_up"),
    ],
)
def test_which_answers_are_retried(code, outcome):
    assert retry.classify(code) == outcome


def test_backoff_doubles_honours_retry_after_and_is_capped():
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert [retry.next_delay(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert retry.next_delay(20) == 3600
    assert retry.next_delay(1, retry_after=120) == 120
    assert retry.next_delay(3, retry_after=5) == 120  # never sooner than the backoff
    assert retry.next_delay(1, retry_after=86400) == 3600
    assert retry.retry_after_seconds("Fri, 27 Nov 2026 12:02:00 GMT", now=now) == 120
    assert retry.retry_after_seconds("soon", now=now) is None


# --- the exact request, retries, dead letter -----------------------------------------------------


@pytest.fixture
def receiver():
    r = Receiver(secret=SECRET)
    server = r.start()
    yield r
    server.shutdown()


def connector_for(world, url, **fields):
    connector, _ = services.connector_create(
        access=world.access(world.owner),
        organization=world.org,
        name=fields.pop("name", "hooks"),
        url=url,
        secret=SECRET,
        events=fields.pop("events", ["decision.changed", "item.blocker_failed"]),
        **fields,
    )
    return connector


def test_a_delivery_is_a_signed_post_of_the_exact_payload(world, receiver):
    connector = connector_for(world, receiver.url)
    [delivery] = services.emit(
        "decision.changed", project=world.project, finding_key="k", data={"from": "NO-GO", "to": "GO"}
    )
    services.attempt(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("succeeded", 1, 200)
    [request] = receiver.received
    assert request.method == "POST" and request.path == "/hooks/readiness"
    assert request.verified is True
    assert request.headers["webhook-id"] == delivery.event_id and request.headers["Content-Type"] == "application/json"
    body = request.json()
    assert body["type"] == "decision.changed" and body["organization"] == "acme"
    assert body["project"]["name"] == "Support Copilot" and body["project"]["url"].endswith("/readiness/")
    assert body["data"] == {"from": "NO-GO", "to": "GO"}
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 5
    assert connector.deliveries.count() == 1


def test_transient_failures_back_off_then_dead_letter_and_a_4xx_is_not_retried(world, receiver, settings):
    settings.READINESS_DELIVERY_MAX_ATTEMPTS = 3
    receiver.replies = [(503, {}, b"busy"), (429, {"Retry-After": "90"}, b"slow down"), (500, {}, b"x" * 5000)]
    connector_for(world, receiver.url)
    [delivery] = services.emit("decision.changed", project=world.project)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        services.attempt(delivery.pk)
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        assert delivery.next_attempt_at == start + timedelta(seconds=30)
        assert services.attempt(delivery.pk) is None  # not due yet: nothing is sent
        clock.shift(31)
        assert services.send_due() == 1
        delivery.refresh_from_db()
        assert delivery.next_attempt_at == timezone.now() + timedelta(seconds=90)  # Retry-After beats 60 s
        clock.shift(91)
        services.send_due()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("dead", 3, 500)
    assert len(delivery.response_excerpt) == services.EXCERPT_BYTES  # capped
    assert len(receiver.received) == 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # one id across retries
    # A manual redelivery gets a fresh set of attempts and succeeds.
    receiver.replies = [(200, {}, b"ok")]
    receiver.received.clear()
    services.redeliver(access=world.access(world.owner), delivery=delivery)
    services.attempt(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)
    # A 4xx other than 429 is a permanent refusal.
    receiver.replies = [(410, {}, b"gone")]
    [second] = services.emit("decision.changed", project=world.project)
    services.attempt(second.pk)
    second.refresh_from_db()
    assert (second.status, second.attempts, second.next_attempt_at) == ("failed", 1, None)


def test_an_unreachable_or_forbidden_url_is_recorded_not_raised(world, settings):
    connector = connector_for(world, "http://127.0.0.1:9/hooks")  # nothing listens on port 9
    [delivery] = services.emit("decision.changed", project=world.project)
    services.attempt(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.response_code is None and delivery.error
    settings.READINESS_ALLOW_PRIVATE_ENDPOINTS = False
    connector.refresh_from_db()
    delivery2 = services.emit("decision.changed", project=world.project)[0]
    services.attempt(delivery2.pk)
    delivery2.refresh_from_db()
    assert delivery2.error.startswith("refused:")


def test_a_worker_killed_mid_send_leaves_a_claim_that_is_handed_back(world, receiver):
    connector_for(world, receiver.url)
    [delivery] = services.emit("decision.changed", project=world.project)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.SENDING, last_attempt_at=timezone.now() - timedelta(minutes=5)
    )
    assert services.send_due() == 1
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and len(receiver.received) == 1


# --- events from readiness ------------------------------------------------------------------------


def test_readiness_changes_emit_events_only_to_subscribed_connectors_in_scope(world, receiver):
    everything = connector_for(world, receiver.url, name="all", events=services.SUBSCRIBABLE)
    other_project = connector_for(world, receiver.url, name="other", events=services.SUBSCRIBABLE)
    from apps.projects import services as projects

    elsewhere = projects.project_create(access=world.access(world.owner), organization=world.org, name="Elsewhere")
    services.connector_update(access=world.access(world.owner), connector=other_project, project=elsewhere)
    connector_for(world, receiver.url, name="gates-only", events=["signoff.rejected"])
    checklists.ensure_shipped_templates(world.org)
    template = ChecklistTemplate.objects.get(organization=world.org, key="security")
    checklist = checklists.checklist_add(access=world.access(world.owner), project=world.project, template=template)
    item = checklists.current_responses(checklist).get(item__key="sec.sensitive-data")
    checklists.response_answer(access=world.access(world.owner), response=item, status="fail", evidence_text="PII")
    checklists.response_answer(access=world.access(world.owner), response=item, status="pass", evidence_text="fixed")
    events = list(Delivery.objects.order_by("pk").values_list("connector__name", "event", "finding_key"))
    key = f"item:{checklist.pk}:sec.sensitive-data"
    assert events == [("all", "item.blocker_failed", key), ("all", "item.blocker_passed", key)]
    assert not other_project.deliveries.exists()  # scoped to another project
    # Another organization's connector never hears of this org's project.
    services.connector_create(
        access=world.access(world.outsider),
        organization=world.other_org,
        name="theirs",
        url=receiver.url,
        events=services.SUBSCRIBABLE,
    )
    services.emit("decision.changed", project=world.project)
    assert not Delivery.objects.filter(connector__organization=world.other_org).exists()
    assert everything.deliveries.count() == 3


def test_a_decision_change_is_delivered_after_commit(world, receiver, simulator, django_capture_on_commit_callbacks):
    from apps.probes import services as probes
    from apps.projects import services as projects
    from apps.signoffs.services import policy_update, signoff_decide

    owner = world.access(world.owner)
    connector_for(world, receiver.url)
    policy_update(access=owner, org=world.org, gates=[{"function": "engineering", "required": 1}])
    one_passing_checklist(access=owner, organization=world.org, project=world.project)
    endpoint = projects.endpoint_update(access=owner, endpoint=world.endpoint, base_url=simulator.base_url)
    plan = probes.probe_plan_create(
        access=owner,
        endpoint=endpoint,
        name="load",
        max_tokens=8,
        profile={"stages": [{"kind": "poisson", "rate": 10, "duration": 2}]},
        slo={"ttft_p95_ms": 5000},
    )
    run_until_evidence(access=owner, plan=plan)
    with django_capture_on_commit_callbacks(execute=True):
        signoff_decide(
            access=world.access(world.member), project=world.project, function="engineering", verdict="approve"
        )
        decided(world.project)  # the queued re-evaluation: the decision changes, its delivery is queued
    services.send_due()  # what the worker (first attempt) or beat (retries) does
    [request] = [r for r in receiver.received if r.json()["type"] == "decision.changed"]
    assert request.json()["data"]["from"] == "NO-GO" and request.json()["data"]["to"] == "GO"
    assert request.json()["data"]["reasons"] == [] and request.verified


# --- connectors: validation, API, pages, tenancy --------------------------------------------------


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"url": "ftp://x"}, "url"),
        ({"events": []}, "events"),
        ({"events": ["nope"]}, "events"),
        ({"name": " "}, "name"),
        ({"config": []}, "config"),
    ],
)
def test_a_bad_connector_names_the_field_and_saves_nothing(world, fields, field):
    base = {"name": "hooks", "url": "http://127.0.0.1:9/x", "events": ["decision.changed"]}
    with pytest.raises(ApplicationError) as exc:
        services.connector_create(access=world.access(world.owner), organization=world.org, **{**base, **fields})
    assert field in exc.value.detail
    assert not world.org.connectors.exists()


def test_only_admins_manage_connectors_and_the_secret_is_shown_once(world, tokens, receiver):
    client = api_client_for(world.owner)
    body = {"organization": "acme", "name": "ci", "url": receiver.url, "events": ["decision.changed"]}
    created = client.post("/api/v1/connectors/", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["signing_secret"].startswith("whsec_") and created.json()["has_secret"]
    detail = client.get(f"/api/v1/connectors/{created.json()['id']}/").json()
    assert "signing_secret" not in detail and "secret" not in detail
    assert created.json()["signing_secret"] not in json.dumps(detail)
    assert (
        api_client_for(world.member).post("/api/v1/connectors/", {**body, "name": "m"}, format="json").status_code
        == 403
    )
    token = api_client_for(token=tokens["read_write"])
    assert token.post("/api/v1/connectors/", {**body, "name": "t"}, format="json").status_code == 403
    test = client.post(f"/api/v1/connectors/{created.json()['id']}/test/")
    assert test.status_code == 200 and test.json()["status"] == "succeeded"
    receiver.secret = created.json()["signing_secret"]
    assert receiver.received[-1].json()["type"] == "test"
    deliveries = client.get("/api/v1/deliveries/?event=test").json()
    assert deliveries["count"] == 1
    redo = client.post(f"/api/v1/deliveries/{test.json()['id']}/redeliver/")
    assert redo.status_code == 200 and redo.json()["status"] == "pending"


def test_the_pages_create_a_webhook_show_deliveries_and_send_a_test(client, world, receiver):
    client.force_login(world.owner)
    page = client.post(
        "/o/acme/connectors/", {"name": "pager", "url": receiver.url, "events": ["decision.changed"], "active": "on"}
    )
    assert page.status_code == 200 and "whsec_" in page.content.decode()
    connector = world.org.connectors.get()
    reply = client.post(f"/o/acme/connectors/{connector.pk}/test/", follow=True)
    assert "Test delivered: HTTP 200" in reply.content.decode()
    listing = client.get(f"/o/acme/connectors/{connector.pk}/?status=succeeded").content.decode()
    assert "test" in listing and "HTTP 200" in listing
    delivery = connector.deliveries.get()
    assert "webhook-id" in client.get(f"/o/acme/deliveries/{delivery.pk}/").content.decode()
    client.force_login(world.member)
    assert client.post("/o/acme/connectors/", {"name": "x"}).status_code == 403
    client.force_login(world.outsider)
    assert client.get(f"/o/acme/deliveries/{delivery.pk}/").status_code == 404
    assert client.get(f"/o/globex/deliveries/{delivery.pk}/").status_code == 404


def test_the_deliveries_pager_keeps_the_filters(client, world, receiver):
    from apps.integrations.models import Delivery

    client.force_login(world.owner)
    client.post(
        "/o/acme/connectors/", {"name": "hook", "url": receiver.url, "events": ["decision.changed"], "active": "on"}
    )
    connector = world.org.connectors.get()
    Delivery.objects.bulk_create(
        [Delivery(connector=connector, event="test", event_id=f"msg_{i}", payload={}, status="dead") for i in range(30)]
        + [Delivery(connector=connector, event="test", event_id="msg_ok", payload={}, status="succeeded")]
    )
    first = client.get(f"/o/acme/connectors/{connector.pk}/?status=dead&event=test").content.decode()
    assert "Page 1 of 2" in first and "?status=dead&amp;event=test&amp;page=2" in first
    second = client.get(f"/o/acme/connectors/{connector.pk}/?status=dead&event=test&page=2").content.decode()
    assert "Page 2 of 2" in second and "Succeeded" not in second.split('data-testid="deliveries"')[1]
