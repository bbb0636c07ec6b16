"""A project's open findings, each with the key its ticket is filed under: what is still wrong.
The integrations app adds the tickets that track each one (its findings API)."""

from __future__ import annotations

from django.utils import timezone

from apps.checklists.models import Checklist, Status
from apps.checklists.services import current_responses
from apps.evidence.collect import counting_waiver, page_url
from apps.probes.selectors import latest_runs
from apps.probes.verdict import MISSED, verdict_for
from apps.signoffs.services import gate_states


def open_findings(project, *, base_url: str = "") -> list[dict]:
    today = timezone.localdate()
    findings = []
    for checklist in Checklist.objects.filter(project=project).select_related("template"):
        url = page_url("checklist-detail", project, pk=checklist.pk)
        for r in current_responses(checklist).prefetch_related("waivers"):
            if r.status in (Status.PASS, Status.NOT_APPLICABLE):
                continue
            waiver = counting_waiver(r)
            findings.append(
                {
                    "key": f"item:{checklist.pk}:{r.item.key}",
                    "kind": "item",
                    "title": r.item.title,
                    "severity": r.item.severity,
                    "function": r.item.function,
                    "status": r.status,
                    "waived_until": waiver.expires_on.isoformat() if waiver and waiver.valid_on(today) else None,
                    "evidence": base_url + f"{url}#item-{r.item.key}",
                }
            )
    readiness = page_url("project-readiness", project, slug=project.slug)
    for gate in gate_states(project):
        if gate.status != "approved":
            findings.append(
                {
                    "key": f"project:{project.pk}:gate:{gate.function}",
                    "kind": "gate",
                    "title": f"{gate.function} sign-off",
                    "status": gate.status,
                    "evidence": base_url + f"{readiness}#gate-{gate.function}",
                }
            )
    for run in latest_runs(project):
        verdict = verdict_for(run)  # an autoscaling run is judged by its recovery, as everywhere
        if verdict.outcome == MISSED:
            missed = list(verdict.missed)
            findings.append(
                {
                    "key": f"plan:{run.plan_id}:slo",
                    "kind": "probe",
                    "status": "fail",
                    "title": f"{run.plan.name}: SLO missed",
                    "missed": missed,
                    "evidence": base_url + page_url("run-detail", project, pk=run.pk),
                }
            )
    return findings
