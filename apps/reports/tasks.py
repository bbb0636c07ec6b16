import logging

from celery import shared_task

from apps.projects.models import Project
from apps.reports.evaluation import refresh_project

log = logging.getLogger(__name__)


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
