from celery import shared_task

from apps.orgs.access import Access
from apps.probes import services
from apps.probes.execution import shard_execute
from apps.probes.models import ProbePlan, Trigger


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def probe_shard_task(self, shard_id: int, org_id: int) -> None:
    """Run one shard of a probe run (claimed once; a redelivery of a claimed shard does nothing)."""
    shard_execute(shard_id=shard_id, org_id=org_id, worker=self.request.hostname or "")


@shared_task(ignore_result=True)
def probe_reaper_task() -> None:
    """Fail shards whose worker stopped heartbeating, and finalize their runs (partial results kept)."""
    services.probe_runs_reap()


@shared_task(ignore_result=True)
def scheduled_probe_task(plan_id: int, org_id: int) -> None:
    """Beat's entry point for a plan's cron schedule."""
    plan = ProbePlan.objects.in_org(org_id).select_related("endpoint__project").filter(pk=plan_id).first()
    if plan is None:
        return
    services.probe_run_start(access=Access.system(), plan=plan, trigger=Trigger.SCHEDULE)
