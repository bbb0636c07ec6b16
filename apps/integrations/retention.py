"""Retention of deliveries and inbound callbacks, and `prune`, which applies every retention setting.

Integrations is the most downstream app, so the one entry point (the daily task, `manage.py
prune`) lives here and calls each owning app's prune function; none of them imports another.
"""

import logging
from datetime import datetime

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.core.retention import BATCH_SIZE, cutoff, delete_in_batches, idempotency_records_prune
from apps.integrations.inbound import BODY_DEDUPED
from apps.integrations.models import Delivery, DeliveryAttempt, DeliveryStatus, Event, InboundEvent, InboundStatus
from apps.probes.retention import probe_records_prune

logger = logging.getLogger(__name__)

FINISHED = (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.DEAD)
# A waiver's announcement is sent once: apps/integrations/waivers.py `waivers_announce` looks for an
# earlier delivery of the same event and finding, and an approved waiver stays approved once
# expired, so pruning these would announce it again after every retention period. Few rows (two
# events per waiver and connector), kept for good.
ONCE_PER_FINDING = (Event.WAIVER_EXPIRING, Event.WAIVER_EXPIRED)


def deliveries_prune(*, days: int, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> tuple[int, int]:
    """Delete finished deliveries (succeeded, failed or dead letters) whose last attempt was more
    than `days` days ago (0: never), with their attempt history. A pending or sending delivery is
    never touched, nor a waiver announcement (ONCE_PER_FINDING). Returns (deliveries, attempts)."""
    before = cutoff(days, now)
    if before is None:
        return 0, 0
    # A redelivery sets the status back to pending, so an old delivery sent again today stays; its
    # last attempt, not its creation, says when it finished.
    old = (
        Delivery.objects.filter(status__in=FINISHED)
        .filter(Q(last_attempt_at__lt=before) | Q(last_attempt_at__isnull=True, created_at__lt=before))
        .exclude(event__in=ONCE_PER_FINDING)
    )
    deleted = delete_in_batches(old, batch_size=batch_size)
    return deleted[Delivery._meta.label], deleted[DeliveryAttempt._meta.label]


def inbound_events_prune(*, days: int, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Delete callbacks received more than `days` days ago (0: never), except the accepted ones
    from GitHub and Jira: those systems sign the body alone, with no timestamp, so the body hashes
    of accepted callbacks are what recognises a captured body replayed later (apps/integrations/
    inbound.py). Standard Webhooks callbacks carry a signed timestamp, valid minutes, so their
    delivery ids need no long memory; rejected callbacks (a flood of forgeries) are never memory."""
    before = cutoff(days, now)
    if before is None:
        return 0
    replay_memory = Q(connector__kind__in=BODY_DEDUPED) & ~Q(status=InboundStatus.REJECTED)
    old = InboundEvent.objects.filter(received_at__lt=before).exclude(replay_memory)
    return delete_in_batches(old, batch_size=batch_size)[InboundEvent._meta.label]


def prune(*, now: datetime | None = None) -> dict[str, int]:
    """Apply every READINESS_RETAIN_*_DAYS setting once; rows deleted per kind. Pruning is by age
    alone, across every organization: a system task, with no tenant to scope to."""
    now = now or timezone.now()
    deliveries, attempts = deliveries_prune(days=settings.READINESS_RETAIN_DELIVERIES_DAYS, now=now)
    counts = {
        "idempotency_records": idempotency_records_prune(days=settings.READINESS_RETAIN_IDEMPOTENCY_DAYS, now=now),
        "deliveries": deliveries,
        "delivery_attempts": attempts,
        "inbound_events": inbound_events_prune(days=settings.READINESS_RETAIN_INBOUND_DAYS, now=now),
        "probe_record_batches": probe_records_prune(days=settings.READINESS_RETAIN_PROBE_RECORDS_DAYS, now=now),
    }
    logger.info("pruned %s", ", ".join(f"{kind}={n}" for kind, n in counts.items()))
    return counts
