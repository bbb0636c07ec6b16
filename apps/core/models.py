from django.conf import settings
from django.db import models

from apps.core.tenancy import TenantQuerySet


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class AuditEventQuerySet(TenantQuerySet):
    def update(self, **kwargs):  # pragma: no cover - a guard, not a feature
        raise TypeError("audit events are append-only")

    def delete(self):  # pragma: no cover
        raise TypeError("audit events are append-only")


class AuditEvent(models.Model):
    """Append-only: who did what to which object, with a before/after summary.

    Written by services (never by signals) in the same transaction as the change, so an
    event exists exactly when the change was committed.
    """

    org_lookup = "organization"

    organization = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text so the trail survives the user or token being deleted.
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=80)  # "<noun>.<verb>", e.g. "project.create"
    object_type = models.CharField(max_length=80)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("audit events are append-only")


class IdempotencyRecord(models.Model):
    """A POST answered once: a retry with the same Idempotency-Key gets the same answer."""

    principal = models.CharField(max_length=100)  # "user:<id>" or "token:<id>"
    key = models.CharField(max_length=200)
    request_fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["principal", "key"], name="idempotency_key_once_per_principal")]

    def __str__(self) -> str:
        return f"{self.principal} {self.key}"
