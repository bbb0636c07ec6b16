"""Comparing two runs of a plan: the picker, the threshold that decides the colours, and tenancy."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.probes import services as probes
from apps.probes.models import ProbeRun
from apps.probes.selectors import plan_finished_runs, run_comparison

PROFILE = {"stages": [{"kind": "poisson", "rate": 2, "duration": 5}]}


def summary(*, ttft=100.0, tpot=20.0, tps=500.0, error_rate=0.0) -> dict:
    return {
        "overall": {
            "requests": 100,
            "request_throughput": 2.0,
            "output_token_throughput": tps,
            "goodput": 2.0,
            "error_rate": error_rate,
            "ttft_ms": {"p50": ttft / 2, "p95": ttft},
            "tpot_ms": {"p95": tpot},
            "itl_ms": {"p95": tpot},
            "e2e_ms": {"p99": 2000.0},
            "slo_attainment": 1.0,
        }
    }


def finished_run(world, plan, *, status="succeeded", minutes_ago=0, **figures) -> ProbeRun:
    run = probes.probe_run_start(access=world.access(world.owner), plan=plan)
    at = timezone.now() - timedelta(minutes=minutes_ago)
    ProbeRun.objects.filter(pk=run.pk).update(status=status, summary=summary(**figures), created_at=at, finished_at=at)
    run.refresh_from_db()
    return run


@pytest.fixture
def plan(world):
    return probes.probe_plan_create(
        access=world.access(world.owner),
        endpoint=world.endpoint,
        name="baseline",
        profile=PROFILE,
        regression_threshold_pct=10,
    )


def verdicts(response) -> dict[str, str]:
    """The compare table's Change cells: figure -> data-verdict."""
    import re

    html = response.content.decode()
    rows = re.findall(r"<tr><td><bdi>([^<]+)</bdi></td>.*?data-verdict=\"(\w+)\"", html, flags=re.S)
    return dict(rows)


def test_a_one_percent_change_within_a_ten_percent_threshold_is_neutral_and_twenty_five_percent_is_marked(
    client, world, plan
):
    a = finished_run(world, plan, minutes_ago=10, ttft=100.0, tpot=20.0, tps=500.0)
    b = finished_run(world, plan, ttft=99.0, tpot=25.0, tps=625.0)
    rows = {r["figure"]: r for r in run_comparison(a, b)}
    assert rows["TTFT p95 (ms)"]["delta_pct"] == -1.0 and rows["TTFT p95 (ms)"]["verdict"] is None
    assert rows["TPOT p95 (ms)"]["delta_pct"] == 25.0 and rows["TPOT p95 (ms)"]["verdict"] == "worse"
    assert rows["output tokens/s"]["verdict"] == "better"

    client.force_login(world.member)
    response = client.get(reverse("run-compare", kwargs={"org_slug": "acme", "pk": b.pk, "other": a.pk}))
    shown = verdicts(response)
    assert shown["TTFT p95 (ms)"] == "neutral" and shown["TPOT p95 (ms)"] == "worse"
    assert shown["output tokens/s"] == "better"
    assert "within the plan's regression threshold (10 %)" in response.content.decode()


def test_a_change_exactly_at_the_threshold_stays_neutral_like_the_regression_check(world, plan):
    a = finished_run(world, plan, minutes_ago=10, ttft=100.0)
    b = finished_run(world, plan, ttft=110.0)
    assert {r["figure"]: r["verdict"] for r in run_comparison(a, b)}["TTFT p95 (ms)"] is None


def test_any_change_from_zero_is_beyond_the_threshold(world, plan):
    a = finished_run(world, plan, minutes_ago=10, error_rate=0.0)
    b = finished_run(world, plan, error_rate=0.05)
    assert {r["figure"]: r["verdict"] for r in run_comparison(a, b)}["error rate"] == "worse"


def test_the_picker_lists_only_the_plans_finished_runs_newest_first(client, world, plan):
    older = finished_run(world, plan, minutes_ago=30)
    failed = finished_run(world, plan, status="failed", minutes_ago=20)
    newest = finished_run(world, plan, minutes_ago=10)
    running = probes.probe_run_start(access=world.access(world.owner), plan=plan)
    other_plan = probes.probe_plan_create(
        access=world.access(world.owner), endpoint=world.endpoint, name="other", profile=PROFILE
    )
    elsewhere = finished_run(world, other_plan, minutes_ago=5)
    foreign_plan = probes.probe_plan_create(
        access=world.access(world.outsider), endpoint=world.other_endpoint, name="baseline", profile=PROFILE
    )
    foreign = probes.probe_run_start(access=world.access(world.outsider), plan=foreign_plan)

    client.force_login(world.viewer)
    response = client.get(reverse("run-compare", kwargs={"org_slug": "acme", "pk": newest.pk, "other": older.pk}))
    assert [r.pk for r in response.context["choices"]] == [newest.pk, failed.pk, older.pk]
    html = response.content.decode()
    for absent in (running, elsewhere, foreign):
        assert f'value="{absent.pk}"' not in html


def test_the_picker_holds_the_last_hundred_runs(world, plan):
    template = finished_run(world, plan, minutes_ago=500)
    base = timezone.now()
    clones = []
    for i in range(101):
        clone = ProbeRun.objects.get(pk=template.pk)
        clone.pk = None
        clone.created_at = base - timedelta(minutes=i)
        clones.append(clone)
    ProbeRun.objects.bulk_create(clones)
    picked = list(plan_finished_runs(access=world.access(world.viewer), org_id=world.org.pk, plan_id=plan.pk))
    assert len(picked) == 100
    assert picked == sorted(picked, key=lambda r: r.created_at, reverse=True)
    assert template.pk not in {r.pk for r in picked}


def test_picking_two_runs_opens_their_comparison_and_no_pick_compares_the_newest_two(client, world, plan):
    first = finished_run(world, plan, minutes_ago=30)
    second = finished_run(world, plan, minutes_ago=20)
    third = finished_run(world, plan, minutes_ago=10)
    client.force_login(world.viewer)
    url = reverse("plan-compare", kwargs={"org_slug": "acme", "pk": plan.pk})
    response = client.get(url, {"a": first.pk, "b": third.pk})
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "run-compare", kwargs={"org_slug": "acme", "pk": third.pk, "other": first.pk}
    )
    response = client.get(url)
    assert response["Location"] == reverse(
        "run-compare", kwargs={"org_slug": "acme", "pk": third.pk, "other": second.pk}
    )


def test_the_plan_page_links_to_the_comparison_once_two_runs_have_finished(client, world, plan):
    client.force_login(world.viewer)
    url = reverse("plan-detail", kwargs={"org_slug": "acme", "pk": plan.pk})
    finished_run(world, plan, minutes_ago=20)
    assert 'data-testid="compare-runs"' not in client.get(url).content.decode()
    finished_run(world, plan, minutes_ago=10)
    assert reverse("plan-compare", kwargs={"org_slug": "acme", "pk": plan.pk}) in client.get(url).content.decode()


def test_a_run_of_another_organization_or_plan_in_the_compare_urls_is_404(client, world, plan):
    mine = finished_run(world, plan, minutes_ago=10)
    also_mine = finished_run(world, plan)
    other_plan = probes.probe_plan_create(
        access=world.access(world.owner), endpoint=world.endpoint, name="other", profile=PROFILE
    )
    other_plans_run = finished_run(world, other_plan)
    foreign_plan = probes.probe_plan_create(
        access=world.access(world.outsider), endpoint=world.other_endpoint, name="baseline", profile=PROFILE
    )
    foreign = probes.probe_run_start(access=world.access(world.outsider), plan=foreign_plan)
    ProbeRun.objects.filter(pk=foreign.pk).update(status="succeeded", finished_at=timezone.now())

    client.force_login(world.owner)
    compare = lambda pk, other: reverse("run-compare", kwargs={"org_slug": "acme", "pk": pk, "other": other})  # noqa: E731
    assert client.get(compare(also_mine.pk, mine.pk)).status_code == 200
    assert client.get(compare(also_mine.pk, foreign.pk)).status_code == 404
    assert client.get(compare(foreign.pk, mine.pk)).status_code == 404
    assert client.get(compare(also_mine.pk, other_plans_run.pk)).status_code == 404
    picker = reverse("plan-compare", kwargs={"org_slug": "acme", "pk": plan.pk})
    assert client.get(picker, {"a": mine.pk, "b": foreign.pk}).status_code == 404
    assert client.get(picker, {"a": other_plans_run.pk, "b": mine.pk}).status_code == 404
    assert client.get(picker, {"a": "x", "b": mine.pk}).status_code == 404

    client.force_login(world.outsider)
    assert client.get(compare(also_mine.pk, mine.pk)).status_code == 404
    assert client.get(picker, {"a": mine.pk, "b": also_mine.pk}).status_code == 404
    assert client.get(reverse("plan-compare", kwargs={"org_slug": "globex", "pk": plan.pk})).status_code == 404
