import logging
from datetime import timedelta

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from apps.orgs.access import Access
from apps.orgs.models import Organization
from apps.probes import services
from apps.probes.execution import shard_execute
from apps.probes.models import ProbePlan, ProbeRun, Trigger
from apps.probes.saturation import probe_run_rerun_if_saturated

log = logging.getLogger(__name__)

# A cron schedule fires at most once a minute: a second scheduled start of the same plan within
# this many seconds is the same tick sent twice (two beats by mistake, a redelivered message).
SCHEDULE_TICK_S = 50


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def probe_shard_task(self, shard_id: int, org_id: int) -> None:
    """Run one shard of a probe run (claimed once; a redelivery of a claimed shard does nothing)."""
    shard_execute(shard_id=shard_id, org_id=org_id, worker=self.request.hostname or "")


@shared_task(ignore_result=True)
def probe_reaper_task() -> None:
    """Send again the shards whose message never left, fail shards whose worker stopped
    heartbeating, and finalize their runs (partial results kept)."""
    services.probe_shards_resend()
    services.probe_runs_reap()


@shared_task(ignore_result=True)
def scheduled_probe_task(plan_id: int, org_id: int) -> None:
    """Beat's entry point for a plan's cron schedule."""
    plan = ProbePlan.objects.in_org(org_id).select_related("endpoint__project").filter(pk=plan_id).first()
    if plan is None:
        return
    with transaction.atomic():
        # The lock every start takes: of two copies of one tick, the second sees the first's run.
        Organization.objects.select_for_update().filter(pk=org_id).first()
        since = timezone.now() - timedelta(seconds=SCHEDULE_TICK_S)
        if ProbeRun.objects.filter(plan=plan, trigger=Trigger.SCHEDULE, created_at__gte=since).exists():
            log.warning(
                "plan %s: a scheduled run started within %s s; this tick was sent twice", plan_id, SCHEDULE_TICK_S
            )
            return
        services.probe_run_start(access=Access.system(), plan=plan, trigger=Trigger.SCHEDULE)


@shared_task(ignore_result=True)
def probe_run_announce_task(run_id: int) -> None:
    """A finished run's findings (failed, SLO missed, regressed) to the integrations."""
    services.probe_run_announce(run_id)


@shared_task(ignore_result=True)
def probe_run_rerun_task(run_id: int) -> None:
    """A client-saturated run proved nothing: start its automatic re-run (apps/probes/saturation.py)."""
    run = ProbeRun.objects.select_related("plan").filter(pk=run_id).first()
    if run is not None:
        probe_run_rerun_if_saturated(run)
