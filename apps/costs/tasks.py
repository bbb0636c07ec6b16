from celery import shared_task

from apps.costs import services


@shared_task(ignore_result=True, acks_late=True)
def usage_log_analyse_task(log_id: int) -> None:
    services.usage_log_analyse(log_id)
