"""A change re-decides through one queued task, sent once the change is committed; a finished run's
follow-ups (the decision, the announcement, a scheduled report) are tasks of their own.

What must survive: a change made while a re-evaluation waits in the queue is read by it; a
message delivered twice publishes one scheduled report; nothing is queued before the commit."""

import uuid

import pytest
from celery.signals import before_task_publish
from django.core.cache import cache

from apps.checklists import services as checklists
from apps.checklists.models import ChecklistTemplate
from apps.orgs.access import Access
from apps.probes import services as probes
from apps.projects import services as projects
from apps.reports.models import ProjectStatus, Report
from apps.reports.refresh import pending_key, refresh_pending, running
from apps.reports.tasks import project_refresh_task, scheduled_report_task
from tests.conftest import api_client_for, wait_for
from tests.readiness_helpers import run_until_evidence, small_plan

REFRESH = "apps.reports.tasks.project_refresh_task"


@pytest.fixture
def published():
    """Every task message this process hands to the broker: (task name, args, queue)."""
    sent = []

    def record(sender=None, body=None, routing_key=None, **kwargs):
        sent.append((sender, list(body[0]), routing_key))

    before_task_publish.connect(record, weak=False)
    yield sent
    before_task_publish.disconnect(record)


@pytest.fixture
def unconsumed_queue(settings):
    """A decision queue no worker reads: the test runs the task itself, as the worker would."""
    settings.READINESS_DECISION_QUEUE = f"test-unread-{uuid.uuid4().hex[:8]}"
    return settings.READINESS_DECISION_QUEUE


def test_many_changes_queue_one_re_evaluation_once_committed_and_it_reads_them_all(
    world, published, unconsumed_queue, django_capture_on_commit_callbacks
):
    owner = world.access(world.owner)
    project = world.project
    cache.delete(pending_key(project.pk))
    checklists.ensure_shipped_templates(world.org)
    security = ChecklistTemplate.objects.get(organization=world.org, key="security")
    with django_capture_on_commit_callbacks(execute=True):
        projects.project_update(access=owner, project=project, monthly_budget_usd=100, expected_peak_rpm=10)
        checklist = checklists.checklist_add(access=owner, project=project, template=security)
        assert published == []  # nothing before the commit: a task must read committed rows
    assert published == [(REFRESH, [project.pk], unconsumed_queue)]
    assert refresh_pending(project.pk)
    # Queued and not started: a further change rides on it.
    with django_capture_on_commit_callbacks(execute=True):
        response = checklists.current_responses(checklist).get(item__key="sec.sensitive-data")
        checklists.response_answer(access=owner, response=response, status="fail", evidence_text="PII in logs")
    assert len(published) == 1

    with running(project.pk):  # the task has started and not yet stored its decision
        assert refresh_pending(project.pk) and cache.get(pending_key(project.pk)) is None
    assert project_refresh_task(project.pk) == "NO-GO"  # the worker
    assert not refresh_pending(project.pk)
    reasons = [r["message"] for r in ProjectStatus.objects.get(project=project).reasons]
    assert any("Sensitive data" in m and "failed" in m for m in reasons)  # the change made while queued
    # Started: the next change queues the next re-evaluation.
    with django_capture_on_commit_callbacks(execute=True):
        projects.project_update(access=owner, project=project, monthly_budget_usd=200)
    assert published[1:] == [(REFRESH, [project.pk], unconsumed_queue)]


def test_a_rolled_back_change_queues_nothing(world, published, unconsumed_queue, django_capture_on_commit_callbacks):
    cache.delete(pending_key(world.project.pk))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        projects.project_update(access=world.access(world.owner), project=world.project, monthly_budget_usd=5)
    assert callbacks and published == []  # queued only by the commit, which a rollback never reaches
    assert not refresh_pending(world.project.pk)


def test_the_re_evaluation_of_a_deleted_project_does_nothing(db):
    assert project_refresh_task(987_654) is None


def test_a_scheduled_report_is_published_once_and_never_for_a_manual_run(world, simulator):
    owner = world.access(world.owner)
    plan = small_plan(world, simulator)
    manual = run_until_evidence(access=owner, plan=plan)
    assert scheduled_report_task(manual.pk) is None and not Report.objects.exists()
    scheduled = probes.probe_run_start(access=Access.system(), plan=plan, trigger="schedule")
    from apps.probes.execution import shard_execute

    for shard in scheduled.shards.all():
        shard_execute(shard_id=shard.pk, org_id=world.org.pk)
    scheduled.refresh_from_db()
    assert scheduled.status == "succeeded"
    assert scheduled_report_task(scheduled.pk) == 1
    assert scheduled_report_task(scheduled.pk) is None  # the same message delivered twice
    assert list(Report.objects.values_list("trigger", flat=True)) == ["schedule"]


@pytest.mark.worker
def test_a_worker_re_decides_after_a_change_over_the_api_and_the_api_says_while_it_waits(decision_worker, world):
    client = api_client_for(world.owner)
    # The worker is up before the project exists: its creation queued the first evaluation.
    wait_for(lambda: ProjectStatus.objects.filter(project=world.project).exists(), timeout=60)
    checklists.ensure_shipped_templates(world.org)
    security = ChecklistTemplate.objects.get(organization=world.org, key="security")
    added = client.post("/api/v1/checklists/", {"project": world.project.pk, "template": security.pk}, format="json")
    assert added.status_code == 201, added.json()

    def decided():
        body = client.get(f"/api/v1/projects/{world.project.pk}/readiness/").json()
        codes = {r["code"] for r in body["reasons"]}
        return body if not body["refreshing"] and "blocker_pending" in codes else None

    body = wait_for(decided, timeout=60)
    assert body["outcome"] == "NO-GO" and body["age_s"] is not None


@pytest.mark.worker
def test_a_scheduled_run_on_a_worker_ends_with_its_report_and_the_decision_reading_it(world, simulator, probe_worker):
    plan = small_plan(world, simulator)
    run = probes.probe_run_start(access=Access.system(), plan=plan, trigger="schedule")
    report = wait_for(lambda: Report.objects.filter(project=world.project).first(), timeout=90)
    run.refresh_from_db()
    assert report.trigger == "schedule" and run.status == "succeeded"
    assert report.snapshot["probes"], report.snapshot.keys()
    status = wait_for(
        lambda: ProjectStatus.objects.filter(project=world.project, evaluated_at__gte=run.finished_at).first()
    )
    assert all(r["code"] != "probe_missing" for r in status.reasons) or run.summary.get("client_saturated")


def test_a_decision_of_an_earlier_day_reads_as_being_re_evaluated_until_it_is(client, world):
    """Waivers expire and probes age by the date: yesterday's GO is not presented as today's."""
    from datetime import timedelta

    from django.utils import timezone

    project_refresh_task(world.project.pk)
    api = api_client_for(world.owner)
    url = f"/api/v1/projects/{world.project.pk}/readiness/"
    assert api.get(url).json()["refreshing"] is False
    ProjectStatus.objects.filter(project=world.project).update(evaluated_at=timezone.now() - timedelta(days=1))
    assert api.get(url).json()["refreshing"] is True
    client.force_login(world.viewer)
    page = client.get(f"/o/acme/projects/{world.project.slug}/readiness/").content.decode()
    assert 'data-testid="refreshing"' in page and 'http-equiv="refresh"' in page
    project_refresh_task(world.project.pk)  # beat's midnight re-evaluation
    assert api.get(url).json()["refreshing"] is False


def test_beat_re_decides_every_project_at_midnight_utc(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["readiness-midnight"]
    assert entry["task"] == "apps.reports.tasks.readiness_refresh_task"
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({0}, {0})
    assert getattr(settings, "CELERY_TIMEZONE", "UTC") == settings.TIME_ZONE == "UTC"  # the decisions' date
