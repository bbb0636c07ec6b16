"""Connectors (where findings go), deliveries (every outbound call) and ticket links.

A delivery is never edited by hand: each attempt updates its counters; a redelivery is a new
attempt on the same row (same webhook-id, so receivers can de-duplicate).
"""

import secrets

from django.conf import settings
from django.db import models

from apps.core.crypto import EncryptedTextField
from apps.core.events import Event  # noqa: F401 - the event names live in core; re-exported for this app
from apps.core.models import TimeStampedModel
from apps.core.tenancy import TenantQuerySet


def new_inbound_id() -> str:
    return secrets.token_urlsafe(18)


class Kind(models.TextChoices):
    WEBHOOK = "webhook", "Signed webhook (Standard Webhooks)"
    JIRA = "jira", "Jira Cloud"
    SERVICENOW = "servicenow", "ServiceNow"
    GITHUB = "github", "GitHub Issues"


class Connector(TimeStampedModel):
    org_lookup = "organization"

    organization = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="connectors")
    project = models.ForeignKey(
        "projects.Project",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="connectors",
        help_text="Only this project's events; empty for the whole organization.",
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.WEBHOOK)
    url = models.CharField(
        max_length=500, help_text="Webhook URL, or the base URL of the Jira / ServiceNow / GitHub API."
    )
    config = models.JSONField(default=dict, blank=True)
    secret = EncryptedTextField(blank=True, null=True)
    # Callbacks from the other side arrive at /hooks/in/<inbound_id>/ (unguessable, so the URL says
    # nothing about which connectors exist) and are verified with inbound_secret.
    inbound_id = models.CharField(max_length=40, unique=True, default=new_inbound_id)
    inbound_secret = EncryptedTextField(blank=True, null=True)
    events = models.JSONField(default=list, help_text="Event types this connector receives.")
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="connector_name_unique")]

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its (next) attempt
    SENDING = "sending", "Sending"  # claimed by a worker
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"  # a permanent refusal (4xx other than 429), not retried
    DEAD = "dead", "Dead letter"  # transient failures until the last attempt


class Delivery(TimeStampedModel):
    org_lookup = "connector__organization"

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="deliveries")
    project = models.ForeignKey("projects.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    event = models.CharField(max_length=40, choices=Event.choices)
    event_id = models.CharField(max_length=40, help_text="webhook-id: the same on every attempt")
    finding_key = models.CharField(max_length=200, blank=True)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # Ticketing connectors: what this delivery does to the finding's ticket, decided at its first
    # attempt, and which of that action's requests comes next (a GitHub close is comment + PATCH).
    action = models.CharField(max_length=10, blank=True)
    step = models.PositiveSmallIntegerField(default=0)
    # How many times a person sent it again; each redelivery starts a fresh set of attempts, and
    # the earlier ones stay in `history`.
    redeliveries = models.PositiveSmallIntegerField(default=0)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} → {self.connector} ({self.status})"


class DeliveryAttempt(models.Model):
    """One request of a delivery and what came back, kept for good: the delivery row holds only
    the latest outcome, and a redelivery starts its count again."""

    org_lookup = "delivery__connector__organization"

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="history")
    round = models.PositiveSmallIntegerField(default=0, help_text="0: the first sending; n: the n-th redelivery")
    number = models.PositiveIntegerField(help_text="the attempt's number within its round")
    sent_at = models.DateTimeField()
    response_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["sent_at", "pk"]

    def __str__(self) -> str:
        return f"attempt {self.round}.{self.number} of delivery {self.delivery_id}"


class TicketState(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class TicketLink(TimeStampedModel):
    """One external ticket per finding per connector: later events comment on it, close or reopen it."""

    org_lookup = "connector__organization"

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="tickets")
    project = models.ForeignKey("projects.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    finding_key = models.CharField(max_length=200)
    external_key = models.CharField(max_length=100)
    url = models.CharField(max_length=500, blank=True)
    state = models.CharField(max_length=8, choices=TicketState.choices, default=TicketState.OPEN)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at"]
        constraints = [models.UniqueConstraint(fields=["connector", "finding_key"], name="one_ticket_per_finding")]

    def __str__(self) -> str:
        return f"{self.external_key} ({self.state})"


class InboundStatus(models.TextChoices):
    APPLIED = "applied", "Applied"
    IGNORED = "ignored", "Ignored (nothing linked)"
    REJECTED = "rejected", "Rejected"


class InboundEvent(models.Model):
    """Every callback received, accepted or not: the delivery id makes replays detectable."""

    org_lookup = "connector__organization"

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="inbound_events")
    delivery_id = models.CharField(max_length=100, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=InboundStatus.choices)
    detail = models.CharField(max_length=500, blank=True)
    ticket = models.ForeignKey(TicketLink, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # sha256 of the raw body: a GitHub or Jira body seen before is a replay, whatever its new delivery id.
    body_sha256 = models.CharField(max_length=64, blank=True, db_index=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["connector", "delivery_id"],
                condition=~models.Q(delivery_id="") & ~models.Q(status="rejected"),
                name="inbound_delivery_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.connector} {self.delivery_id} {self.status}"
