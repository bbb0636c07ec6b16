"""Findings announced to the outside world (webhooks, tickets), without importing who delivers them.

Checklists, probes, sign-offs and the decision `announce(...)` what they find; the integrations
app, which owns connectors and deliveries, connects a receiver at start-up. So the apps that find
things never depend on the one that tells (docs/architecture.md).
"""

from __future__ import annotations

from django.db import models
from django.dispatch import Signal


class Event(models.TextChoices):
    DECISION_CHANGED = "decision.changed", "Go/no-go decision changed"
    BLOCKER_FAILED = "item.blocker_failed", "A blocker checklist item failed"
    BLOCKER_PASSED = "item.blocker_passed", "A failed blocker item passes again"
    SIGNOFF_STALE = "signoff.stale", "An approval went stale"
    SIGNOFF_REJECTED = "signoff.rejected", "A gate was rejected"
    WAIVER_EXPIRING = "waiver.expiring", "A waiver expires soon"
    WAIVER_EXPIRED = "waiver.expired", "A waiver expired"
    PROBE_SLO_MISSED = "probe.slo_missed", "A probe run missed its SLO"
    PROBE_REGRESSED = "probe.regressed", "A scheduled probe regressed"
    PROBE_FAILED = "probe.failed", "A probe run failed"
    TEST = "test", "Test delivery"


# Sent with `event=`, `project=`, `finding_key=`, `data=`; a receiver returns what it queued.
announced = Signal()


def announce(event: str, *, project, finding_key: str = "", data: dict | None = None) -> list:
    """Queue `event` for whoever delivers findings; returns what they queued (the deliveries)."""
    queued: list = []
    for _receiver, result in announced.send(
        sender=Event, event=event, project=project, finding_key=finding_key, data=data
    ):
        queued += result
    return queued
