import logging

from celery import shared_task

from apps.orgs.access import Access
from apps.probes.models import ProbeRun, RunStatus
from apps.probes.models import Trigger as ProbeTrigger
from apps.projects.models import Project
from apps.reports import refresh
from apps.reports.evaluation import refresh_project
from apps.reports.models import Report, Trigger
from apps.reports.services import report_create

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def project_refresh_task(project_id: int) -> str | None:
    """Re-decide one project after a change (queued by `readiness_changed`, deduplicated). A project
    deleted meanwhile has nothing to decide."""
    with refresh.running(project_id):
        project = Project.objects.select_related("organization", "owner").filter(pk=project_id).first()
        if project is None:
            return None
        return refresh_project(project).outcome


@shared_task(ignore_result=True)
def readiness_refresh_task() -> int:
    """Re-evaluate every project: waivers expire and probes age with the clock alone, and the
    owner and gate holders must hear when that changes a decision. One failing project does not
    stop the others."""
    count = 0
    for project in Project.objects.select_related("organization", "owner").iterator():
        try:
            refresh_project(project)
            count += 1
        except Exception:  # noqa: BLE001 - logged; the next run tries again
            log.exception("readiness refresh failed for project %s", project.pk)
    return count


@shared_task(ignore_result=True)
def scheduled_report_task(run_id: int) -> int | None:
    """A scheduled probe run succeeded: publish the project's report (re-decided first, by
    `report_create`). A message delivered twice (a worker lost mid-task) publishes one report."""
    run = ProbeRun.objects.select_related("plan__endpoint__project__organization").filter(pk=run_id).first()
    if run is None or run.trigger != ProbeTrigger.SCHEDULE or run.status != RunStatus.SUCCEEDED:
        return None
    project = run.plan.endpoint.project
    if Report.objects.filter(project=project, trigger=Trigger.SCHEDULE, created_at__gte=run.finished_at).exists():
        return None
    return report_create(access=Access.system(), project=project, trigger=Trigger.SCHEDULE).number
