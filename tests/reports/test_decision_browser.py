"""The decision and a run's verdict as a person sees them, in headless Chromium (Debian's package)."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.checklists import services as checklists
from apps.checklists.models import ChecklistTemplate
from apps.probes import services as probes
from apps.probes.models import ProbeRun
from apps.reports.evaluation import refresh_project
from tests.browser import log_in, settled

pytestmark = pytest.mark.browser


def finished_run(plan, status, summary, requests):
    now = timezone.now()
    run = ProbeRun.objects.create(
        organization=plan.endpoint.project.organization,
        plan=plan,
        status=status,
        config={"profile": plan.profile},
        planned_duration_s=60,
        start_at=time.time(),
        started_at=now - timedelta(seconds=9),
        finished_at=now,
        summary=summary,
        request_count=requests,
    )
    probes._after_run(run)
    return run


def summary(**extra):
    overall = {
        "requests": 300,
        "errors": {},
        "error_rate": 0.0,
        "ttft_ms": {"p95": 640.0},
        "tpot_ms": {"p95": 20.0},
        "e2e_ms": {"p99": 2000.0},
        "schedule_lag_ms": {"p99": 0.4},
        "output_token_throughput": 900.0,
    }
    return {
        "overall": overall,
        "stages": [],
        "slo_checks": [{"slo": "ttft_p95_ms", "target": 800, "actual": 640.0, "ok": True}],
        "slo_met": True,
        "client_saturated": False,
        "saturation_threshold_ms": 5.0,
        "event_loop_lag_ms": {"p99": 0.5},
        "error_details": {},
        **extra,
    }


def test_a_project_without_checklists_reads_no_go_until_its_required_checklists_exist(
    page, live_server, world, decision_worker
):
    refresh_project(world.project)
    log_in(page, live_server.url, "owner")
    page.goto(live_server.url + "/o/acme/projects/support-copilot/readiness/")
    assert page.inner_text("[data-testid=decision]") == "NO-GO"
    reasons = page.inner_text("[data-testid=reasons]")
    assert "the project has no checklist yet" in reasons and "Every blocker passes" not in reasons
    checklists.ensure_shipped_templates(world.org)
    security = ChecklistTemplate.objects.get(organization=world.org, key="security")
    checklists.checklist_add(access=world.access(world.owner), project=world.project, template=security)
    page.reload()
    settled(page)  # the page reloads itself until the re-evaluation the change queued has run
    assert "no monitoring, cost, reliability checklist" in page.inner_text("[data-testid=reasons]")
    # The owner narrows the policy on its page; the reason goes away.
    page.click("[data-testid=required-categories] a")
    for category in ("monitoring", "cost", "reliability"):
        page.uncheck(f"input[value={category}]")
    page.click("button:has-text('Save policy')")
    assert page.inner_text("[data-testid=required-categories]") == "security"
    page.goto(live_server.url + "/o/acme/projects/support-copilot/readiness/")
    settled(page)
    assert "checklist: the organization requires" not in page.inner_text("[data-testid=reasons]")


def test_a_cancelled_run_and_a_saturated_run_say_they_are_not_evidence(page, live_server, world, transactional_db):
    plan = probes.probe_plan_create(
        access=world.access(world.owner),
        endpoint=world.endpoint,
        name="baseline",
        profile={"stages": [{"kind": "poisson", "rate": 10, "duration": 60}]},
    )
    cancelled = finished_run(plan, "cancelled", summary(cancelled=True), requests=18)
    saturated = finished_run(plan, "succeeded", summary(client_saturated=True, event_loop_lag_ms={"p99": 12.4}), 300)
    log_in(page, live_server.url, "viewer")
    page.goto(live_server.url + f"/o/acme/runs/{cancelled.pk}/")
    assert "Cancelled after 18 requests: not evidence" in page.inner_text("[data-testid=not-evidence]")
    assert "all SLOs met" not in page.inner_text("main")
    fill = page.eval_on_selector("#progress .fill", "e => e.style.width")
    assert fill != "100%" and page.inner_text("[data-field=percent]") != "100%"
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server.url + f"/o/acme/runs/{saturated.pk}/")
    remedy = page.locator("[data-testid=saturation-remedy]")
    assert remedy.is_visible()
    assert "lagged p99 12.4 ms, over the 5 ms threshold" in remedy.inner_text()
    assert "lower the plan's concurrency or rate" in remedy.inner_text()
