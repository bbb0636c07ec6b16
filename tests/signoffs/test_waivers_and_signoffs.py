"""Waivers (lifecycle, expiry, separation of duties) and sign-offs (who may sign, staleness, follow-ups)."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from apps.checklists import services as checklists
from apps.checklists.models import ChecklistTemplate, Waiver
from apps.core.errors import ApplicationError
from apps.core.models import AuditEvent
from apps.orgs import services as org_services
from apps.orgs.models import Membership, Role
from apps.reports.evaluation import refresh_project
from apps.reports.models import ProjectStatus
from apps.signoffs import services as signoffs
from apps.signoffs.models import SignoffDecision
from tests.conftest import make_user
from tests.readiness_helpers import decided


@pytest.fixture
def team(world):
    """sec1, sec2 (security), fin (finance), eng is world.member; policy: security + engineering gates."""
    owner = world.access(world.owner)
    people = {}
    for name, functions in (("sec1", ["security"]), ("sec2", ["security"]), ("fin", ["finance"])):
        make_user(name)
        org_services.membership_add(access=owner, org=world.org, username=name, role=Role.MEMBER, functions=functions)
        people[name] = world.access(Membership.objects.get(user__username=name).user)
    people["eng"] = world.access(world.member)
    people["owner"] = owner
    signoffs.policy_update(
        access=owner,
        org=world.org,
        gates=[{"function": "security", "required": 1}, {"function": "engineering", "required": 1}],
    )
    checklists.ensure_shipped_templates(world.org)
    security = ChecklistTemplate.objects.get(organization=world.org, key="security")
    people["checklist"] = checklists.checklist_add(access=owner, project=world.project, template=security)
    return people


def item(team, key):
    return checklists.current_responses(team["checklist"]).get(item__key=key)


def status(world):
    refresh_project(world.project)
    return ProjectStatus.objects.get(project=world.project)


def codes(world):
    return {r["code"] for r in status(world).reasons}


def about(world, fragment="Sensitive data") -> dict:
    """code -> message of the reasons that name `fragment` (one item's reasons)."""
    return {r["code"]: r["message"] for r in status(world).reasons if fragment in r["message"]}


def request_waiver(team, who="sec1", key="sec.sensitive-data", days=30):
    expires = timezone.localdate() + timedelta(days=days)
    return checklists.waiver_request(
        access=team[who],
        response=item(team, key),
        reason="redaction ships in Q3",
        risk_level="medium",
        expires_on=expires,
    )


# --- waivers -------------------------------------------------------------------------------------


def test_waiver_lifecycle_request_approve_expire(world, team):
    waiver = request_waiver(team)
    assert list(about(world)) == ["blocker_pending"]  # a requested waiver does not count yet
    with pytest.raises(ApplicationError) as exc:
        checklists.waiver_decide(access=team["sec1"], waiver=waiver, approve=True)
    assert exc.value.code == "separation_of_duties"  # not your own request
    with pytest.raises(ApplicationError) as exc:
        checklists.waiver_decide(access=team["fin"], waiver=waiver, approve=True)
    assert exc.value.status == 403 and "security" in exc.value.message  # wrong function
    checklists.waiver_decide(access=team["sec2"], waiver=waiver, approve=True, note="accepted for 30 days")
    assert list(about(world)) == ["waived"]
    # 31 days later the waiver has expired: it no longer counts and says so.
    with time_machine.travel(timezone.now() + timedelta(days=31), tick=False):
        waiver.refresh_from_db()
        assert waiver.state_on(timezone.localdate()) == "expired"
        messages = [r["message"] for r in status(world).reasons]
        assert any("its waiver expired" in m for m in messages)
    assert Waiver.objects.filter(pk=waiver.pk).exists()  # nothing deleted


def test_a_waiver_expiring_soon_is_called_out(world, team):
    waiver = request_waiver(team, days=3)
    checklists.waiver_decide(access=team["sec2"], waiver=waiver, approve=True)
    assert "expiring in 3 days" in about(world)["waived"]


def test_waiver_rejection_and_revocation_need_reasons_and_keep_history(world, team):
    waiver = request_waiver(team)
    with pytest.raises(ApplicationError):
        checklists.waiver_decide(access=team["sec2"], waiver=waiver, approve=False)  # no reason
    checklists.waiver_decide(access=team["sec2"], waiver=waiver, approve=False, note="fix it instead")
    with pytest.raises(ApplicationError) as exc:
        checklists.waiver_decide(access=team["sec2"], waiver=waiver, approve=True)
    assert exc.value.status == 409
    second = request_waiver(team)
    checklists.waiver_decide(access=team["sec2"], waiver=second, approve=True)
    with pytest.raises(ApplicationError) as exc:
        request_waiver(team)  # one open waiver per item
    assert exc.value.code == "duplicate"
    with pytest.raises(ApplicationError):
        checklists.waiver_revoke(access=team["fin"], waiver=second, reason="no")  # neither requester nor holder
    with pytest.raises(ApplicationError):
        checklists.waiver_revoke(access=team["sec2"], waiver=second, reason="")
    checklists.waiver_revoke(access=team["sec2"], waiver=second, reason="risk re-assessed")
    assert list(about(world)) == ["blocker_pending"]
    states = sorted(Waiver.objects.filter(response=item(team, "sec.sensitive-data")).values_list("status", flat=True))
    assert states == ["rejected", "revoked"]
    actions = set(AuditEvent.objects.filter(action__startswith="waiver.").values_list("action", flat=True))
    assert actions == {"waiver.request", "waiver.approve", "waiver.reject", "waiver.revoke"}


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("reason", "", "reason"),
        ("risk_level", "extreme", "risk_level"),
        ("expires_on", -1, "expires_on"),
        ("expires_on", 400, "expires_on"),
    ],
)
def test_a_bad_waiver_request_names_the_field(world, team, field, value, message):
    fields = {"reason": "why", "risk_level": "low", "expires_on": timezone.localdate() + timedelta(days=5)}
    fields[field] = timezone.localdate() + timedelta(days=value) if field == "expires_on" else value
    with pytest.raises(ApplicationError) as exc:
        checklists.waiver_request(access=team["sec1"], response=item(team, "sec.sensitive-data"), **fields)
    assert message in exc.value.detail
    assert not Waiver.objects.exists()


def test_a_passing_item_cannot_be_waived(world, team):
    r = item(team, "sec.sensitive-data")
    checklists.response_answer(access=team["sec1"], response=r, status="pass", evidence_text="redacted")
    with pytest.raises(ApplicationError) as exc:
        request_waiver(team)
    assert exc.value.status == 409


# --- sign-offs: who may decide ------------------------------------------------------------------


def test_only_holders_of_the_function_may_decide_a_gate(world, team, tokens):
    with pytest.raises(ApplicationError) as exc:
        signoffs.signoff_decide(access=team["fin"], project=world.project, function="security", verdict="approve")
    assert exc.value.status == 403
    with pytest.raises(ApplicationError) as exc:
        signoffs.signoff_decide(access=team["sec1"], project=world.project, function="finance", verdict="approve")
    assert "no finance gate" in exc.value.message  # not in this org's policy
    from tests.checklists.test_checklists import token_access

    with pytest.raises(ApplicationError) as exc:
        signoffs.signoff_decide(
            access=token_access(world, tokens), project=world.project, function="security", verdict="approve"
        )
    assert "person" in exc.value.message
    assert not SignoffDecision.objects.exists()


def test_the_owner_cannot_approve_their_own_project_unless_the_policy_allows(world, team):
    Membership.objects.filter(user=world.owner, organization=world.org).update(functions=["security"])
    with pytest.raises(ApplicationError) as exc:
        signoffs.signoff_decide(access=team["owner"], project=world.project, function="security", verdict="approve")
    assert exc.value.code == "separation_of_duties"
    signoffs.policy_update(access=team["owner"], org=world.org, allow_owner_approval=True)
    decision = signoffs.signoff_decide(
        access=team["owner"], project=world.project, function="security", verdict="approve"
    )
    assert decision.is_current


def test_one_person_cannot_clear_two_gates_unless_the_policy_allows(world, team):
    Membership.objects.filter(user=world.member, organization=world.org).update(functions=["engineering", "security"])
    signoffs.signoff_decide(access=team["eng"], project=world.project, function="engineering", verdict="approve")
    with pytest.raises(ApplicationError) as exc:
        signoffs.signoff_decide(access=team["eng"], project=world.project, function="security", verdict="approve")
    assert exc.value.code == "separation_of_duties"
    signoffs.policy_update(access=team["owner"], org=world.org, allow_multiple_gates=True)
    signoffs.signoff_decide(access=team["eng"], project=world.project, function="security", verdict="approve")
    assert {g.function: g.status for g in signoffs.gate_states(world.project)} == {
        "security": "approved",
        "engineering": "approved",
    }


def test_n_distinct_approvers_and_a_rejection_blocks(world, team):
    signoffs.policy_update(access=team["owner"], org=world.org, gates=[{"function": "security", "required": 2}])
    signoffs.signoff_decide(access=team["sec1"], project=world.project, function="security", verdict="approve")
    signoffs.signoff_decide(access=team["sec1"], project=world.project, function="security", verdict="approve")
    gate = signoffs.gate_states(world.project)[0]
    assert (gate.approvals, gate.status) == (1, "pending")  # the same person twice is one approval
    assert "gate_missing" in codes(world)
    signoffs.signoff_decide(access=team["sec2"], project=world.project, function="security", verdict="approve")
    assert signoffs.gate_states(world.project)[0].status == "approved"
    with pytest.raises(ApplicationError):
        signoffs.signoff_decide(access=team["sec2"], project=world.project, function="security", verdict="reject")
    signoffs.signoff_decide(
        access=team["sec2"],
        project=world.project,
        function="security",
        verdict="reject",
        reason="pen test findings open",
    )
    assert "gate_rejected" in codes(world)
    # The earlier decisions are kept, superseded.
    assert SignoffDecision.objects.filter(project=world.project).count() == 4


def test_conditions_become_follow_ups_and_keep_the_gate_conditional_until_done(world, team):
    decision = signoffs.signoff_decide(
        access=team["eng"],
        project=world.project,
        function="engineering",
        verdict="approve_with_conditions",
        conditions=["add a TTFT alert", "load test at 3x"],
    )
    assert decision.follow_ups.count() == 2
    reasons = {r["code"]: r["message"] for r in status(world).reasons}
    assert "add a TTFT alert" in reasons["gate_conditions"]
    for follow_up in decision.follow_ups.all():
        signoffs.follow_up_close(access=team["eng"], follow_up=follow_up, note="done")
    assert "gate_conditions" not in codes(world)


def test_only_the_approver_or_a_holder_of_its_function_closes_a_condition(world, team, tokens):
    """What must survive: the approver's condition. Finance, or an org token, cannot close an
    engineering approver's condition; the approver or another engineer can."""
    from apps.orgs.access import Access
    from apps.orgs.models import ApiToken

    decision = signoffs.signoff_decide(
        access=team["eng"],
        project=world.project,
        function="engineering",
        verdict="approve_with_conditions",
        conditions=["a", "b"],
    )
    first, second = decision.follow_ups.order_by("pk")
    org_token = Access.for_token(ApiToken.objects.get(lookup_id=tokens["read_write"].split("_")[1]))
    for access in (team["fin"], org_token):
        with pytest.raises(ApplicationError) as info:
            signoffs.follow_up_close(access=access, follow_up=first, note="closing it for them")
        assert info.value.status == 403 and "engineering" in info.value.message
    first.refresh_from_db()
    assert first.status == "open"
    signoffs.follow_up_close(access=team["eng"], follow_up=first, note="done")  # the approver
    make_user("eng2")
    org_services.membership_add(
        access=team["owner"], org=world.org, username="eng2", role=Role.MEMBER, functions=["engineering"]
    )
    colleague = world.access(Membership.objects.get(user__username="eng2").user)
    signoffs.follow_up_close(access=colleague, follow_up=second, note="done too")  # same function
    assert set(decision.follow_ups.values_list("status", flat=True)) == {"done"}


# --- staleness ----------------------------------------------------------------------------------


def test_an_approval_goes_stale_when_its_evidence_gets_worse_and_the_approver_is_told(
    world, team, django_capture_on_commit_callbacks
):
    r = item(team, "sec.sensitive-data")
    checklists.response_answer(access=team["sec1"], response=r, status="pass", evidence_text="redacted")
    decision = signoffs.signoff_decide(
        access=team["sec2"], project=world.project, function="security", verdict="approve"
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):  # mail goes out once the change is committed
        checklists.response_answer(access=team["owner"], response=r, status="fail", evidence_text="regressed")
        decided(world.project)  # the re-evaluation the change queued marks the approval stale
    decision.refresh_from_db()
    assert decision.stale_at is not None and "pass → fail" in decision.stale_reason
    assert "gate_stale" in codes(world)
    stale_mail = [m for m in mail.outbox if "sign-off is stale" in m.subject]
    assert stale_mail and set(stale_mail[0].to) == {"sec2@x.test", "owner@x.test"}
    assert AuditEvent.objects.filter(action="signoff.stale", object_id=str(decision.pk)).exists()
    # A fresh decision clears it; the stale one stays for the record.
    signoffs.signoff_decide(access=team["sec2"], project=world.project, function="security", verdict="approve")
    assert "gate_stale" not in codes(world)
    assert SignoffDecision.objects.filter(pk=decision.pk, stale_at__isnull=False).exists()


def test_trivial_changes_and_improvements_leave_an_approval_standing(world, team):
    decision = signoffs.signoff_decide(
        access=team["sec2"], project=world.project, function="security", verdict="approve"
    )
    # A typo fixed in the guidance of a security item: a new template version, upgraded.
    v1 = team["checklist"].template
    items = [{f: getattr(i, f) for f in checklists.ITEM_FIELDS} for i in v1.items.all()]
    items[1]["guidance"] = items[1]["guidance"].replace("retention", "Retention")
    v2 = checklists.template_save_version(
        access=team["owner"], organization=world.org, key=v1.key, name=v1.name, category=v1.category, items=items
    )
    checklists.checklist_upgrade(access=team["owner"], checklist=team["checklist"], template=v2)
    # Another function's item failing is not the security approver's evidence.
    checklists.response_answer(access=team["eng"], response=item(team, "sec.output-handling"), status="fail")
    # An item of the function getting better.
    checklists.response_answer(
        access=team["sec1"], response=item(team, "sec.sensitive-data"), status="pass", evidence_text="redaction live"
    )
    decided(world.project)
    decision.refresh_from_db()
    assert decision.stale_at is None
    assert "gate_stale" not in codes(world)


def test_a_rejection_goes_stale_when_the_evidence_improves(world, team):
    decision = signoffs.signoff_decide(
        access=team["sec2"], project=world.project, function="security", verdict="reject", reason="PII in logs"
    )
    assert "gate_rejected" in codes(world)
    checklists.response_answer(
        access=team["sec1"], response=item(team, "sec.sensitive-data"), status="pass", evidence_text="redaction live"
    )
    decided(world.project)
    decision.refresh_from_db()
    assert decision.stale_at is not None
    assert "gate_rejected" not in codes(world) and "gate_stale" in codes(world)


def test_the_hourly_refresh_notices_an_expired_waiver(world, team):
    from apps.reports.tasks import readiness_refresh_task

    waiver = request_waiver(team, days=2)
    checklists.waiver_decide(access=team["sec2"], waiver=waiver, approve=True)
    assert list(about(world)) == ["waived"]
    with time_machine.travel(timezone.now() + timedelta(days=3), tick=False):
        assert readiness_refresh_task() == 2  # both orgs' projects
        stored = ProjectStatus.objects.get(project=world.project).reasons
        assert any("its waiver expired" in r["message"] for r in stored)
