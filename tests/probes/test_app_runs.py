"""Probe plans and runs in the app: services, limits, idempotent start, and real Celery workers.

What must survive is said per test: a cancelled or crashed run keeps what it measured; a
redelivered task adds nothing; a refused plan leaves nothing behind.
"""

import time

import pytest
from django.urls import reverse

from apps.core.errors import ApplicationError
from apps.probes import plans, services
from apps.probes.engine.stats import SLO, summarize
from apps.probes.execution import shard_execute
from apps.probes.models import ProbeLimits, ProbeRecordBatch, ProbeRun, ProbeShard, RunStatus
from apps.probes.selectors import run_records
from apps.projects import services as project_services
from tests.conftest import api_client_for, wait_for

pytestmark = pytest.mark.django_db


def poisson(rate=20, duration=3):
    return {"stages": [{"kind": "poisson", "rate": rate, "duration": duration}]}


@pytest.fixture
def sim_endpoint(world, simulator):
    return project_services.endpoint_update(
        access=world.access(world.owner),
        endpoint=world.endpoint,
        base_url=simulator.base_url,
        metrics_url=simulator.base_url.removesuffix("/v1") + "/metrics",
    )


def make_plan(world, endpoint, **fields):
    defaults = {"name": "smoke", "profile": poisson(), "max_tokens": 8, "slo": {"ttft_p95_ms": 1000}}
    return services.probe_plan_create(access=world.access(world.owner), endpoint=endpoint, **{**defaults, **fields})


# --- plans and limits ------------------------------------------------------------------------


def test_plan_validation_names_the_field_and_the_limit(world):
    access = world.access(world.owner)
    cases = [
        ({"profile": {"stages": []}}, "profile", "empty"),
        ({"profile": poisson(rate=100000)}, "profile", "max rate"),
        (
            {"profile": {"stages": [{"kind": "concurrent", "concurrency": 100000, "duration": 5}]}},
            "profile",
            "max concurrency",
        ),
        ({"profile": poisson(duration=10**6)}, "profile", "max duration"),
        ({"slo": "ttft_p95=500"}, "slo", "unit"),
        ({"slo": {"ttft_p95": 5}}, "slo", "Unknown SLO"),
        ({"parallelism": 99}, "parallelism", "limit"),
        ({"profile": {"sweep": {"start_rate": 1}}, "parallelism": 2}, "parallelism", "one worker"),
        ({"schedule_cron": "every day"}, "schedule_cron", "5 fields"),
        ({"metrics_url": "ftp://x"}, "metrics_url", "http"),
        ({"prompts_jsonl": "{not json"}, "prompts_jsonl", "line 1"),
    ]
    for fields, field, words in cases:
        with pytest.raises(ApplicationError) as info:
            services.probe_plan_create(
                access=access, endpoint=world.endpoint, **{"name": "p", "profile": poisson(), **fields}
            )
        assert field in info.value.detail, fields
        assert words in " ".join(info.value.detail[field]), (fields, info.value.detail)
    assert world.endpoint.probe_plans.count() == 0


def test_an_org_override_lowers_the_limit_and_a_run_beyond_it_is_refused(world):
    plan = make_plan(world, world.endpoint, profile=poisson(rate=50))
    services.probe_limits_update(access=world.access(world.owner), org=world.org, max_rate=10)
    with pytest.raises(ApplicationError, match="max rate of 10/s"):
        services.probe_run_start(access=world.access(world.owner), plan=plan)
    assert plan.runs.count() == 0
    with pytest.raises(ApplicationError, match="Only owners and admins"):
        services.probe_limits_update(access=world.access(world.member), org=world.org, max_rate=1000)


def test_a_used_up_daily_request_budget_refuses_new_runs(world):
    plan = make_plan(world, world.endpoint)
    ProbeLimits.objects.create(organization=world.org, max_requests_per_day=100)
    run = services.probe_run_start(access=world.access(world.owner), plan=plan)
    ProbeRun.objects.filter(pk=run.pk).update(request_count=100, status="succeeded")
    response = api_client_for(world.owner).post(reverse("api:probeplan-start", kwargs={"pk": plan.pk}))
    assert response.status_code == 429
    assert "max requests per day (100)" in response.json()["error"]["message"]


def test_a_run_still_going_counts_toward_the_daily_budget_by_what_it_reserved(world):
    plan = make_plan(world, world.endpoint, max_tokens=10)  # poisson 20/s for 3 s: about 60 requests
    ProbeLimits.objects.create(organization=world.org, max_requests_per_day=1000, max_tokens_per_day=1000)
    run = services.probe_run_start(access=world.access(world.owner), plan=plan)
    reserved = run.config["max_requests"]
    assert 60 <= reserved <= 100, "its schedule with headroom, not the whole day"
    assert services.usage_today(world.org.pk) == (reserved, reserved * 10)
    # Finished, it counts what it really sent.
    ProbeRun.objects.filter(pk=run.pk).update(status="succeeded", request_count=7, output_tokens=70)
    assert services.usage_today(world.org.pk) == (7, 70)
    assert services.usage_today(world.other_org.pk) == (0, 0)  # another org's budget is its own


def test_twenty_starts_against_a_budget_of_ten_requests_never_reserve_more_than_ten(world):
    """What must survive: the day's budget. Every start reserves its hard stop (a closed loop at
    most 1/3 of what is left, 3 runs being allowed at once), so together the accepted runs' shards
    may send at most 10 requests, and the other starts are refused."""
    plan = make_plan(
        world,
        world.endpoint,
        parallelism=8,
        profile={"stages": [{"kind": "concurrent", "concurrency": 512, "duration": 3600}]},
    )
    ProbeLimits.objects.create(organization=world.org, max_requests_per_day=10)
    accepted, refused = [], 0
    for _ in range(20):
        try:
            accepted.append(services.probe_run_start(access=world.access(world.owner), plan=plan))
        except ApplicationError as exc:
            assert exc.status == 429
            refused += 1
    assert refused == 20 - len(accepted) >= 17
    shares = [
        plans.engine_config(run.config, api_key=None, allow_private=True, shard_index=i, shard_count=8)[0].max_requests
        for run in accepted
        for i in range(8)
    ]
    assert sum(shares) == sum(run.config["max_requests"] for run in accepted) <= 10
    assert ProbeShard.objects.filter(run__in=accepted).count() == 8 * len(accepted)


def test_the_engine_stops_at_the_reserved_budget(world, sim_endpoint):
    plan = make_plan(
        world, sim_endpoint, profile={"stages": [{"kind": "concurrent", "concurrency": 4, "duration": 30}]}
    )
    ProbeLimits.objects.create(organization=world.org, max_requests_per_day=12)
    run = services.probe_run_start(access=world.access(world.owner), plan=plan)
    assert run.config["max_requests"] == 4, "a closed loop may take 1/3 of what is left (3 runs at once)"
    shard_execute(shard_id=run.shards.get().pk, org_id=world.org.pk)
    run.refresh_from_db()
    assert run.request_count == 4
    assert run.finished_at is not None


def test_an_org_has_at_most_a_few_runs_queued_or_running_at_once(world, settings):
    settings.READINESS_PROBE_MAX_ACTIVE_RUNS = 2
    plan = make_plan(world, world.endpoint)
    first = services.probe_run_start(access=world.access(world.owner), plan=plan)
    services.probe_run_start(access=world.access(world.owner), plan=plan)
    with pytest.raises(ApplicationError, match="at most 2 at once") as info:
        services.probe_run_start(access=world.access(world.owner), plan=plan)
    assert info.value.status == 429
    services.probe_run_cancel(access=world.access(world.owner), run=first)
    ProbeRun.objects.filter(pk=first.pk).update(status="cancelled")
    assert services.probe_run_start(access=world.access(world.owner), plan=plan).pk  # room again


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("max_tokens", 2_000_000_000, "between 1 and 131072"),
        ("prompt_tokens", 2_000_000_000, "between 1 and 262144"),
        ("request_timeout_s", -1, "between 0 and 3600"),
        ("request_timeout_s", 1e300, "between 0 and 3600"),
        ("request_timeout_s", 0, "above 0"),
        ("request_timeout_s", float("nan"), "finite"),
        ("warmup_s", float("inf"), "finite"),
        ("seed", -5, "between 0"),
        ("regression_threshold_pct", 1e9, "between 0 and 10000"),
        ("max_tokens", 1.5, "whole"),
    ],
)
def test_every_number_of_a_plan_is_bounded_with_a_named_error(world, field, value, words):
    with pytest.raises(ApplicationError) as info:
        make_plan(world, world.endpoint, **{field: value})
    assert words in " ".join(info.value.detail[field])
    assert world.endpoint.probe_plans.count() == 0


def test_a_sweep_never_steps_past_the_orgs_max_rate(world, sim_endpoint):
    plan = make_plan(
        world,
        sim_endpoint,
        profile={"sweep": {"start_rate": 4, "growth": 4, "step_duration": 1.2, "step_warmup": 0.2, "max_steps": 4}},
    )
    services.probe_limits_update(access=world.access(world.owner), org=world.org, max_rate=10)
    run = services.probe_run_start(access=world.access(world.owner), plan=plan)
    shard_execute(shard_id=run.shards.get().pk, org_id=world.org.pk)
    run.refresh_from_db()
    rates = [step["offered_rate"] for step in run.summary["sweep"]["steps"]]
    assert rates == [4, 10], "4, then 16 clamped to the limit, where the search stops"
    assert run.summary["sweep"]["stopped_at_max_rate"] is True


def test_a_cron_schedule_creates_a_beat_entry_that_follows_the_plan(world):
    from django_celery_beat.models import PeriodicTask

    plan = make_plan(world, world.endpoint, schedule_cron="0 6 * * 1-5")
    task = PeriodicTask.objects.get(pk=plan.periodic_task_id)
    assert task.task == "apps.probes.tasks.scheduled_probe_task"
    assert task.args == f"[{plan.pk}, {world.org.pk}]"
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "6", "1-5")
    services.probe_plan_update(access=world.access(world.owner), plan=plan, schedule_cron="")
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()


def test_the_scheduled_task_ignores_a_plan_of_another_org(world):
    from apps.probes.tasks import scheduled_probe_task

    plan = make_plan(world, world.endpoint)
    scheduled_probe_task(plan.pk, world.other_org.pk)
    assert plan.runs.count() == 0
    scheduled_probe_task(plan.pk, world.org.pk)
    assert plan.runs.get().trigger == "schedule"


def test_one_schedule_tick_sent_twice_starts_one_run_and_the_next_tick_another(world):
    # Two beats running by mistake send each tick twice; the second copy must not start a run.
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from apps.probes.tasks import scheduled_probe_task

    plan = make_plan(world, world.endpoint)
    scheduled_probe_task(plan.pk, world.org.pk)
    scheduled_probe_task(plan.pk, world.org.pk)
    assert plan.runs.count() == 1
    ProbeRun.objects.filter(plan=plan).update(status="succeeded")  # finished: the next tick may start
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        scheduled_probe_task(plan.pk, world.org.pk)
    assert plan.runs.count() == 2


def test_api_start_with_an_idempotency_key_starts_one_run(world, tokens):
    plan = make_plan(world, world.endpoint)
    client = api_client_for(token=tokens["read_write"])
    url = reverse("api:probeplan-start", kwargs={"pk": plan.pk})
    first = client.post(url, HTTP_IDEMPOTENCY_KEY="nightly-2026-11-27")
    second = client.post(url, HTTP_IDEMPOTENCY_KEY="nightly-2026-11-27")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second["Idempotent-Replayed"] == "true"
    assert plan.runs.count() == 1
    assert ProbeShard.objects.filter(run__plan=plan).count() == 1


def test_api_plan_crud_with_clear_errors(world):
    client = api_client_for(world.member)
    url = reverse("api:probeplan-list")
    bad = client.post(url, {"endpoint": world.endpoint.pk, "name": "x", "profile": {"stages": []}}, format="json")
    assert bad.status_code == 400 and "profile" in bad.json()["error"]["detail"]
    created = client.post(
        url,
        {"endpoint": world.endpoint.pk, "name": "x", "profile": poisson(), "slo": "ttft_p95=500ms,error_rate=1%"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["slo"] == {"ttft_p95_ms": 500.0, "error_rate": 0.01}
    detail = reverse("api:probeplan-detail", kwargs={"pk": created.json()["id"]})
    assert client.patch(detail, {"parallelism": 2}, format="json").json()["parallelism"] == 2
    assert client.delete(detail).status_code == 204
    foreign = client.post(url, {"endpoint": world.other_endpoint.pk, "name": "x", "profile": poisson()}, format="json")
    assert foreign.status_code == 400 and "endpoint" in foreign.json()["error"]["detail"]


# --- execution without a worker process (the task body, called directly) ---------------------


def test_a_shard_runs_against_the_simulator_and_the_run_is_summarized(world, sim_endpoint):
    plan = make_plan(world, sim_endpoint, parallelism=2)
    run = services.probe_run_start(access=world.access(world.owner), plan=plan)
    for shard in run.shards.all():
        shard_execute(shard_id=shard.pk, org_id=world.org.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    records = run_records(run)
    assert run.request_count == len(records) > 20
    # The stored summary is the summary of all shards' records merged, not an average of shards.
    expected = summarize(records, plans.windows_for(run.config), SLO(**run.config["slo"]))
    assert run.summary["overall"] == expected["overall"]
    assert sorted(records.stage) == [0] * len(records)
    assert run.server_metrics["scrapes"] >= 1
    assert run.timeline["offered_rps"] and max(run.timeline["offered_rps"]) > 0


def test_a_redelivered_or_foreign_task_adds_nothing(world, sim_endpoint):
    plan = make_plan(world, sim_endpoint)
    run = services.probe_run_start(access=world.access(world.owner), plan=plan)
    shard = run.shards.get()
    shard_execute(shard_id=shard.pk, org_id=world.other_org.pk)  # another org's id: not found
    assert ProbeShard.objects.get(pk=shard.pk).status == "queued"
    shard_execute(shard_id=shard.pk, org_id=world.org.pk)
    batches = ProbeRecordBatch.objects.filter(shard=shard).count()
    count = ProbeRun.objects.get(pk=run.pk).request_count
    shard_execute(shard_id=shard.pk, org_id=world.org.pk)  # redelivery
    assert ProbeRecordBatch.objects.filter(shard=shard).count() == batches
    assert ProbeRun.objects.get(pk=run.pk).request_count == count


def test_the_reaper_fails_a_silent_shard_and_keeps_its_records(world, sim_endpoint):
    from datetime import timedelta

    from django.utils import timezone

    from apps.probes.engine.records import OK, TOKENS_USAGE, Records

    plan = make_plan(world, sim_endpoint)
    run = services.probe_run_start(access=world.access(world.owner), plan=plan)
    shard = run.shards.get()
    old = timezone.now() - timedelta(minutes=5)
    ProbeShard.objects.filter(pk=shard.pk).update(status="running", heartbeat_at=old, claimed_at=old)
    part = Records()
    part.append(0.1, 0.1, 0.15, 0.3, 10, 8, 8, OK, TOKENS_USAGE, 0, 0)
    ProbeRecordBatch.objects.create(shard=shard, sequence=0, count=1, data=part.to_bytes())
    assert services.probe_runs_reap() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "worker lost" in run.error_message
    assert run.request_count == 1 and run.summary["overall"]["requests"] == 1


# --- real Celery workers ---------------------------------------------------------------------


@pytest.mark.worker
def test_a_worker_runs_a_two_shard_plan_whose_summary_is_the_merge_of_all_records(world, sim_endpoint, probe_worker):
    plan = make_plan(world, sim_endpoint, parallelism=2, profile=poisson(rate=30, duration=4))
    run = services.probe_run_start(access=world.access(world.owner), plan=plan)
    wait_for(lambda: ProbeRun.objects.get(pk=run.pk).status in ("succeeded", "failed", "cancelled"), timeout=90)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    shards = list(run.shards.all())
    assert {s.status for s in shards} == {"done"} and all(s.batches.exists() for s in shards)
    records = run_records(run)
    expected = summarize(records, plans.windows_for(run.config), SLO(**run.config["slo"]))
    assert run.summary["overall"] == expected["overall"]
    assert run.summary["overall"]["requests"] > 60


@pytest.mark.worker
def test_cancel_stops_a_running_probe_within_seconds_and_keeps_its_records(world, sim_endpoint, probe_worker):
    plan = make_plan(world, sim_endpoint, profile=poisson(rate=20, duration=60))
    run = services.probe_run_start(access=world.access(world.owner), plan=plan)
    wait_for(lambda: ProbeRecordBatch.objects.filter(shard__run=run).exists(), timeout=60)
    services.probe_run_cancel(access=world.access(world.owner), run=ProbeRun.objects.get(pk=run.pk))
    started = time.monotonic()
    wait_for(lambda: ProbeRun.objects.get(pk=run.pk).status == "cancelled", timeout=20)
    assert time.monotonic() - started < 10
    run.refresh_from_db()
    assert run.request_count > 0 and run.summary["cancelled"] is True


@pytest.mark.worker
def test_a_killed_worker_leaves_a_failed_run_with_its_records(world, sim_endpoint, probe_worker):
    from datetime import timedelta

    from django.utils import timezone

    plan = make_plan(world, sim_endpoint, profile=poisson(rate=20, duration=60))
    run = services.probe_run_start(access=world.access(world.owner), plan=plan)
    wait_for(lambda: ProbeRecordBatch.objects.filter(shard__run=run).exists(), timeout=60)
    probe_worker.kill()  # SIGKILL: no cleanup, no final flush
    assert ProbeRun.objects.get(pk=run.pk).status == "running"
    services.probe_runs_reap(now=timezone.now() + timedelta(minutes=5))
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "worker lost" in run.error_message
    assert run.request_count > 0  # what was flushed before the kill survives


def test_the_project_page_shows_each_plans_latest_run_and_trend(client, world):
    plan = make_plan(world, world.endpoint)
    overall = {"ttft_ms": {"p95": 100.0}, "e2e_ms": {"p99": 900.0}, "output_token_throughput": 50.0}
    runs = [services.probe_run_start(access=world.access(world.owner), plan=plan) for _ in range(2)]
    ProbeRun.objects.filter(pk__in=[r.pk for r in runs]).update(status="succeeded", summary={"overall": overall})
    client.force_login(world.viewer)
    page = client.get(reverse("project-detail", kwargs={"org_slug": "acme", "slug": world.project.slug}))
    text = page.content.decode()
    assert f'href="/o/acme/runs/{runs[-1].pk}/"' in text and "succeeded" in text
    assert f'id="fig-trend-{plan.pk}"' in text and "plotly.min.js" in text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1, 0, 1e300, True, "10"])
def test_an_org_limit_must_be_a_positive_finite_number(world, value):
    with pytest.raises(ApplicationError) as info:
        services.probe_limits_update(access=world.access(world.owner), org=world.org, max_rate=value)
    assert "max_rate" in info.value.detail
    assert not ProbeLimits.objects.filter(organization=world.org, max_rate__isnull=False).exists()
