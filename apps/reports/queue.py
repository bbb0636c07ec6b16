""" "Waiting for you": what the signed-in person can act on now, across their organizations.

A read, never a write: the rules are the services' own refusal functions (`waiver_decide_refusal`,
`signoff_refusal`, `follow_up_close_refusal`), asked of rows loaded once for every organization,
so the number of queries stays the same however long the queue grows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse

from apps.checklists.models import Waiver, WaiverStatus
from apps.checklists.services import waiver_decide_refusal
from apps.core.notify import notify
from apps.orgs.access import Access
from apps.orgs.models import Membership, Organization
from apps.projects.models import Project
from apps.reports.models import ProjectStatus
from apps.signoffs.models import FollowUp, FollowUpStatus, SignoffDecision, SignoffPolicy, Verdict
from apps.signoffs.services import APPROVALS, follow_up_close_refusal, gate_states_from, signoff_refusal

WAIVER, GATE, FOLLOW_UP, BLOCKER = "waiver", "gate", "follow_up", "blocker"
KIND_ORDER = {WAIVER: 0, GATE: 1, FOLLOW_UP: 2, BLOCKER: 3}
KIND_LABELS = {
    WAIVER: "Waiver to decide",
    GATE: "Gate to sign",
    FOLLOW_UP: "Follow-up to close",
    BLOCKER: "Failing blocker on your project",
}


@dataclass(frozen=True)
class QueueItem:
    kind: str
    organization: Organization
    project: Project
    title: str  # what to act on, in the person's words
    detail: str  # why it is waiting
    url: str  # the page (and anchor) where the action is
    since: datetime
    object_id: int

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]


def queue_for(*, access: Access) -> list[QueueItem]:
    """Every waiver, gate and follow-up `access`'s person may act on, and failing blockers on the
    projects they own, in the organizations where they may write. An org token is nobody: empty."""
    if access.user is None:
        return []
    # The services refuse a read-only role before anything else (require_writer): a viewer waits for nothing.
    org_ids = sorted(o for o in access.readable_org_ids if access.can_write(o))
    if not org_ids:
        return []
    functions: dict[int, frozenset[str]] = defaultdict(frozenset)
    for org_id, held in Membership.objects.filter(user=access.user, organization_id__in=org_ids).values_list(
        "organization_id", "functions"
    ):
        functions[org_id] = frozenset(held or [])
    items = [
        *_waivers(access, org_ids, functions),
        *_gates(access, org_ids, functions),
        *_follow_ups(access, org_ids, functions),
        *_blockers(access, org_ids),
    ]
    return sorted(items, key=lambda i: (i.organization.name, i.organization.pk, KIND_ORDER[i.kind], i.since))


def _readiness_url(project: Project) -> str:
    return reverse("project-readiness", args=[project.organization.slug, project.slug])


def _waivers(access: Access, org_ids, functions) -> list[QueueItem]:
    waivers = Waiver.objects.filter(
        status=WaiverStatus.REQUESTED, response__checklist__project__organization_id__in=org_ids
    ).select_related("response__item", "response__checklist__project__organization", "requested_by")
    items = []
    for waiver in waivers:
        project = waiver.response.checklist.project
        refusal = waiver_decide_refusal(waiver, user_id=access.user.pk, functions=functions[project.organization_id])
        if refusal is not None:
            continue
        requester = waiver.requested_by.username if waiver.requested_by else "someone"
        url = reverse("checklist-detail", args=[project.organization.slug, waiver.response.checklist_id])
        items.append(
            QueueItem(
                WAIVER,
                project.organization,
                project,
                f"Waive “{waiver.response.item.title}”",
                f"{requester} asks for a {waiver.get_risk_level_display().lower()}-risk waiver until "
                f"{waiver.expires_on.isoformat()}",
                f"{url}#item-{waiver.response.item.key}",
                waiver.created_at,
                waiver.pk,
            )
        )
    return items


def _gates(access: Access, org_ids, functions) -> list[QueueItem]:
    signing_orgs = [o for o in org_ids if functions[o]]  # nobody without a function signs a gate
    if not signing_orgs:
        return []
    policies = {p.organization_id: p for p in SignoffPolicy.objects.filter(organization_id__in=signing_orgs)}
    projects = list(Project.objects.filter(organization_id__in=signing_orgs).select_related("organization"))
    decisions = defaultdict(list)
    for d in (
        SignoffDecision.objects.filter(project__in=projects, superseded_at__isnull=True)
        .select_related("decided_by")
        .prefetch_related("follow_ups")
        .order_by("created_at")
    ):
        decisions[d.project_id].append(d)
    me = access.user.pk
    items = []
    for project in projects:
        # An organization that never saved a policy has the default one (built here, not saved: a read never writes).
        policy = policies.get(project.organization_id) or SignoffPolicy(organization_id=project.organization_id)
        mine = [d for d in decisions[project.pk] if d.decided_by_id == me]
        approved = {d.function for d in mine if d.verdict in APPROVALS and d.stale_at is None}
        for gate in gate_states_from(policy, decisions[project.pk]):
            if gate.status in ("approved", "approved_with_conditions", "rejected"):
                continue
            if any(d.decided_by_id == me for d in gate.current):
                continue  # decided by this person already: the gate waits on someone else
            refusal = signoff_refusal(
                user_id=me,
                functions=functions[project.organization_id],
                project=project,
                function=gate.function,
                verdict=Verdict.APPROVE,
                policy=policy,
                approved_gates=approved,
            )
            if refusal is not None:
                continue
            since = max((d.stale_at for d in gate.stale), default=project.created_at)
            detail = (
                f"the {gate.function} approval is stale: the evidence changed"
                if gate.status == "stale"
                else f"{gate.approvals} of {gate.required} approval{'s' * (gate.required != 1)}"
            )
            items.append(
                QueueItem(
                    GATE,
                    project.organization,
                    project,
                    f"Sign the {gate.function} gate",
                    detail,
                    f"{_readiness_url(project)}#gate-{gate.function}",
                    since,
                    project.pk,
                )
            )
    return items


def _follow_ups(access: Access, org_ids, functions) -> list[QueueItem]:
    follow_ups = FollowUp.objects.filter(
        status=FollowUpStatus.OPEN, project__organization_id__in=org_ids
    ).select_related("decision", "project__organization")
    items = []
    for follow_up in follow_ups:
        project = follow_up.project
        refusal = follow_up_close_refusal(
            follow_up, user_id=access.user.pk, functions=functions[project.organization_id]
        )
        if refusal is not None:
            continue
        items.append(
            QueueItem(
                FOLLOW_UP,
                project.organization,
                project,
                follow_up.text,
                f"a condition of the {follow_up.decision.function} approval",
                _readiness_url(project),
                follow_up.created_at,
                follow_up.pk,
            )
        )
    return items


def _blockers(access: Access, org_ids) -> list[QueueItem]:
    """The stored decision's failing blockers, on projects this person owns: theirs to fix."""
    statuses = ProjectStatus.objects.filter(
        project__owner=access.user, project__organization_id__in=org_ids
    ).select_related("project__organization")
    items = []
    for status in statuses:
        project = status.project
        for reason in status.reasons:
            if reason.get("code") != "blocker_fail":
                continue
            items.append(
                QueueItem(
                    BLOCKER,
                    project.organization,
                    project,
                    reason.get("message", ""),
                    "a failing blocker makes the project NO-GO",
                    reason.get("evidence") or _readiness_url(project),
                    status.evaluated_at,
                    project.pk,
                )
            )
    return items


def queue_digest_send() -> int:
    """Mail each person who can act on something their "waiting for you" list; returns how many
    were mailed. Links start with READINESS_BASE_URL. Run daily by `manage.py send_queue_digest`."""
    base = settings.READINESS_BASE_URL.rstrip("/")
    sent = 0
    users = get_user_model().objects.filter(is_active=True, memberships__isnull=False).exclude(email="").distinct()
    for user in users.order_by("pk"):
        items = queue_for(access=Access.for_user(user))
        if not items:
            continue
        lines = [
            f"- {i.organization.name} · {i.project.name} · {i.kind_label}: {i.title} ({i.detail})\n  {base}{i.url}"
            for i in items
        ]
        body = "What you can act on now:\n\n" + "\n".join(lines) + f"\n\nThe full list: {base}{reverse('queue')}"
        notify([user], f"{len(items)} waiting for you", body)
        sent += 1
    return sent
