"""One run, one verdict across the app: the run's page, the API, the decision, the checklist
rules, the report and the webhooks all read apps/probes/verdict.py."""

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.checklists import services as checklists
from apps.checklists.models import ChecklistTemplate, ItemResponse
from apps.integrations import services as integrations
from apps.integrations.models import Delivery
from apps.probes import services as probes
from apps.probes.models import ProbeRun
from apps.reports.evaluation import collect_inputs
from apps.reports.services import report_create
from tests.conftest import api_client_for
from tests.readiness_helpers import after_run

STEADY_PROFILE = {"stages": [{"kind": "poisson", "rate": 10, "duration": 30}]}
AUTOSCALING_PROFILE = {"autoscaling": {"base_rate": 5, "peak_rate": 40, "base_s": 4, "hold_s": 12, "after_s": 8}}
SLO = {"ttft_p95_ms": 800}


def summary(ttft_p95, *, ok=True, requests=300, **extra):
    """A run summary as probe_run_finalize stores it, with what the rules and the page read."""
    check = {"slo": "ttft_p95_ms", "target": 800, "actual": ttft_p95, "ok": ok}
    overall = {
        "requests": requests,
        "errors": {},
        "error_rate": 0.0,
        "ttft_ms": {"p95": ttft_p95},
        "tpot_ms": {"p95": 20.0},
        "e2e_ms": {"p99": 2000.0},
        "schedule_lag_ms": {"p99": 0.4},
        "output_token_throughput": 900.0,
        "request_throughput": 9.8,
        "goodput": 9.8,
    }
    return {
        "overall": overall,
        "stages": [],
        "slo": SLO,
        "slo_checks": [check],
        "slo_met": ok,
        "client_saturated": False,
        "saturation_threshold_ms": 5.0,
        "event_loop_lag_ms": {"p99": 0.5},
        "cancelled": False,
        "error_details": {},
        **extra,
    }


RECOVERED = {
    "kpis": {
        "t_recover_s": 43.0,
        "recovered_before_step_down": True,
        "t_decide_s": 6.0,
        "t_ready_s": 12.0,
        "slo_violation_s": 40.0,
        "replica_flaps": 0,
        "notes": [],
    },
    "ranking": [],
    "recommendation": {},
    "slo_ttft_p95_ms": 800,
}


def finish(plan, status, data, *, minutes_ago=0, requests=300, regression=None):
    """A run the workers finished, then the tasks probe_run_finalize queues after saving it."""
    when = timezone.now() - timedelta(minutes=minutes_ago)
    run = ProbeRun.objects.create(
        organization=plan.endpoint.project.organization,
        plan=plan,
        status=status,
        config={"profile": plan.profile},
        planned_duration_s=30,
        start_at=time.time(),
        started_at=when - timedelta(seconds=30),
        finished_at=when,
        summary=data,
        request_count=requests,
        regression=regression,
    )
    return after_run(run)


@pytest.fixture
def project(world):
    owner = world.access(world.owner)
    checklists.ensure_shipped_templates(world.org)
    template = ChecklistTemplate.objects.get(organization=world.org, key="reliability")
    checklists.checklist_add(access=owner, project=world.project, template=template)
    integrations.connector_create(
        access=owner,
        organization=world.org,
        name="hooks",
        url="http://127.0.0.1:9/h",
        events=["probe.slo_missed", "probe.regressed", "probe.failed"],
    )
    world.steady = probes.probe_plan_create(
        access=owner, endpoint=world.endpoint, name="baseline", profile=STEADY_PROFILE, slo=SLO
    )
    world.autoscale = probes.probe_plan_create(
        access=owner, endpoint=world.endpoint, name="autoscale", profile=AUTOSCALING_PROFILE, slo=SLO
    )
    return world


def item(world, key):
    return ItemResponse.objects.get(checklist__project=world.project, item__key=key)


def test_an_autoscaling_run_that_recovered_is_met_everywhere_and_sends_no_slo_missed(client, project):
    w = project
    steady = finish(w.steady, "succeeded", summary(640.0), minutes_ago=10)
    assert item(w, "rel.load-test").status == "pass"
    # The step breaches the run-wide p95 on purpose; the deployment recovered while the step was held.
    run = finish(w.autoscale, "succeeded", summary(5200.0, ok=False, autoscaling=RECOVERED))
    assert not Delivery.objects.filter(event="probe.slo_missed").exists()
    # The page, the API, the decision and the report agree.
    client.force_login(w.viewer)
    page = client.get(f"/o/acme/runs/{run.pk}/").content.decode()
    assert 'data-outcome="met"' in page and "latency recovered 43 s after the step" in page
    verdict = api_client_for(w.viewer).get(f"/api/v1/probe-runs/{run.pk}/").json()["verdict"]
    assert (verdict["outcome"], verdict["evidence"], verdict["kind"]) == ("met", True, "autoscaling")
    by_plan = {p.plan: p for p in collect_inputs(w.project).probes}
    assert by_plan["autoscale"].slo_met is True and by_plan["baseline"].slo_met is True
    [entry] = [
        p
        for p in report_create(access=w.access(w.owner), project=w.project).snapshot["probes"]
        if p["plan"] == "autoscale"
    ]
    assert entry["verdict"]["outcome"] == "met" and entry["slo_met"] is True
    # Finishing the autoscaling run did not send the latency items back to pending: they read the steady run.
    load = item(w, "rel.load-test")
    assert (load.status, load.figure) == ("pass", 640.0)
    assert load.evidence_url == f"/o/acme/runs/{steady.pk}/"


def test_an_autoscaling_run_that_did_not_recover_sends_slo_missed_with_the_reason(project):
    never = {**RECOVERED, "kpis": {**RECOVERED["kpis"], "t_recover_s": None}}
    finish(project.autoscale, "succeeded", summary(5200.0, ok=False, autoscaling=never))
    [delivery] = Delivery.objects.filter(event="probe.slo_missed")
    assert delivery.payload["data"]["verdict"]["outcome"] == "missed"
    assert "did not recover" in delivery.payload["data"]["missed"][0]["detail"]


def test_a_cancelled_run_is_not_evidence_on_its_page_and_never_read_by_a_rule(client, project):
    w = project
    finish(w.steady, "succeeded", summary(640.0), minutes_ago=10)
    cancelled = finish(w.steady, "cancelled", summary(9000.0, ok=False, requests=18, cancelled=True), requests=18)
    client.force_login(w.viewer)
    page = client.get(f"/o/acme/runs/{cancelled.pk}/").content.decode()
    assert "all SLOs met" not in page and "Cancelled after 18 requests: not evidence" in page
    assert 'style="width: 100%"' not in page  # the bar shows how far it got
    plan_page = client.get(reverse("plan-detail", args=["acme", w.steady.pk])).content.decode()
    assert plan_page.count('data-testid="not-evidence">not evidence') == 1  # the cancelled run, not the other
    assert item(w, "rel.load-test").figure == 640.0
    assert not Delivery.objects.filter(event="probe.slo_missed").exists()


def test_a_client_saturated_run_says_what_to_do_and_leaves_latency_items_pending(client, project):
    w = project
    lagging = summary(640.0, client_saturated=True, event_loop_lag_ms={"p99": 12.4})
    run = finish(w.steady, "succeeded", lagging)
    load = item(w, "rel.load-test")
    assert load.status == "pending" and "client saturated" in load.explanation
    assert load.evidence_url == f"/o/acme/runs/{run.pk}/"
    client.force_login(w.viewer)
    page = client.get(f"/o/acme/runs/{run.pk}/").content.decode()
    assert 'data-testid="saturation-remedy"' in page and "lagged p99 12.4 ms, over the 5 ms threshold" in page
    assert "lower the plan&#x27;s concurrency or rate" in page


def test_probe_regressed_is_sent_only_for_a_regression(project):
    w = project
    finish(w.steady, "succeeded", summary(640.0), regression={"previous_run": 1, "regressed": False, "findings": []})
    assert not Delivery.objects.filter(event="probe.regressed").exists()
    finish(
        w.steady,
        "succeeded",
        summary(700.0),
        regression={"previous_run": 1, "regressed": True, "findings": ["p95 TTFT up 30%"]},
    )
    [delivery] = Delivery.objects.filter(event="probe.regressed")
    assert delivery.payload["data"]["regression"]["regressed"] is True
