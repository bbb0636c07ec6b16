""" "Waiting for you": what each person can act on, on the page, in the top bar's badge and over the API."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.checklists import services as checklists
from apps.checklists.models import ChecklistTemplate, Severity
from apps.orgs import services as org_services
from apps.orgs.access import Access
from apps.orgs.models import Membership, TokenScope
from apps.projects import services as project_services
from apps.reports.queue import queue_for
from apps.signoffs import services as signoffs
from tests.browser import log_in
from tests.conftest import api_client_for
from tests.readiness_helpers import decided

QUEUE_API = "/api/v1/me/queue/"


def _checklist(access, project, key="security"):
    checklists.ensure_shipped_templates(project.organization)
    template = ChecklistTemplate.objects.filter(organization=project.organization, key=key).order_by("-version")[0]
    return checklists.checklist_add(access=access, project=project, template=template)


def _waiver(access, checklist):
    response = checklist.responses.select_related("item").order_by("pk").first()
    expires = timezone.localdate() + timedelta(days=30)
    return checklists.waiver_request(
        access=access, response=response, reason="after launch", risk_level="low", expires_on=expires
    )


@pytest.fixture
def acme(world):
    """In Acme: the owner asks for a waiver on a security item; the member holds security and engineering."""
    Membership.objects.filter(user=world.member, organization=world.org).update(functions=["engineering", "security"])
    checklist = _checklist(world.access(world.owner), world.project)
    world.waiver = _waiver(world.access(world.owner), checklist)
    world.checklist = checklist
    return world


def _kinds(access):
    return sorted((i.kind, i.title) for i in queue_for(access=access))


def test_member_holding_the_function_waits_on_the_owners_waiver_and_their_gates(acme):
    items = queue_for(access=acme.access(acme.member))
    waiver_title = f"Waive “{acme.waiver.response.item.title}”"
    assert [(i.kind, i.title) for i in items] == [
        ("waiver", waiver_title),
        ("gate", "Sign the security gate"),
        ("gate", "Sign the engineering gate"),
    ]
    waiver = items[0]
    assert waiver.url == f"/o/acme/checklists/{acme.checklist.pk}/#item-{acme.waiver.response.item.key}"
    assert "owner asks for a low-risk waiver" in waiver.detail
    assert items[1].url == "/o/acme/projects/support-copilot/readiness/#gate-security"


def test_requester_never_waits_on_their_own_waiver(acme):
    Membership.objects.filter(user=acme.owner, organization=acme.org).update(functions=["security"])
    assert [i for i in queue_for(access=acme.access(acme.owner)) if i.kind == "waiver"] == []


def test_owner_is_not_asked_to_sign_their_own_projects_gates_unless_the_policy_allows_it(acme):
    Membership.objects.filter(user=acme.owner, organization=acme.org).update(functions=["legal"])
    assert [i for i in queue_for(access=acme.access(acme.owner)) if i.kind == "gate"] == []
    signoffs.policy_update(access=acme.access(acme.owner), org=acme.org, allow_owner_approval=True)
    assert [i.title for i in queue_for(access=acme.access(acme.owner)) if i.kind == "gate"] == ["Sign the legal gate"]


def test_a_decided_gate_leaves_the_queue_and_its_condition_becomes_a_follow_up_for_the_approver(acme):
    member = acme.access(acme.member)
    signoffs.signoff_decide(
        access=member,
        project=acme.project,
        function="engineering",
        verdict="approve_with_conditions",
        conditions=["page the on-call on 5xx"],
    )
    kinds = _kinds(member)
    # Security is still pending, but one person cannot clear two gates (the default policy): not theirs now.
    assert ("gate", "Sign the engineering gate") not in kinds
    assert ("gate", "Sign the security gate") not in kinds
    assert ("follow_up", "page the on-call on 5xx") in kinds
    assert [i for i in queue_for(access=acme.access(acme.owner)) if i.kind == "follow_up"] == []

    follow_up = acme.project.follow_ups.get()
    signoffs.follow_up_close(access=member, follow_up=follow_up, note="done")
    assert ("follow_up", "page the on-call on 5xx") not in _kinds(member)


def test_deciding_the_waiver_takes_it_off_the_queue(acme):
    checklists.waiver_decide(access=acme.access(acme.member), waiver=acme.waiver, approve=True)
    assert [i for i in queue_for(access=acme.access(acme.member)) if i.kind == "waiver"] == []


def test_a_stale_approval_puts_the_gate_back_in_the_approvers_queue(acme):
    member = acme.access(acme.member)
    decision = signoffs.signoff_decide(access=member, project=acme.project, function="engineering", verdict="approve")
    decision.stale_at, decision.stale_reason = timezone.now(), "latency got worse"
    decision.save()
    gate = next(i for i in queue_for(access=member) if i.title == "Sign the engineering gate")
    assert "stale" in gate.detail


def test_owner_waits_on_the_failing_blockers_of_their_project(acme):
    owner = acme.access(acme.owner)
    blocker = acme.checklist.responses.filter(item__severity=Severity.BLOCKER).exclude(pk=acme.waiver.response_id)
    blocker = blocker.select_related("item").first()
    checklists.response_answer(access=owner, response=blocker, status="fail")
    decided(acme.project)  # the queue lists the failing blockers of the decision as last evaluated
    items = [i for i in queue_for(access=owner) if i.kind == "blocker"]
    assert [i.title for i in items] == [f"blocker “{blocker.item.title}” failed"]
    assert items[0].url.endswith(f"#item-{blocker.item.key}")
    assert [i for i in queue_for(access=acme.access(acme.member)) if i.kind == "blocker"] == []


def test_viewer_holding_a_function_waits_for_nothing_anywhere(acme, client):
    Membership.objects.filter(user=acme.viewer).update(functions=["security", "engineering"])
    assert queue_for(access=acme.access(acme.viewer)) == []
    client.force_login(acme.viewer)
    page = client.get(reverse("dashboard", args=["acme"])).content.decode()
    assert 'data-testid="queue-badge"' not in page
    assert "Nothing is waiting for you." in client.get("/queue/").content.decode()
    assert api_client_for(acme.viewer).get(QUEUE_API).json()["count"] == 0


def test_tokens_wait_only_as_their_person_and_only_when_they_may_write(acme):
    owner = acme.access(acme.owner)
    _, org_token = org_services.api_token_create(access=owner, org=acme.org, name="ci", scope=TokenScope.READ_WRITE)
    assert api_client_for(token=org_token).get(QUEUE_API).json()["count"] == 0  # an org token is nobody
    member = acme.access(acme.member)
    _, personal = org_services.personal_token_create(access=member, org=acme.org, name="mine", scope="read_write")
    assert api_client_for(token=personal).get(QUEUE_API).json()["count"] == 3
    _, read_only = org_services.personal_token_create(access=member, org=acme.org, name="ro", scope="read")
    assert api_client_for(token=read_only).get(QUEUE_API).json()["count"] == 0


def test_api_lists_the_queue_paginated_with_absolute_links(acme):
    body = api_client_for(acme.member).get(QUEUE_API).json()
    assert body["count"] == 3 and body["next"] is None
    first = body["results"][0]
    assert first["kind"] == "waiver" and first["organization"] == "acme"
    assert first["project"] == acme.project.pk and first["object_id"] == acme.waiver.pk
    assert first["url"].startswith("http://testserver/o/acme/checklists/")
    page = api_client_for(acme.member).get(QUEUE_API + "?page_size=1&page=2").json()
    assert [r["kind"] for r in page["results"]] == ["gate"]


def test_anonymous_is_sent_to_login_from_the_queue_page(client, acme):
    response = client.get("/queue/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert api_client_for().get(QUEUE_API).status_code == 401


def _main(response) -> str:
    """The page without its top bar (whose org switcher rightly names every org of the person)."""
    return response.content.decode().split("<main>", 1)[1]


def _globex_work(world):
    """In Globex, work for its owner (the outsider): pending gates and a member's waiver to decide."""
    Membership.objects.filter(user=world.outsider).update(functions=["engineering", "security"])
    outsider = world.access(world.outsider)
    org_services.membership_add(access=outsider, org=world.other_org, username="member", role="member", functions=[])
    checklist = _checklist(outsider, world.other_project)
    return _waiver(world.access(world.member), checklist)


def test_nothing_of_another_organization_leaks_into_the_queue(acme, client):
    globex_waiver = _globex_work(acme)
    # The member belongs to both, but holds no function in Globex: nothing there is theirs.
    member_items = queue_for(access=acme.access(acme.member))
    assert {i.organization.slug for i in member_items} == {"acme"}
    client.force_login(acme.member)
    page = _main(client.get("/queue/"))
    assert "Globex" not in page and "Globex Bot" not in page
    assert "Waiting for you (3)" in client.get(reverse("dashboard", args=["acme"])).content.decode()
    api = str(api_client_for(acme.member).get(QUEUE_API).json())
    assert "globex" not in api.lower()

    # The outsider sees Globex's work and none of Acme's.
    outsider_items = queue_for(access=acme.access(acme.outsider))
    assert {i.organization.slug for i in outsider_items} == {"globex"}
    assert ("waiver", globex_waiver.pk) in {(i.kind, i.object_id) for i in outsider_items}
    client.force_login(acme.outsider)
    page = client.get("/queue/").content.decode()
    assert "Support Copilot" not in page and "Acme" not in page  # the outsider is not in Acme at all
    badge = client.get(reverse("dashboard", args=["globex"])).content.decode()
    assert f"Waiting for you ({len(outsider_items)})" in badge
    api = str(api_client_for(acme.outsider).get(QUEUE_API).json())
    assert "acme" not in api.lower() and "Support Copilot" not in api


def test_one_queue_spans_every_organization_the_person_may_act_in(acme, client):
    _globex_work(acme)
    Membership.objects.filter(user=acme.member, organization=acme.other_org).update(functions=["legal"])
    items = queue_for(access=acme.access(acme.member))
    assert ("globex", "Sign the legal gate") in {(i.organization.slug, i.title) for i in items}
    client.force_login(acme.member)
    page = client.get("/queue/").content.decode()
    assert 'data-testid="queue-org-acme"' in page and 'data-testid="queue-org-globex"' in page


def test_a_personal_token_sees_only_its_own_organizations_queue(acme):
    _globex_work(acme)
    Membership.objects.filter(user=acme.member, organization=acme.other_org).update(functions=["legal"])
    assert {i.organization.slug for i in queue_for(access=acme.access(acme.member))} == {"acme", "globex"}
    member = acme.access(acme.member)
    _, token = org_services.personal_token_create(access=member, org=acme.org, name="mine", scope="read_write")
    body = api_client_for(token=token).get(QUEUE_API).json()
    assert {r["organization"] for r in body["results"]} == {"acme"}


def _more_work(world, n, prefix):
    owner = world.access(world.owner)
    member = world.access(world.member)
    for i in range(n):
        project = project_services.project_create(access=owner, organization=world.org, name=f"Bot {prefix}{i}")
        _waiver(owner, _checklist(owner, project))
        signoffs.signoff_decide(
            access=member,
            project=project,
            function="engineering",
            verdict="approve_with_conditions",
            conditions=[f"alert {i}"],
        )


def test_queue_queries_do_not_grow_with_its_length(acme, django_assert_max_num_queries):
    _more_work(acme, 1, "a")
    client = api_client_for(acme.member)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(QUEUE_API).status_code == 200
    few = len(captured.captured_queries)  # read now: the next request clears the log
    short = client.get(QUEUE_API).json()["count"]
    _more_work(acme, 6, "b")
    with django_assert_max_num_queries(few):
        body = client.get(QUEUE_API + "?page_size=100").json()
    assert body["count"] >= short + 12  # six more waivers and six more follow-ups at least
    page_client = acme_client(acme)
    with CaptureQueriesContext(connection) as captured:
        page_client.get("/queue/")
    page_queries = len(captured.captured_queries)
    _more_work(acme, 3, "c")
    with django_assert_max_num_queries(page_queries):
        assert page_client.get("/queue/").status_code == 200


def acme_client(world):
    from django.test import Client

    client = Client()
    client.force_login(world.member)
    return client


def test_digest_mails_each_person_their_queue_only_when_switched_on(acme, settings, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    settings.READINESS_QUEUE_DIGEST = False
    with django_capture_on_commit_callbacks(execute=True):
        call_command("send_queue_digest")
    assert mail.outbox == []
    settings.READINESS_QUEUE_DIGEST = True
    with django_capture_on_commit_callbacks(execute=True):
        call_command("send_queue_digest")
    # Only the member has something waiting; the owner's and the viewer's queues are empty.
    assert [m.to for m in mail.outbox] == [["member@x.test"]]
    body = mail.outbox[0].body
    assert "Sign the security gate" in body and "http" in body and "/o/acme/checklists/" in body


# --- in Chromium ---------------------------------------------------------------------------------


@pytest.mark.browser
def test_member_follows_the_badge_to_a_waiver_and_decides_it(page, live_server, transactional_db):
    from tests.conftest import make_user

    owner = make_user("olga")
    make_user("sam")
    org = org_services.organization_create(name="Initech", slug="initech", owner=owner)
    org_services.membership_add(
        access=Access.for_user(owner), org=org, username="sam", role="member", functions=["security"]
    )
    project = project_services.project_create(access=Access.for_user(owner), organization=org, name="Claims Bot")
    waiver = _waiver(Access.for_user(owner), _checklist(Access.for_user(owner), project))

    log_in(page, live_server.url, "sam")
    badge = page.locator("[data-testid=queue-badge]")
    assert badge.inner_text() == "Waiting for you (2)"  # the waiver and the security gate
    badge.click()
    page.wait_for_url("**/queue/")
    rows = page.locator("[data-testid=queue-item]")
    assert rows.count() == 2
    assert rows.nth(0).get_attribute("data-kind") == "waiver"
    rows.nth(0).locator("a").click()
    page.wait_for_url(f"**/o/initech/checklists/*/#item-{waiver.response.item.key}")
    item = page.locator(f'[id="item-{waiver.response.item.key}"]')
    item.locator("button:has-text('Approve')").click()
    page.wait_for_load_state()
    assert page.locator("[data-testid=queue-badge]").inner_text() == "Waiting for you (1)"
    # The gate's link lands on its card, where this person's sign-off form is.
    page.click("[data-testid=queue-badge]")
    page.wait_for_url("**/queue/")
    page.locator("[data-testid=queue-item][data-kind=gate] a").click()
    page.wait_for_url("**/o/initech/projects/claims-bot/readiness/#gate-security")
    assert page.locator("[data-testid=gate-security] [data-testid=gate-form]").is_visible()
