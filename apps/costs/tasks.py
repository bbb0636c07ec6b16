from celery import shared_task
from django.conf import settings

from apps.costs import services


# The soft limit raises inside the analysis, which fails the log with a message; the hard one
# kills the process should that not stop it, and the reaper fails the log. A message redelivered
# after its worker died claims the log again only once the heartbeat is stale.
@shared_task(
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.READINESS_USAGE_LOG_SOFT_TIME_LIMIT_S,
    time_limit=settings.READINESS_USAGE_LOG_TIME_LIMIT_S,
)
def usage_log_analyse_task(log_id: int) -> None:
    """Analyse one usage log (claimed once; a redelivery finds it taken unless its worker died)."""
    services.usage_log_analyse(log_id)


@shared_task(ignore_result=True)
def usage_log_reaper_task() -> None:
    """Fail usage-log analyses whose worker stopped heartbeating."""
    services.usage_logs_reap()
