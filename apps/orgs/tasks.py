from celery import shared_task

from apps.orgs import services


@shared_task(ignore_result=True)
def password_reset_mail_task(email: str) -> None:
    """Mail the reset link(s) for `email` (apps.orgs.services.password_reset_mail_send). A mail
    server that fails is logged by Django's form, not retried: the person can ask again."""
    services.password_reset_mail_send(email=email)
