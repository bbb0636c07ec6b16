"""Email notifications, sent after the transaction that caused them commits.

A mail server that is down must not undo a sign-off or a decision: failures are logged.
"""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

log = logging.getLogger(__name__)


def notify(users, subject: str, body: str) -> None:
    recipients = sorted({u.email for u in users if u is not None and getattr(u, "email", "")})
    if not recipients:
        return

    def send():
        try:
            send_mail(f"[readiness] {subject}", body, settings.DEFAULT_FROM_EMAIL, recipients)
        except Exception:  # noqa: BLE001 - any transport error: log it, never fail the change
            log.exception("could not send %r to %s", subject, recipients)

    transaction.on_commit(send)
