"""Sign-off decisions with separation of duties, staleness on material change, follow-ups."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from apps.checklists.services import member_functions
from apps.core.errors import ApplicationError
from apps.core.events import Event, announce
from apps.core.notify import notify
from apps.core.readiness import readiness_changed
from apps.core.services import audit_record, require_writer
from apps.evidence.collect import project_evidence
from apps.orgs.access import Access
from apps.orgs.models import Function, Membership, Organization
from apps.signoffs.material import fingerprint, material_state, what_worsened
from apps.signoffs.models import FollowUp, FollowUpStatus, SignoffDecision, SignoffPolicy, Verdict

APPROVALS = (Verdict.APPROVE, Verdict.APPROVE_WITH_CONDITIONS)


def policy_for(org: Organization) -> SignoffPolicy:
    policy, _ = SignoffPolicy.objects.get_or_create(organization=org)
    return policy


def validate_gates(gates) -> list[dict]:
    if not isinstance(gates, list) or not gates:
        raise ApplicationError("Give at least one gate.", detail={"gates": ["A non-empty list."]})
    clean, seen = [], set()
    for gate in gates:
        function = gate.get("function") if isinstance(gate, dict) else None
        required = gate.get("required", 1) if isinstance(gate, dict) else None
        if function not in Function.values or function in seen:
            raise ApplicationError(
                "Each gate names a distinct function.", detail={"gates": [f"Functions: {', '.join(Function.values)}."]}
            )
        if not isinstance(required, int) or isinstance(required, bool) or not 1 <= required <= 10:
            raise ApplicationError("A gate requires 1 to 10 approvers.", detail={"gates": [f"{function}: 1..10."]})
        seen.add(function)
        clean.append({"function": function, "required": required})
    return clean


@transaction.atomic
def policy_update(*, access: Access, org: Organization, **fields) -> SignoffPolicy:
    if not access.can_admin(org.pk):
        raise ApplicationError(
            "Only owners and admins can change the sign-off policy.",
            code="forbidden",
            status=403 if access.can_read(org.pk) else 404,
        )
    policy = policy_for(org)
    before = {
        "gates": policy.gates,
        "allow_owner_approval": policy.allow_owner_approval,
        "allow_multiple_gates": policy.allow_multiple_gates,
    }
    if "gates" in fields:
        policy.gates = validate_gates(fields["gates"])
    for name in ("allow_owner_approval", "allow_multiple_gates"):
        if name in fields:
            setattr(policy, name, bool(fields[name]))
    policy.save()
    after = {
        "gates": policy.gates,
        "allow_owner_approval": policy.allow_owner_approval,
        "allow_multiple_gates": policy.allow_multiple_gates,
    }
    changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if changes:
        audit_record(access=access, organization_id=org.pk, action="signoff_policy.update", obj=policy, changes=changes)
        for project in org.projects.all():
            readiness_changed(project)
    return policy


# --- gate state --------------------------------------------------------------------------------


@dataclass
class GateState:
    function: str
    required: int
    current: list = field(default_factory=list)  # current decisions (not stale, not superseded)
    stale: list = field(default_factory=list)  # stale decisions not yet replaced
    open_conditions: list = field(default_factory=list)

    @property
    def approvals(self) -> int:
        return len({d.decided_by_id for d in self.current if d.verdict in APPROVALS})

    @property
    def rejection(self):
        return next((d for d in self.current if d.verdict == Verdict.REJECT), None)

    @property
    def status(self) -> str:
        if self.rejection:
            return "rejected"
        if self.approvals >= self.required:
            return "approved_with_conditions" if self.open_conditions else "approved"
        return "stale" if self.stale else "pending"


def gate_states(project, policy: SignoffPolicy | None = None) -> list[GateState]:
    policy = policy or policy_for(project.organization)
    decisions = list(
        SignoffDecision.objects.filter(project=project, superseded_at__isnull=True)
        .select_related("decided_by")
        .prefetch_related("follow_ups")
        .order_by("created_at")
    )
    return gate_states_from(policy, decisions)


def gate_states_from(policy: SignoffPolicy, decisions: list[SignoffDecision]) -> list[GateState]:
    """The gates of one project from its non-superseded decisions (oldest first, follow-ups
    prefetched): lists that span many projects load their decisions once and call this per project."""
    states = []
    for gate in policy.gates:
        mine = [d for d in decisions if d.function == gate["function"]]
        current = [d for d in mine if d.stale_at is None]
        voters = {d.decided_by_id for d in current}
        stale = [d for d in mine if d.stale_at is not None and d.decided_by_id not in voters]
        conditions = [
            f.text
            for d in current
            if d.verdict in APPROVALS
            for f in d.follow_ups.all()
            if f.status == FollowUpStatus.OPEN
        ]
        states.append(GateState(gate["function"], gate["required"], current, stale, conditions))
    return states


# --- decisions ---------------------------------------------------------------------------------


def signoff_refusal(
    *, user_id: int, functions, project, function: str, verdict: str, policy: SignoffPolicy, approved_gates
) -> ApplicationError | None:
    """Why this person may not give `verdict` on the project's `function` gate, or None if they may.
    `approved_gates`: the project's gates this person currently approves. The sign-off form and the
    "waiting for you" queue ask this same question."""
    if function not in {g["function"] for g in policy.gates}:
        return ApplicationError(
            f"There is no {function} gate in this organization's policy.", detail={"function": ["Not a gate."]}
        )
    if function not in functions:
        return ApplicationError(
            f"Only members holding the {function} function can decide this gate.", code="forbidden", status=403
        )
    if verdict not in APPROVALS:
        return None
    if project.owner_id == user_id and not policy.allow_owner_approval:
        return ApplicationError(
            "The project owner cannot approve their own project's gates (org policy).",
            code="separation_of_duties",
            status=403,
        )
    other = sorted(set(approved_gates) - {function})
    if other and not policy.allow_multiple_gates:
        message = f"You already approved the {other[0]} gate; one person cannot clear two gates."
        return ApplicationError(message + " (org policy)", code="separation_of_duties", status=403)
    return None


def verdicts_open_to(
    *, access: Access, project, states: list[GateState], policy: SignoffPolicy, functions
) -> dict[str, list[tuple[str, str]]]:
    """For each gate, the verdicts (value, label) this person may give now, asked of
    `signoff_refusal` itself: none for a reader, an organization token, someone without the
    gate's function, or a gate that is already approved. The sign-off forms show only these."""
    if not access.can_write(project.organization_id) or access.user is None:
        return {s.function: [] for s in states}
    approved = {
        s.function for s in states for d in s.current if d.decided_by_id == access.user.pk and d.verdict in APPROVALS
    }
    open_to = {}
    for state in states:
        if state.status in ("approved", "approved_with_conditions"):
            open_to[state.function] = []
            continue
        open_to[state.function] = [
            (value, label)
            for value, label in Verdict.choices
            if signoff_refusal(
                user_id=access.user.pk,
                functions=functions,
                project=project,
                function=state.function,
                verdict=value,
                policy=policy,
                approved_gates=approved,
            )
            is None
        ]
    return open_to


def _check_separation(access: Access, project, function: str, verdict: str, policy: SignoffPolicy) -> None:
    approved = SignoffDecision.objects.filter(
        project=project,
        decided_by=access.user,
        verdict__in=APPROVALS,
        stale_at__isnull=True,
        superseded_at__isnull=True,
    ).values_list("function", flat=True)
    refusal = signoff_refusal(
        user_id=access.user.pk,
        functions=member_functions(access, project.organization_id),
        project=project,
        function=function,
        verdict=verdict,
        policy=policy,
        approved_gates=approved,
    )
    if refusal is not None:
        raise refusal


@transaction.atomic
def signoff_decide(
    *, access: Access, project, function: str, verdict: str, reason: str = "", conditions: list[str] | None = None
) -> SignoffDecision:
    """Decide a gate. The decision records the fingerprint of the material state it saw."""
    require_writer(access, project.organization_id)
    if access.user is None:
        raise ApplicationError("A sign-off needs a person; API tokens cannot sign.", code="forbidden", status=403)
    if verdict not in Verdict.values:
        raise ApplicationError("Unknown verdict.", detail={"verdict": [f"One of {', '.join(Verdict.values)}."]})
    conditions = [c.strip()[:500] for c in (conditions or []) if c and c.strip()]
    if verdict == Verdict.REJECT and not reason.strip():
        raise ApplicationError("Say why the gate is rejected.", detail={"reason": ["Required to reject."]})
    if verdict == Verdict.APPROVE_WITH_CONDITIONS and not conditions:
        raise ApplicationError("List the conditions.", detail={"conditions": ["At least one condition."]})
    if verdict != Verdict.APPROVE_WITH_CONDITIONS and conditions:
        raise ApplicationError("Conditions go with “approve with conditions”.", detail={"conditions": ["Not here."]})
    policy = policy_for(project.organization)
    _check_separation(access, project, function, verdict, policy)
    now = timezone.now()
    SignoffDecision.objects.filter(
        project=project, function=function, decided_by=access.user, superseded_at__isnull=True
    ).update(superseded_at=now)
    state = material_state(project_evidence(project), function)
    decision = SignoffDecision.objects.create(
        project=project,
        function=function,
        verdict=verdict,
        reason=reason.strip(),
        conditions=conditions,
        decided_by=access.user,
        fingerprint=fingerprint(state),
        evidence=state,
    )
    FollowUp.objects.bulk_create(FollowUp(project=project, decision=decision, text=c) for c in conditions)
    if verdict == Verdict.REJECT:
        announce(
            Event.SIGNOFF_REJECTED,
            project=project,
            finding_key=f"project:{project.pk}:gate:{function}",
            data={"function": function, "reason": decision.reason, "decided_by": access.user.username},
        )
    audit_record(
        access=access,
        organization_id=project.organization_id,
        action=f"signoff.{verdict}",
        obj=decision,
        changes={
            "function": [None, function],
            "reason": [None, decision.reason],
            "conditions": [None, conditions],
            "fingerprint": [None, decision.fingerprint[:12]],
        },
    )
    readiness_changed(project)
    return decision


def mark_stale(project, inputs) -> int:
    """Mark stale every current approval whose evidence got worse since it was given, and every
    rejection whose evidence got better; notify the decider and the project owner."""
    now = timezone.now()
    count = 0
    for decision in SignoffDecision.objects.filter(project=project, stale_at__isnull=True, superseded_at__isnull=True):
        state = material_state(inputs, decision.function)
        if fingerprint(state) == decision.fingerprint:
            continue
        if decision.verdict == Verdict.REJECT:
            # A rejection waits for things to get better; read backwards, "worsened" is what improved.
            improved = what_worsened(state, decision.evidence)
            changes = [f"improved since the rejection: {len(improved)} change(s)"] if improved else []
        else:
            changes = what_worsened(decision.evidence, state)
        if not changes:
            continue  # an approval stands when things got better, a rejection when they got worse
        decision.stale_at, decision.stale_reason = now, "; ".join(changes)[:500]
        decision.save(update_fields=["stale_at", "stale_reason", "updated_at"])
        audit_record(
            access=Access.system(),
            organization_id=project.organization_id,
            action="signoff.stale",
            obj=decision,
            changes={"stale": [False, True], "because": [None, decision.stale_reason]},
        )
        decider = decision.decided_by.username if decision.decided_by else None
        announce(
            Event.SIGNOFF_STALE,
            project=project,
            finding_key=f"project:{project.pk}:gate:{decision.function}",
            data={
                "function": decision.function,
                "verdict": decision.verdict,
                "decided_by": decider,
                "because": changes,
            },
        )
        notify(
            [decision.decided_by, project.owner],
            f"{project.name}: your {decision.function} sign-off is stale",
            f"The {decision.function} {decision.get_verdict_display().lower()} given on "
            f"{decision.created_at:%Y-%m-%d} for {project.name} no longer matches the evidence:\n\n- "
            + "\n- ".join(changes)
            + "\n\nThe gate needs a fresh decision.",
        )
        count += 1
    return count


def gate_holders(project, functions) -> list:
    """Members of the project's org holding any of `functions`."""
    memberships = Membership.objects.filter(organization_id=project.organization_id).select_related("user")
    return [m.user for m in memberships if set(m.functions or []) & set(functions)]


# --- follow-ups --------------------------------------------------------------------------------


def follow_up_close_refusal(follow_up: FollowUp, *, user_id: int | None, functions) -> ApplicationError | None:
    """Why this person may not close `follow_up`, or None if they may."""
    decision = follow_up.decision
    # A condition is the approver's: closing it is their call, or a colleague's in the same function.
    # An org token is nobody, and never may (a personal token acts as its person).
    if user_id is None or not (user_id == decision.decided_by_id or decision.function in functions):
        return ApplicationError(
            f"Only the approver who set this condition, or someone holding the {decision.function} function, "
            "can close it.",
            code="forbidden",
            status=403,
        )
    return None


@transaction.atomic
def follow_up_close(*, access: Access, follow_up: FollowUp, note: str = "") -> FollowUp:
    project = follow_up.project
    require_writer(access, project.organization_id)
    follow_up = FollowUp.objects.select_for_update().select_related("decision").get(pk=follow_up.pk)
    refusal = follow_up_close_refusal(
        follow_up, user_id=getattr(access.user, "pk", None), functions=member_functions(access, project.organization_id)
    )
    if refusal is not None:
        raise refusal
    if follow_up.status == FollowUpStatus.DONE:
        raise ApplicationError("The follow-up is already done.", code="conflict", status=409)
    follow_up.status, follow_up.closed_at, follow_up.note = FollowUpStatus.DONE, timezone.now(), note.strip()[:500]
    follow_up.closed_by = access.user
    follow_up.save()
    audit_record(
        access=access,
        organization_id=project.organization_id,
        action="follow_up.done",
        obj=follow_up,
        changes={"status": [FollowUpStatus.OPEN, FollowUpStatus.DONE], "note": [None, follow_up.note]},
    )
    readiness_changed(project)
    return follow_up
