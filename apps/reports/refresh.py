"""Re-deciding a project after a change, as a queued task: the writer's request only asks.

`readiness_changed(project)` (apps/core/readiness.py) reaches `request_refresh`, which queues
`project_refresh_task` once the writer's transaction commits, so the task reads what was written.
Many changes in a row queue one task: a cache key says "a refresh is queued and has not started";
the task removes it before it reads, so a change committed after that queues the next one. A
second key says "a refresh is running" until it has stored its decision, so a page read in between
still says a re-evaluation is under way. A key whose task was lost (a broker away, a worker killed)
expires, and the periodic refresh catches up meanwhile.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from apps.probes.models import RunStatus, Trigger

log = logging.getLogger(__name__)

# A queued refresh normally starts within seconds; past this, a lost one no longer blocks the next.
PENDING_TTL_S = 300


def pending_key(project_id: int) -> str:
    return f"readiness:refresh-queued:{project_id}"


def running_key(project_id: int) -> str:
    return f"readiness:refresh-running:{project_id}"


def refresh_pending(project_id: int) -> bool:
    """Whether a re-evaluation of the project is queued or running (the page and the API say so)."""
    return bool(cache.get_many([pending_key(project_id), running_key(project_id)]))


def request_refresh(sender, *, project, **kwargs) -> None:
    """The receiver of `readiness_changed`: queue one refresh after the writer's commit."""
    project_id = project.pk
    transaction.on_commit(lambda: _enqueue(project_id))


def _enqueue(project_id: int) -> None:
    from apps.reports.tasks import project_refresh_task  # tasks import this module's callers

    if not cache.add(pending_key(project_id), 1, timeout=PENDING_TTL_S):
        return  # one is queued and will read this change
    try:
        project_refresh_task.apply_async(args=[project_id], queue=settings.READINESS_DECISION_QUEUE)
    except Exception:  # noqa: BLE001 - the change is saved; the periodic refresh re-decides
        cache.delete(pending_key(project_id))
        log.exception("could not queue the re-evaluation of project %s", project_id)


@contextmanager
def running(project_id: int):
    """Around the task's work: from its start, a change queues a new refresh (this one may have
    read before it); until its end, the project reads as being re-evaluated."""
    cache.set(running_key(project_id), 1, timeout=PENDING_TTL_S)
    cache.delete(pending_key(project_id))
    try:
        yield
    finally:
        cache.delete(running_key(project_id))


def request_scheduled_report(sender, *, run, **kwargs) -> None:
    """The receiver of `run_finished`: a scheduled run that succeeded publishes a report, as a task
    of its own once the run is committed."""
    if run.trigger != Trigger.SCHEDULE or run.status != RunStatus.SUCCEEDED:
        return
    run_id = run.pk
    transaction.on_commit(lambda: _send_report(run_id))


def _send_report(run_id: int) -> None:
    from apps.reports.tasks import scheduled_report_task

    scheduled_report_task.apply_async(args=[run_id], queue=settings.READINESS_DECISION_QUEUE)
