"""Gather a project's evidence from the apps that own it: checklist answers and waivers, the
latest run of each probe plan with its verdict, and the cost projection against the budget."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone

from apps.checklists.models import Checklist, WaiverStatus
from apps.checklists.services import current_responses
from apps.costs.services import cost_for
from apps.evidence.inputs import Cost, Evidence, Item, Probe, Waiver
from apps.probes.models import ProbeRun
from apps.probes.selectors import latest_runs
from apps.probes.verdict import verdict_for


def page_url(name: str, project, **kwargs) -> str:
    return reverse(name, kwargs={"org_slug": project.organization.slug, **kwargs})


def counting_waiver(response) -> Waiver | None:
    """The approved waiver that counts (latest expiry), or None. Revoked and rejected ones never count."""
    approved = [w for w in response.waivers.all() if w.status == WaiverStatus.APPROVED]
    if not approved:
        return None
    best = max(approved, key=lambda w: w.expires_on)
    return Waiver(expires_on=best.expires_on)


def _price(value):
    return float(value) if value is not None else None


def project_evidence(project, *, runs: list[ProbeRun] | None = None, cost: dict | None = None, today=None) -> Evidence:
    """The project's evidence today. A caller that already read `runs` (`latest_runs`) passes
    them with their `cost` (`cost_for`); otherwise both are read here, so a sign-off fingerprints
    the same cost position as the decision it is weighed in."""
    if runs is None:
        runs = latest_runs(project)
        cost = cost_for(project, runs)
    items = []
    for checklist in Checklist.objects.filter(project=project).select_related("template"):
        url = page_url("checklist-detail", project, pk=checklist.pk)
        for r in current_responses(checklist).prefetch_related("waivers"):
            items.append(
                Item(
                    key=r.item.key,
                    title=r.item.title,
                    category=checklist.template.category,
                    severity=r.item.severity,
                    status=r.status,
                    waiver=counting_waiver(r),
                    url=f"{url}#item-{r.item.key}",
                    function=r.item.function,
                )
            )
    probes = []
    for run in runs:
        verdict = verdict_for(run)  # the same verdict as the run's page, the API and the webhooks
        probes.append(
            Probe(
                plan=run.plan.name,
                finished_on=timezone.localdate(run.finished_at),
                slo_met=verdict.slo_met,
                missed=verdict.missed,
                not_evidence="" if verdict.evidence else verdict.label,
                url=page_url("run-detail", project, pk=run.pk),
            )
        )
    readiness_url = page_url("project-readiness", project, slug=project.slug)
    return Evidence(
        today=today or timezone.localdate(),
        items=tuple(items),
        probes=tuple(probes),
        cost=Cost(
            projected_monthly_usd=(cost or {}).get("projected_monthly_usd"),
            budget_usd=_price(project.monthly_budget_usd),
            url=f"{readiness_url}#cost",
        ),
    )
