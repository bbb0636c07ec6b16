"""An attacker's pass over the newest surfaces: the "waiting for you" queue and its digest, the
readiness policy, run comparison, delivery history and the error pages.

Each test tries a way in and asserts it is shut: another organization, a stale membership, a
revoked token, a viewer or a member reaching for an admin's power, absurd input.
"""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from apps.checklists import services as checklists
from apps.checklists.models import ChecklistTemplate
from apps.core.models import AuditEvent
from apps.integrations import services as integrations
from apps.integrations.receiver import Receiver
from apps.orgs import services as org_services
from apps.orgs.models import Membership, TokenScope
from apps.probes import services as probes
from apps.reports.queue import queue_digest_send, queue_for
from tests.conftest import api_client_for
from tests.readiness_helpers import decided

QUEUE_API = "/api/v1/me/queue/"
POLICY_API = "/api/v1/readiness-policies/acme/"
DEFAULT_POLICY = ["security", "monitoring", "cost", "reliability"]


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    cache.clear()  # the API's rate limiter counts in the cache, which outlives a test
    yield
    cache.clear()


@pytest.fixture
def acme(world):
    """The owner asks for a waiver on a security item; the member holds the security function, so
    it waits on them. The member also has a personal read-write token."""
    Membership.objects.filter(user=world.member, organization=world.org).update(functions=["security"])
    checklists.ensure_shipped_templates(world.org)
    template = ChecklistTemplate.objects.filter(organization=world.org, key="security").order_by("-version")[0]
    checklist = checklists.checklist_add(access=world.access(world.owner), project=world.project, template=template)
    response = checklist.responses.order_by("pk").first()
    expires = timezone.localdate() + timedelta(days=9)
    world.waiver = checklists.waiver_request(
        access=world.access(world.owner), response=response, reason="later", risk_level="low", expires_on=expires
    )
    world.member_token, world.member_token_plaintext = org_services.personal_token_create(
        access=world.access(world.member), org=world.org, name="laptop", scope=TokenScope.READ_WRITE
    )
    return world


def _remove(world, user):
    membership = Membership.objects.get(user=user, organization=world.org)
    org_services.membership_remove(access=world.access(world.owner), membership=membership)


# --- tenancy: every new route is walked by the matrix --------------------------------------------


def test_every_route_added_today_is_walked_by_the_tenancy_matrix():
    from tests import test_tenancy_matrix as matrix

    walked = matrix.PUBLIC | set(matrix.HTML_ROUTES) | set(matrix.API_DETAIL) | matrix.API_LIST
    today = {
        "queue",
        "api:me-queue",
        "readiness-policy",
        "api:readinesspolicy-detail",
        "plan-compare",
        "delivery-detail",
        "delivery-redeliver",
        "api:delivery-detail",
        "api:delivery-redeliver",
    }
    assert today - walked == set()
    # Writes that need an admin are tried by a viewer, and the policy's page is among them.
    assert {"readiness-policy", "delivery-redeliver"} <= matrix.HTML_WRITES
    assert "readiness-policy" in matrix.HTML_ADMIN_POST


# --- the queue: never another organization's item -------------------------------------------------


def test_a_removed_member_waits_on_nothing_of_the_organization_they_left(acme, client):
    assert [i.kind for i in queue_for(access=acme.access(acme.member))][:1] == ["waiver"]
    _remove(acme, acme.member)

    assert queue_for(access=acme.access(acme.member)) == []
    client.force_login(acme.member)
    page = client.get("/queue/").content.decode()
    assert "Acme" not in page and "/o/acme/" not in page and "Waiting for you (" not in page
    body = api_client_for(acme.member).get(QUEUE_API).json()
    assert body["count"] == 0
    # Their personal token outlived the membership: it acts for nobody in Acme any more.
    reply = api_client_for(token=acme.member_token_plaintext).get(QUEUE_API)
    assert "acme" not in reply.content.decode().lower()


def test_a_revoked_personal_token_reads_no_queue(acme):
    org_services.api_token_revoke(access=acme.access(acme.member), token=acme.member_token)
    reply = api_client_for(token=acme.member_token_plaintext).get(QUEUE_API)
    assert reply.status_code == 401 and "acme" not in reply.content.decode().lower()


def test_a_member_downgraded_to_viewer_waits_for_nothing_even_through_an_old_token(acme):
    membership = Membership.objects.get(user=acme.member, organization=acme.org)
    org_services.membership_update(
        access=acme.access(acme.owner), membership=membership, role="viewer", functions=["security"]
    )
    assert api_client_for(acme.member).get(QUEUE_API).json()["count"] == 0
    assert api_client_for(token=acme.member_token_plaintext).get(QUEUE_API).json()["count"] == 0


def test_a_deactivated_person_is_neither_shown_nor_mailed_a_queue(
    acme, client, settings, django_capture_on_commit_callbacks
):
    client.force_login(acme.member)
    acme.member.is_active = False
    acme.member.save()
    assert client.get("/queue/").status_code == 302  # back to the login page
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        queue_digest_send()
    assert [m.to for m in mail.outbox] == []


def test_the_digest_mails_each_person_only_what_they_may_act_on(acme, django_capture_on_commit_callbacks):
    # In Globex the outsider owns a project whose blocker fails: theirs to fix, nobody else's.
    checklists.ensure_shipped_templates(acme.other_org)
    template = ChecklistTemplate.objects.filter(organization=acme.other_org, key="security").order_by("-version")[0]
    other = checklists.checklist_add(access=acme.access(acme.outsider), project=acme.other_project, template=template)
    blocker = other.responses.filter(item__severity="blocker").order_by("pk").first()
    checklists.response_answer(access=acme.access(acme.outsider), response=blocker, status="fail")
    # The viewer holds the function the waiver needs, but a viewer decides nothing.
    Membership.objects.filter(user=acme.viewer, organization=acme.org).update(functions=["security"])
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        queue_digest_send()
    bodies = {m.to[0]: m.body for m in mail.outbox}
    assert "viewer@x.test" not in bodies
    assert "Acme" in bodies["member@x.test"] and "Globex" not in bodies["member@x.test"]
    assert "Acme" not in bodies.get("outsider@x.test", "") and "Support Copilot" not in bodies.get(
        "outsider@x.test", ""
    )
    _remove(acme, acme.member)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        queue_digest_send()
    assert "member@x.test" not in [m.to[0] for m in mail.outbox]


def test_the_queue_api_caps_a_huge_page_size(acme):
    reply = api_client_for(acme.member).get(QUEUE_API, {"page_size": 10**9})
    assert reply.status_code == 200 and reply.json()["count"] >= 1
    reply = api_client_for(acme.member).get(QUEUE_API, {"page": 10**30})
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "not_found"


def test_names_with_markup_and_a_right_to_left_override_stay_text_on_the_queue_page(acme, client):
    acme.project.name = "</script><b>bold</b>\u202egnp.exe"
    acme.project.save(update_fields=["name"])
    client.force_login(acme.member)
    page = client.get("/queue/").content.decode()
    assert "</script><b>" not in page and "&lt;/script&gt;&lt;b&gt;bold" in page
    assert "<bdi>&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;\u202egnp.exe</bdi>" in page


# --- the readiness policy: only admins change it, and only to something sane ----------------------


@pytest.mark.parametrize("who", ["member", "viewer", "read_token", "read_write_token", "owners_personal_token"])
def test_nobody_but_an_admin_in_person_changes_the_readiness_policy(world, tokens, who):
    if who in ("member", "viewer"):
        client = api_client_for(getattr(world, who))
    elif who == "owners_personal_token":
        _, plaintext = org_services.personal_token_create(
            access=world.access(world.owner), org=world.org, name="owner's", scope=TokenScope.READ_WRITE
        )
        client = api_client_for(token=plaintext)
    else:
        client = api_client_for(token=tokens[who.removesuffix("_token")])
    for method in ("patch", "put"):
        reply = getattr(client, method)(POLICY_API, {"required_checklist_categories": []}, format="json")
        assert reply.status_code == 403, method
    world.org.refresh_from_db()
    assert world.org.required_checklist_categories == DEFAULT_POLICY
    assert not AuditEvent.objects.filter(action="organization.policy").exists()


def test_an_outsider_gets_404_reading_or_changing_another_organizations_policy(world):
    client = api_client_for(world.outsider)
    assert client.get(POLICY_API).status_code == 404
    assert client.patch(POLICY_API, {"required_checklist_categories": []}, format="json").status_code == 404
    world.org.refresh_from_db()
    assert world.org.required_checklist_categories == DEFAULT_POLICY


def test_an_empty_policy_never_makes_a_project_without_checklists_go_and_is_audited_and_shown(world, client):
    reply = api_client_for(world.owner).patch(POLICY_API, {"required_checklist_categories": []}, format="json")
    assert reply.status_code == 200 and reply.json()["required_checklist_categories"] == []
    decided(world.project)
    readiness = api_client_for(world.owner).get(f"/api/v1/projects/{world.project.pk}/readiness/").json()
    assert readiness["outcome"] == "NO-GO"
    assert any(r["code"] == "checklist_missing" for r in readiness["reasons"])
    event = AuditEvent.objects.get(action="organization.policy")
    assert event.changes["required_checklist_categories"] == [DEFAULT_POLICY, []]
    client.force_login(world.viewer)
    shown = client.get("/o/acme/readiness-policy/").content.decode()
    assert "none (but at least one checklist)" in shown


@pytest.mark.parametrize(
    "value",
    [
        [f"c{i}" for i in range(10_000)],  # ten thousand unknown names
        ["security"] * 10_000,  # ten thousand duplicates
        [1, 2, 3],
        [None],
        [{"a": 1}],
        [["security"]],
        "security",
        None,
        ["x" * 10_000],
    ],
    ids=[
        "10k-unknown",
        "10k-duplicates",
        "ints",
        "null-item",
        "object-item",
        "nested-list",
        "string",
        "null",
        "long-name",
    ],
)
def test_absurd_policies_are_refused_in_the_api_error_shape_with_a_short_answer(world, value):
    reply = api_client_for(world.owner).patch(POLICY_API, {"required_checklist_categories": value}, format="json")
    assert reply.status_code == 400
    assert set(reply.json()["error"]) == {"code", "message", "detail"}
    assert len(reply.content) < 4_000  # the refusal does not echo ten thousand names back
    world.org.refresh_from_db()
    assert world.org.required_checklist_categories == DEFAULT_POLICY


def test_deeply_nested_json_is_a_400_not_a_server_error(world):
    body = '{"required_checklist_categories": ' + "[" * 100_000 + "]" * 100_000 + "}"
    reply = api_client_for(world.owner).patch(POLICY_API, body, content_type="application/json")
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "parse_error"
    world.org.refresh_from_db()
    assert world.org.required_checklist_categories == DEFAULT_POLICY


def test_the_policy_page_isolates_the_organizations_name(world, client):
    world.org.name = "Acme\u202e<b>corp</b>"
    world.org.save(update_fields=["name"])
    client.force_login(world.viewer)
    page = client.get("/o/acme/readiness-policy/").content.decode()
    assert "<b>corp" not in page
    assert "<h1>Readiness policy of <bdi>Acme\u202e&lt;b&gt;corp&lt;/b&gt;</bdi></h1>" in page


# --- run comparison: odd ids are "not found", never a server error ---------------------------------


@pytest.fixture
def plan(world):
    profile = {"stages": [{"kind": "poisson", "rate": 2, "duration": 5}]}
    return probes.probe_plan_create(
        access=world.access(world.owner), endpoint=world.endpoint, name="p", profile=profile
    )


@pytest.mark.parametrize(
    "a,b",
    [
        ("1", "-1"),
        ("9" * 30, "1"),
        ("9" * 5000, "1"),
        ("\u00b2", "1"),
        ("\u0663", "1"),
        ("0", "0"),
        ("1", ""),
        ("1 ", "2"),
        ("0x1", "1"),
    ],
    ids=["negative", "huge", "5000-digits", "superscript-two", "arabic-three", "zeros", "one-missing", "space", "hex"],
)
def test_the_comparison_picker_answers_404_to_odd_ids(world, plan, client, a, b):
    client.force_login(world.owner)
    assert client.get(f"/o/acme/plans/{plan.pk}/compare/", {"a": a, "b": b}).status_code == 404


def test_the_comparison_picker_never_opens_another_organizations_runs(world, plan, client):
    other_plan = probes.probe_plan_create(
        access=world.access(world.outsider), endpoint=world.other_endpoint, name="o", profile=plan.profile
    )
    runs = [probes.probe_run_start(access=world.access(world.outsider), plan=other_plan) for _ in range(2)]
    client.force_login(world.outsider)
    query = {"a": runs[0].pk, "b": runs[1].pk}
    assert client.get(f"/o/globex/plans/{plan.pk}/compare/", query).status_code == 404
    client.force_login(world.owner)
    assert client.get(f"/o/acme/plans/{plan.pk}/compare/", query).status_code == 404


@pytest.mark.parametrize("other", ["-1", "0", "9" * 30, "9" * 5000, "abc", ""])
def test_the_compare_api_answers_odd_ids_in_its_error_shape(world, plan, other):
    run = probes.probe_run_start(access=world.access(world.owner), plan=plan)
    reply = api_client_for(world.owner).get(f"/api/v1/probe-runs/{run.pk}/compare/", {"with": other})
    assert reply.status_code in (400, 404) and set(reply.json()["error"]) == {"code", "message", "detail"}


# --- delivery history: no secret reaches a reader, and a viewer cannot redeliver -------------------

GH_TOKEN = "ghp_" + "S3cr3tT0kenThatMustNeverShow0123456789"


@pytest.fixture
def echoing_receiver():
    """A receiver (or a proxy in front of one) that quotes the request's credentials in its answer."""
    r = Receiver(secret="")
    r.replies = [(401, {}, f'{{"message": "Bad credentials", "sent": "Authorization: Bearer {GH_TOKEN}"}}'.encode())]
    server = r.start()
    yield r
    server.shutdown()
    server.server_close()


def test_a_receiver_echoing_the_credentials_does_not_put_them_in_the_delivery_history(world, echoing_receiver, client):
    base = echoing_receiver.url.removesuffix("/hooks/readiness")
    connector, _ = integrations.connector_create(
        access=world.access(world.owner),
        organization=world.org,
        name="gh",
        kind="github",
        url=base,
        config={"repo": "acme/copilot"},
        secret=GH_TOKEN,
        events=["decision.changed"],
    )
    delivery = integrations.send_test(access=world.access(world.owner), connector=connector)
    assert echoing_receiver.received and GH_TOKEN in echoing_receiver.received[0].headers["Authorization"]
    delivery.refresh_from_db()
    assert delivery.history.count() == 1
    for reader in (world.viewer, world.owner):
        api = api_client_for(reader).get(f"/api/v1/deliveries/{delivery.pk}/").content.decode()
        client.force_login(reader)
        page = client.get(f"/o/acme/deliveries/{delivery.pk}/").content.decode()
        assert "Bad credentials" in api and "Bad credentials" in page  # the answer is still shown
        assert GH_TOKEN not in api and GH_TOKEN not in page


def test_webhook_history_holds_no_signature_or_secret(world):
    receiver = Receiver(secret="whsec_" + "A" * 32)
    server = receiver.start()
    try:
        integrations.connector_create(
            access=world.access(world.owner),
            organization=world.org,
            name="hook",
            url=receiver.url,
            secret=receiver.secret,
            events=["decision.changed"],
        )
        [delivery] = integrations.emit("decision.changed", project=world.project, data={"to": "GO"})
        integrations.attempt(delivery.pk)
    finally:
        server.shutdown()
        server.server_close()
    body = api_client_for(world.viewer).get(f"/api/v1/deliveries/{delivery.pk}/").json()
    text = json.dumps(body)
    assert body["history"] and receiver.secret not in text
    signature = receiver.received[0].headers.get("Webhook-Signature") or receiver.received[0].headers.get(
        "webhook-signature", "-"
    )
    assert signature not in text
    assert set(body["history"][0]) == {"round", "number", "sent_at", "response_code", "error", "response_excerpt"}


def test_a_viewer_and_a_read_token_cannot_redeliver(world, tokens, client):
    integrations.connector_create(
        access=world.access(world.owner),
        organization=world.org,
        name="hook",
        url="http://127.0.0.1:9/hooks",
        events=["decision.changed"],
    )
    [delivery] = integrations.emit("decision.changed", project=world.project)
    for api in (api_client_for(world.viewer), api_client_for(token=tokens["read"])):
        assert api.post(f"/api/v1/deliveries/{delivery.pk}/redeliver/").status_code == 403
    client.force_login(world.viewer)
    assert client.post(f"/o/acme/deliveries/{delivery.pk}/redeliver/").status_code == 403
    delivery.refresh_from_db()
    assert delivery.redeliveries == 0
    assert not AuditEvent.objects.filter(action="delivery.redeliver").exists()


# --- error pages: the last visited organization, and the DEBUG 404 -----------------------------------


def test_a_removed_member_sees_neither_the_name_nor_the_navigation_of_the_organization_they_left(world, client):
    client.force_login(world.member)
    assert client.get("/o/acme/").status_code == 200  # remembered as the last visited organization
    _remove(world, world.member)
    for url in ("/o/acme/", "/no-such-page/", "/queue/", "/account/password/"):
        page = client.get(url).content.decode()
        assert "Acme" not in page and "/o/acme/" not in page, url


@pytest.mark.parametrize("url", ["/no-such-page/", "/queue/", "/o/acme/"])
def test_a_forged_session_naming_another_organization_shows_nothing_of_it(world, client, url):
    client.force_login(world.outsider)
    session = client.session
    session["current_org"] = "acme"
    session.save()
    page = client.get(url).content.decode()
    assert "Acme" not in page and "/o/acme/" not in page


@pytest.mark.parametrize("url", ["/api/v1/nope/", "/api/v1/projects/999999/", "/api/v1/probe-runs/1/compare/?with=x1"])
def test_with_debug_on_an_api_404_keeps_the_api_error_shape(world, settings, url):
    settings.DEBUG = True
    reply = api_client_for(world.owner).get(url)
    assert reply.status_code in (400, 404) and reply["Content-Type"].startswith("application/json")
    assert set(reply.json()["error"]) == {"code", "message", "detail"}


@pytest.mark.parametrize("url", ["/o/acme/nope/", "/o/globex/", "/o/acme/plans/999999/", "/nothing/here/"])
def test_with_debug_on_a_missing_page_lists_no_url_patterns(world, client, settings, url):
    settings.DEBUG = True
    client.force_login(world.owner)
    reply = client.get(url)
    page = reply.content.decode()
    assert reply.status_code == 404 and 'data-testid="error-404"' in page
    assert "URLconf" not in page and "readiness-policy/" not in page and "api/v1/" not in page.split("<main>")[1]
    assert "Globex" not in page


def test_comparing_a_run_with_itself_or_with_a_run_of_another_plan_is_no_server_error(world, plan, client):
    from apps.probes.models import ProbeRun

    runs = [probes.probe_run_start(access=world.access(world.owner), plan=plan) for _ in range(2)]
    ProbeRun.objects.filter(pk__in=[r.pk for r in runs]).update(status="succeeded")
    client.force_login(world.owner)
    same = client.get(f"/o/acme/plans/{plan.pk}/compare/", {"a": runs[0].pk, "b": runs[0].pk})
    assert same.status_code == 302
    assert client.get(same["Location"]).status_code == 200
    second = probes.probe_plan_create(
        access=world.access(world.owner), endpoint=world.endpoint, name="q", profile=plan.profile
    )
    assert client.get(f"/o/acme/plans/{second.pk}/compare/", {"a": runs[0].pk, "b": runs[1].pk}).status_code == 404
    reply = api_client_for(world.owner).get(f"/api/v1/probe-runs/{runs[0].pk}/compare/", {"with": runs[0].pk})
    assert reply.status_code == 200


def test_a_deactivated_persons_personal_token_reads_no_queue(acme):
    acme.member.is_active = False
    acme.member.save()
    reply = api_client_for(token=acme.member_token_plaintext).get(QUEUE_API)
    assert reply.status_code == 401 and "acme" not in reply.content.decode().lower()


def test_a_viewer_in_one_organization_waits_on_nothing_there_while_acting_in_another(acme):
    # The outsider is a viewer of Acme holding the function its waiver needs, and owns Globex.
    org_services.membership_add(
        access=acme.access(acme.owner), org=acme.org, username="outsider", role="viewer", functions=["security"]
    )
    items = queue_for(access=acme.access(acme.outsider))
    assert all(i.organization == acme.other_org for i in items)
    body = api_client_for(acme.outsider).get(QUEUE_API).json()
    assert all(row["organization"] == "globex" for row in body["results"])
