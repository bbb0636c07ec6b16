"""A project's decision, kept current: gather the evidence, re-run automatic items, mark stale
approvals, decide, and tell people when the decision changes.

`refresh_project` runs in the task queued after every change that can move the decision (an
answer, a waiver, a sign-off, a finished probe run, a project edit; apps/reports/refresh.py), on
beat's clock, and before a report's snapshot; it is idempotent.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.checklists.rules import ProbeEvidence
from apps.checklists.services import evaluate_automatic
from apps.core.events import Event, announce
from apps.core.notify import notify
from apps.core.services import audit_record
from apps.costs.services import cost_for
from apps.evidence.collect import page_url, project_evidence
from apps.orgs.access import Access
from apps.probes.models import ProbeRun
from apps.probes.selectors import latest_runs
from apps.probes.verdict import RUN_KINDS, run_kind, verdict_for
from apps.reports import decision as d
from apps.reports.models import ProjectStatus
from apps.signoffs.services import gate_holders, gate_states, mark_stale


def evidence_by_kind(project, runs: list[ProbeRun]) -> dict[str, ProbeEvidence | None]:
    """The newest finished run of each kind (steady, autoscaling, tenants) for the automatic items: its
    summary when its verdict makes it evidence, else why it is not. `runs` is `latest_runs`."""
    out: dict[str, ProbeEvidence | None] = dict.fromkeys(RUN_KINDS)
    for run in runs:  # newest first
        kind = run_kind(run.config, run.summary)
        if out[kind] is None:
            verdict = verdict_for(run)
            out[kind] = ProbeEvidence(
                summary=run.summary if verdict.evidence else None,
                url=page_url("run-detail", project, pk=run.pk),
                not_evidence="" if verdict.evidence else verdict.label,
            )
    return out


def collect_inputs(project, *, runs: list[ProbeRun] | None = None, cost: dict | None = None, today=None) -> d.Inputs:
    """The decision's inputs: the project's evidence, its gates and the organization's policy."""
    evidence = project_evidence(project, runs=runs, cost=cost, today=today)
    readiness_url = page_url("project-readiness", project, slug=project.slug)
    gates = []
    for g in gate_states(project):
        rejection = g.rejection
        gates.append(
            d.Gate(
                function=g.function,
                required=g.required,
                approvals=g.approvals,
                conditions=tuple(g.open_conditions),
                rejected_reason=(rejection.reason or "rejected") if rejection else "",
                stale=bool(g.stale) and g.approvals < g.required,
                url=f"{readiness_url}#gate-{g.function}",
            )
        )
    return d.Inputs(
        today=evidence.today,
        items=evidence.items,
        gates=tuple(gates),
        probes=evidence.probes,
        cost=evidence.cost,
        probe_max_age_days=settings.READINESS_PROBE_MAX_AGE_DAYS,
        waiver_warning_days=settings.READINESS_WAIVER_WARNING_DAYS,
        required_categories=tuple(project.organization.required_checklist_categories or ()),
    )


def reasons_json(decision: d.Decision) -> list[dict]:
    return [{"level": r.level, "code": r.code, "message": r.message, "evidence": r.evidence} for r in decision.reasons]


@transaction.atomic
def refresh_project(project) -> d.Decision:
    runs = latest_runs(project)
    cost = cost_for(project, runs)
    evaluate_automatic(project, probes=evidence_by_kind(project, runs), cost=cost)
    inputs = collect_inputs(project, runs=runs, cost=cost)
    if mark_stale(project, inputs):
        inputs = collect_inputs(project, runs=runs, cost=cost)
    decision = d.decide(inputs)
    fields = dict(
        outcome=decision.outcome,
        reasons=reasons_json(decision),
        fingerprint=d.fingerprint(inputs),
        categories=d.category_scores(inputs.items, inputs.today),
    )
    # get_or_create survives two first evaluations at once (a worker and a page); then lock the row.
    status, created = ProjectStatus.objects.get_or_create(
        project=project, defaults={**fields, "changed_at": timezone.now()}
    )
    before = None
    if not created:
        status = ProjectStatus.objects.select_for_update().get(pk=status.pk)
        before = status.outcome
        for name, value in fields.items():
            setattr(status, name, value)
        if before != decision.outcome:
            status.changed_at = timezone.now()
        status.save()
    if before is not None and before != decision.outcome:
        audit_record(
            access=Access.system(),
            organization_id=project.organization_id,
            action="project.decision",
            obj=project,
            changes={"decision": [before, decision.outcome]},
        )
        announce(
            Event.DECISION_CHANGED,
            project=project,
            finding_key=f"project:{project.pk}:decision",
            data={"from": before, "to": decision.outcome, "reasons": reasons_json(decision)},
        )
        functions = [g.function for g in inputs.gates]
        lines = "\n".join(f"- [{r.level}] {r.message}" for r in decision.reasons) or "- no open findings"
        notify(
            [project.owner, *gate_holders(project, functions)],
            f"{project.name}: decision changed {before} → {decision.outcome}",
            f"The go/no-go decision for {project.name} is now {decision.outcome} (was {before}).\n\n"
            f"Reasons:\n{lines}\n",
        )
    return decision
