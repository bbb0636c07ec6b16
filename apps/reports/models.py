"""Go/no-go reports (immutable snapshots) and each project's current decision."""

from django.conf import settings
from django.db import models

from apps.core.tenancy import TenantQuerySet


class Outcome(models.TextChoices):
    GO = "GO", "GO"
    CONDITIONAL = "CONDITIONAL", "CONDITIONAL"
    NO_GO = "NO-GO", "NO-GO"


class Trigger(models.TextChoices):
    MANUAL = "manual", "On demand (page)"
    API = "api", "On demand (API)"
    SCHEDULE = "schedule", "After a scheduled probe"


class ReportQuerySet(TenantQuerySet):
    def update(self, **kwargs):  # pragma: no cover - a guard, not a feature
        raise TypeError("reports are immutable")


class Report(models.Model):
    """Everything the decision was made from, frozen: it renders from `snapshot` alone, so a
    later change of the project, its checklists or its runs cannot alter it."""

    org_lookup = "organization"

    organization = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="reports")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="reports")
    number = models.PositiveIntegerField()  # 1, 2, 3 ... per project
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_label = models.CharField(max_length=150)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.MANUAL)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    fingerprint = models.CharField(max_length=64)
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    snapshot = models.JSONField()

    objects = ReportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="report_number_unique")]

    def __str__(self) -> str:
        return f"{self.snapshot.get('project', {}).get('name', 'project')} report #{self.number}: {self.outcome}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("reports are immutable")
        super().save(*args, **kwargs)


class ProjectStatus(models.Model):
    """The current decision of a project, kept up to date after every change; the dashboard reads it
    and a change of `outcome` is what triggers the decision-changed notification."""

    org_lookup = "project__organization"

    project = models.OneToOneField("projects.Project", on_delete=models.CASCADE, related_name="status")
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    reasons = models.JSONField(default=list)
    categories = models.JSONField(default=list)
    fingerprint = models.CharField(max_length=64)
    evaluated_at = models.DateTimeField(auto_now=True)
    changed_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.project}: {self.outcome}"
