from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.integrations import services
from apps.integrations.retention import prune
from apps.integrations.waivers import waivers_announce


@shared_task(ignore_result=True)
def delivery_send_task(delivery_id: int) -> None:
    """First attempt of a delivery, right after the change that caused it commits."""
    services.attempt(delivery_id)


@shared_task(ignore_result=True)
def deliveries_due_task() -> int:
    """Beat: retries whose backoff has passed, and claims left by a worker that died mid-send."""
    return services.send_due()


# Stopped by the soft limit mid-way, a prune keeps every batch it committed; the next day's goes on.
@shared_task(ignore_result=True, soft_time_limit=1800, time_limit=1860)
def prune_task() -> dict[str, int]:
    """Beat, daily: delete what the READINESS_RETAIN_*_DAYS settings no longer keep."""
    return prune()


@shared_task(ignore_result=True)
def waivers_announce_task() -> int:
    """Beat: waivers expire with the clock alone; announce each expiring and expired one once."""
    return waivers_announce(timezone.localdate(), settings.READINESS_WAIVER_WARNING_DAYS)
