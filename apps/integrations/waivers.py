"""Waivers about to expire, or expired, announced once each to the organization's connectors.

Here, not in checklists: whether a waiver was already announced is a question about deliveries.
"""

from datetime import date, timedelta

from apps.checklists.models import Waiver, WaiverStatus
from apps.checklists.services import item_path
from apps.integrations.models import Delivery, Event
from apps.integrations.services import emit


def waivers_announce(today: date, warning_days: int) -> int:
    """Tell the integrations, once each, about approved waivers expiring within `warning_days` and
    about those that expired (beat, every `READINESS_REFRESH_INTERVAL_S`)."""
    sent = 0
    horizon = today + timedelta(days=warning_days)
    approved = Waiver.objects.filter(status=WaiverStatus.APPROVED, expires_on__lte=horizon).select_related(
        "response__item", "response__checklist__project__organization"
    )
    for waiver in approved:
        event = Event.WAIVER_EXPIRED if waiver.state_on(today) == "expired" else Event.WAIVER_EXPIRING
        key = f"waiver:{waiver.pk}"
        if Delivery.objects.filter(event=event, finding_key=key).exists():
            continue
        data = {
            "item": waiver.response.item.key,
            "title": waiver.response.item.title,
            "expires_on": waiver.expires_on.isoformat(),
            "risk_level": waiver.risk_level,
            "url": item_path(waiver.response),
        }
        sent += len(emit(event, project=waiver.response.checklist.project, finding_key=key, data=data))
    return sent
