from celery import shared_task

from apps.integrations import services


@shared_task(ignore_result=True)
def delivery_send_task(delivery_id: int) -> None:
    """First attempt of a delivery, right after the change that caused it commits."""
    services.attempt(delivery_id)


@shared_task(ignore_result=True)
def deliveries_due_task() -> int:
    """Beat: retries whose backoff has passed, and claims left by a worker that died mid-send."""
    return services.send_due()
