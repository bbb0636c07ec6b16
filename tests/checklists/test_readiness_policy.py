"""The organization's readiness policy: which checklist categories every project needs."""

import pytest

from apps.checklists import services as checklists
from apps.checklists.models import ChecklistTemplate
from apps.core.models import AuditEvent
from apps.reports.evaluation import refresh_project
from apps.reports.models import ProjectStatus
from tests.conftest import api_client_for
from tests.readiness_helpers import decided


@pytest.fixture
def security_only(world):
    """A project with the security checklist alone, under the default policy."""
    checklists.ensure_shipped_templates(world.org)
    template = ChecklistTemplate.objects.get(organization=world.org, key="security")
    checklists.checklist_add(access=world.access(world.owner), project=world.project, template=template)
    return world


def reasons(project):
    return {r.code: r.message for r in refresh_project(project).reasons}


def test_a_new_organization_requires_the_four_shipped_categories(world):
    assert world.org.required_checklist_categories == ["security", "monitoring", "cost", "reliability"]


def test_a_project_missing_required_checklists_is_no_go_naming_them_until_the_policy_changes(client, security_only):
    w = security_only
    assert reasons(w.project)["checklist_missing"] == (
        "no monitoring, cost, reliability checklist: the organization requires them"
    )
    client.force_login(w.owner)
    page = client.get("/o/acme/projects/support-copilot/readiness/").content.decode()
    assert "no monitoring, cost, reliability checklist" in page
    reply = client.post("/o/acme/readiness-policy/", {"required_checklist_categories": ["security"]}, follow=True)
    assert "Readiness policy saved" in reply.content.decode()
    w.org.refresh_from_db()
    assert w.org.required_checklist_categories == ["security"]
    decided(w.project)  # the re-evaluation the policy change queued for each of the org's projects
    stored = ProjectStatus.objects.get(project=w.project).reasons
    assert stored and all(r["code"] != "checklist_missing" for r in stored)
    assert "checklist_missing" not in reasons(w.project)
    event = AuditEvent.objects.get(action="organization.policy")
    assert event.changes["required_checklist_categories"][1] == ["security"]


def test_an_empty_policy_still_needs_one_checklist(world):
    api_client_for(world.owner).patch(
        "/api/v1/readiness-policies/acme/", {"required_checklist_categories": []}, format="json"
    )
    assert reasons(world.project)["checklist_missing"] == "the project has no checklist yet"


def test_the_api_reads_and_changes_the_policy_and_refuses_unknown_categories(world):
    owner = api_client_for(world.owner)
    body = owner.get("/api/v1/readiness-policies/acme/").json()
    assert body["required_checklist_categories"] == ["security", "monitoring", "cost", "reliability"]
    assert {"security", "monitoring", "cost", "reliability"} <= set(body["known_categories"])
    reply = owner.patch(
        "/api/v1/readiness-policies/acme/", {"required_checklist_categories": ["security", "vibes"]}, format="json"
    )
    assert reply.status_code == 400 and "Unknown category: vibes" in reply.json()["error"]["message"]
    reply = owner.patch(
        "/api/v1/readiness-policies/acme/", {"required_checklist_categories": ["cost", "cost"]}, format="json"
    )
    assert reply.status_code == 200 and reply.json()["required_checklist_categories"] == ["cost"]


def test_members_and_viewers_read_the_policy_but_only_admins_change_it(client, world):
    for user in (world.member, world.viewer):
        api = api_client_for(user)
        assert api.get("/api/v1/readiness-policies/acme/").status_code == 200
        reply = api.patch("/api/v1/readiness-policies/acme/", {"required_checklist_categories": []}, format="json")
        assert reply.status_code == 403
        client.force_login(user)
        page = client.get("/o/acme/readiness-policy/")
        assert page.status_code == 200 and 'name="required_checklist_categories"' not in page.content.decode()
        assert client.post("/o/acme/readiness-policy/", {"required_checklist_categories": []}).status_code == 403
    world.org.refresh_from_db()
    assert world.org.required_checklist_categories == ["security", "monitoring", "cost", "reliability"]


def test_an_outsider_gets_404_on_another_orgs_policy(client, world):
    outsider = api_client_for(world.outsider)
    assert outsider.get("/api/v1/readiness-policies/acme/").status_code == 404
    reply = outsider.patch("/api/v1/readiness-policies/acme/", {"required_checklist_categories": []}, format="json")
    assert reply.status_code == 404
    client.force_login(world.outsider)
    assert client.get("/o/acme/readiness-policy/").status_code == 404
    assert client.post("/o/acme/readiness-policy/", {"required_checklist_categories": []}).status_code == 404
    world.org.refresh_from_db()
    assert world.org.required_checklist_categories == ["security", "monitoring", "cost", "reliability"]
