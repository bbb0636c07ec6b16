"""The readiness flow through the services: checklists, waivers, sign-offs, decision, reports."""

import pytest

from apps.checklists import services as checklists
from apps.checklists.models import ChecklistTemplate, Status
from apps.reports.models import ProjectStatus
from tests.readiness_helpers import decided


@pytest.fixture
def setup(world):
    checklists.ensure_shipped_templates(world.org)
    owner = world.access(world.owner)
    security = ChecklistTemplate.objects.get(organization=world.org, key="security")
    checklist = checklists.checklist_add(access=owner, project=world.project, template=security)
    return world, checklist


def test_new_checklist_is_pending_and_the_project_is_no_go(setup):
    world, checklist = setup
    statuses = set(checklist.responses.values_list("status", flat=True))
    assert statuses == {Status.PENDING}
    decided(world.project)
    status = ProjectStatus.objects.get(project=world.project)
    assert status.outcome == "NO-GO"
    codes = {r["code"] for r in status.reasons}
    assert {"blocker_pending", "gate_missing", "probe_missing"} <= codes


def test_walk_to_go_through_the_api(world, tokens, started):
    """Smoke: the API alone takes the project from NO-GO to GO."""
    from tests.conftest import api_client_for

    checklists.ensure_shipped_templates(world.org)
    owner = api_client_for(world.owner)
    decided(world.project)
    r = owner.get(f"/api/v1/projects/{world.project.pk}/readiness/")
    assert r.status_code == 200, r.content
    assert r.json()["outcome"] == "NO-GO"
