"""Each person sees only the forms they can submit: the readiness page's report button, the
sign-off forms per gate and follow-ups, and the checklist page's waiver decisions. The pages
ask the services' own refusal functions, so what is shown is what would be accepted."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.checklists import services as checklists
from apps.checklists.models import ChecklistTemplate
from apps.orgs import services as org_services
from apps.orgs.models import Membership
from apps.signoffs import services as signoffs
from tests.conftest import api_client_for


def give_functions(world, user, functions):
    membership = Membership.objects.get(organization=world.org, user=user)
    org_services.membership_update(
        access=world.access(world.owner), membership=membership, role=membership.role, functions=functions
    )


def readiness(world, user) -> str:
    reply = api_client_for(user).get(f"/o/acme/projects/{world.project.slug}/readiness/")
    assert reply.status_code == 200
    return reply.content.decode()


def gate(page: str, function: str) -> str:
    return page.split(f'data-testid="gate-{function}"')[1].split("</section>")[0]


def verdicts(section: str) -> list[str]:
    return re.findall(r'<option value="([a-z_]+)"', section)


def test_a_viewer_sees_no_report_button_no_sign_off_form_and_no_follow_up_action(world):
    give_functions(world, world.member, ["engineering"])
    signoffs.signoff_decide(
        access=world.access(world.member),
        project=world.project,
        function="engineering",
        verdict="approve_with_conditions",
        conditions=["Add a dashboard"],
    )
    page = readiness(world, world.viewer)  # the viewer holds the security function, read-only
    assert 'data-testid="generate-report"' not in page
    assert 'data-testid="gate-form"' not in page
    assert "Add a dashboard" in page and "mark done" not in page
    # Holding the function does not make a reader a signer, and the page says so where it waits.
    assert "your role here can read it but not decide it" in gate(page, "security")
    assert "your role here" not in gate(readiness(world, world.member), "security")


def test_a_member_sees_the_form_only_for_the_gate_of_their_function(world):
    page = readiness(world, world.member)  # engineering
    assert 'data-testid="generate-report"' in page
    assert verdicts(gate(page, "engineering")) == ["approve", "approve_with_conditions", "reject"]
    for function in ("security", "legal", "finance", "product"):
        assert 'data-testid="gate-form"' not in gate(page, function)


def test_the_form_goes_away_once_the_gate_is_approved(world):
    signoffs.signoff_decide(
        access=world.access(world.member), project=world.project, function="engineering", verdict="approve"
    )
    section = gate(readiness(world, world.member), "engineering")
    assert 'data-testid="gate-form"' not in section
    assert ">approved<" in section


def test_the_project_owner_may_only_reject_their_own_projects_gate(world):
    give_functions(world, world.owner, ["security"])
    assert verdicts(gate(readiness(world, world.owner), "security")) == ["reject"]


def test_one_person_cannot_be_offered_a_second_gate_to_approve(world):
    give_functions(world, world.member, ["engineering", "product"])
    signoffs.signoff_decide(
        access=world.access(world.member), project=world.project, function="engineering", verdict="approve"
    )
    assert verdicts(gate(readiness(world, world.member), "product")) == ["reject"]


def test_a_gate_status_reads_as_words(world):
    signoffs.signoff_decide(
        access=world.access(world.member),
        project=world.project,
        function="engineering",
        verdict="approve_with_conditions",
        conditions=["Add a dashboard"],
    )
    section = gate(readiness(world, world.member), "engineering")
    assert "approved with conditions" in section and "approvedwithconditions" not in section


def test_the_follow_up_is_closable_by_its_function_not_by_another_member(world):
    signoffs.signoff_decide(
        access=world.access(world.member),
        project=world.project,
        function="engineering",
        verdict="approve_with_conditions",
        conditions=["Add a dashboard"],
    )
    assert "mark done" in readiness(world, world.member)
    assert "mark done" not in readiness(world, world.owner)  # no engineering function


def test_an_outsider_gets_404_on_the_readiness_page(world):
    reply = api_client_for(world.outsider).get(f"/o/acme/projects/{world.project.slug}/readiness/")
    assert reply.status_code == 404


@pytest.fixture
def waiver(world):
    checklists.ensure_shipped_templates(world.org)
    template = ChecklistTemplate.objects.filter(organization=world.org, key="security").order_by("-version").first()
    checklist = checklists.checklist_add(access=world.access(world.owner), project=world.project, template=template)
    response = checklists.current_responses(checklist).filter(item__function="security").first()
    give_functions(world, world.owner, ["security"])
    give_functions(world, world.member, ["security"])
    until = timezone.localdate() + timedelta(days=30)
    return checklists.waiver_request(
        access=world.access(world.owner), response=response, reason="ships in Q3", risk_level="low", expires_on=until
    )


def checklist_page(world, user, waiver) -> str:
    reply = api_client_for(user).get(f"/o/acme/checklists/{waiver.response.checklist_id}/")
    assert reply.status_code == 200
    return reply.content.decode()


def test_the_requester_of_a_waiver_does_not_see_approve_or_reject_on_it(world, waiver):
    page = checklist_page(world, world.owner, waiver)
    assert "ships in Q3" in page and 'data-testid="waiver-decide"' not in page


def test_a_holder_of_the_items_function_sees_approve_and_reject(world, waiver):
    page = checklist_page(world, world.member, waiver)
    assert page.count('data-testid="waiver-decide"') == 1


def test_a_viewer_holding_the_function_does_not_see_approve_or_reject(world, waiver):
    page = checklist_page(world, world.viewer, waiver)
    assert 'data-testid="waiver-decide"' not in page


def test_the_reports_sign_off_table_reads_statuses_and_verdicts_as_words(world):
    from apps.reports import services as reports

    signoffs.signoff_decide(
        access=world.access(world.member),
        project=world.project,
        function="engineering",
        verdict="approve_with_conditions",
        conditions=["Add a dashboard"],
    )
    report = reports.report_create(access=world.access(world.owner), project=world.project)
    reply = api_client_for(world.viewer).get(f"/o/acme/reports/{report.pk}/")
    assert reply.status_code == 200
    table = reply.content.decode().split('data-testid="report-signoffs"')[1].split("</table>")[0]
    assert "approved with conditions (1 of 1)" in table and "Approve with conditions by" in table
    assert "approvedwithconditions" not in table and "approvewithconditions" not in table
    assert re.search(r'<time datetime="[^"]+"[^>]*>\d{4}-\d\d-\d\d \d\d:\d\d UTC</time>', table)
