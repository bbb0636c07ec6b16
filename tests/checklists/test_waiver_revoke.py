"""Revoke shows on a waiver only to who the service lets revoke it: its requester or a holder of
the item's function, never a viewer; the page and the service ask the same refusal function."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.checklists import services as checklists
from apps.checklists.models import ChecklistTemplate, WaiverStatus
from apps.core.errors import ApplicationError
from apps.orgs import services as org_services
from apps.orgs.models import Membership
from tests.conftest import api_client_for


def give_functions(world, user, functions):
    membership = Membership.objects.get(organization=world.org, user=user)
    org_services.membership_update(
        access=world.access(world.owner), membership=membership, role=membership.role, functions=functions
    )


@pytest.fixture
def waiver(world):
    """Requested by the owner on a security item; the member holds engineering only."""
    checklists.ensure_shipped_templates(world.org)
    template = ChecklistTemplate.objects.filter(organization=world.org, key="security").order_by("-version").first()
    checklist = checklists.checklist_add(access=world.access(world.owner), project=world.project, template=template)
    response = checklists.current_responses(checklist).filter(item__function="security").first()
    until = timezone.localdate() + timedelta(days=30)
    return checklists.waiver_request(
        access=world.access(world.owner), response=response, reason="ships in Q3", risk_level="low", expires_on=until
    )


def page(user, waiver):
    reply = api_client_for(user).get(f"/o/acme/checklists/{waiver.response.checklist_id}/")
    return reply.status_code, reply.content.decode()


def test_the_requester_sees_revoke_on_their_own_waiver(world, waiver):
    code, html = page(world.owner, waiver)
    assert code == 200 and html.count('data-testid="waiver-revoke"') == 1


def test_a_member_without_the_items_function_sees_no_revoke_and_the_service_refuses_them(world, waiver):
    code, html = page(world.member, waiver)
    assert code == 200 and "ships in Q3" in html and 'data-testid="waiver-revoke"' not in html
    with pytest.raises(ApplicationError) as refused:
        checklists.waiver_revoke(access=world.access(world.member), waiver=waiver, reason="not needed")
    assert refused.value.status == 403
    waiver.refresh_from_db()
    assert waiver.status == WaiverStatus.REQUESTED


def test_a_holder_of_the_items_function_sees_revoke_and_may_revoke(world, waiver):
    give_functions(world, world.member, ["security"])
    assert 'data-testid="waiver-revoke"' in page(world.member, waiver)[1]
    revoked = checklists.waiver_revoke(access=world.access(world.member), waiver=waiver, reason="fixed instead")
    assert revoked.status == WaiverStatus.REVOKED
    assert 'data-testid="waiver-revoke"' not in page(world.member, waiver)[1]


def test_a_viewer_holding_the_function_sees_no_revoke(world, waiver):
    code, html = page(world.viewer, waiver)
    assert code == 200 and 'data-testid="waiver-revoke"' not in html


def test_an_outsider_gets_404_on_the_checklist_with_the_waiver(world, waiver):
    assert page(world.outsider, waiver)[0] == 404
