"""Checklist templates (versioned, per org), a project's checklists, responses and waivers.

Nothing here is deleted once answered: a response of an item that left the template on an
upgrade stays attached to the old version's item, and waivers end by rejection, revocation
or expiry, never by deletion.
"""

from datetime import date

from django.conf import settings
from django.db import models

from apps.core.models import TimeStampedModel
from apps.core.tenancy import TenantQuerySet


class Severity(models.TextChoices):
    BLOCKER = "blocker", "Blocker"
    MAJOR = "major", "Major"
    MINOR = "minor", "Minor"


class EvidenceKind(models.TextChoices):
    MANUAL = "manual", "Manual (a person attests)"
    AUTOMATIC = "automatic", "Automatic (rule over probe / cost results)"
    EXTERNAL = "external", "External (set over the API)"


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    PASS = "pass", "Pass"
    FAIL = "fail", "Fail"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


class ChecklistTemplate(TimeStampedModel):
    """One version of a template. Versions of the same template share `key`; items are frozen
    once a version exists, so a change is always a new version."""

    org_lookup = "organization"

    organization = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="templates")
    key = models.SlugField(max_length=60)
    version = models.PositiveIntegerField(default=1)
    name = models.CharField(max_length=120)
    category = models.SlugField(max_length=40)
    shipped = models.BooleanField(default=False, help_text="Loaded from readiness' defaults, not made by the org.")
    change_note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["category", "key", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "key", "version"], name="template_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class TemplateItem(models.Model):
    org_lookup = "template__organization"

    template = models.ForeignKey(ChecklistTemplate, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(default=0)
    key = models.CharField(max_length=80)
    title = models.CharField(max_length=200)
    guidance = models.TextField(blank=True)
    references = models.JSONField(default=list, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    function = models.CharField(max_length=40)
    evidence_kind = models.CharField(max_length=10, choices=EvidenceKind.choices, default=EvidenceKind.MANUAL)
    rule = models.JSONField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    # What an answer depends on. A change to any of these makes an answer (and approvals that saw
    # it) out of date; title, guidance and references are wording, and editing them does not.
    MATERIAL_FIELDS = ("severity", "function", "evidence_kind", "rule")

    class Meta:
        ordering = ["template", "position"]
        constraints = [models.UniqueConstraint(fields=["template", "key"], name="template_item_key_unique")]

    def __str__(self) -> str:
        return self.title

    def material(self) -> dict:
        return {name: getattr(self, name) for name in self.MATERIAL_FIELDS}


class Checklist(TimeStampedModel):
    """A project's copy of one template (at one version)."""

    org_lookup = "project__organization"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="checklists")
    template = models.ForeignKey(ChecklistTemplate, on_delete=models.PROTECT, related_name="checklists")
    template_key = models.SlugField(max_length=60)  # one checklist per template per project, across versions

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["project", "template__category", "template_key"]
        constraints = [
            models.UniqueConstraint(fields=["project", "template_key"], name="one_checklist_per_template"),
        ]

    def __str__(self) -> str:
        return f"{self.project} · {self.template}"


class Source(models.TextChoices):
    MANUAL = "manual", "Person"
    AUTOMATIC = "automatic", "Rule"
    EXTERNAL = "external", "External system"


class ItemResponse(TimeStampedModel):
    """The current answer to one item of one checklist. Each change is in the audit log."""

    org_lookup = "checklist__project__organization"

    checklist = models.ForeignKey(Checklist, on_delete=models.CASCADE, related_name="responses")
    item = models.ForeignKey(TemplateItem, on_delete=models.PROTECT, related_name="responses")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    na_reason = models.CharField(max_length=500, blank=True)
    evidence_text = models.TextField(blank=True)
    evidence_url = models.URLField(max_length=500, blank=True)
    evidence_file = models.FileField(upload_to="evidence/%Y/%m/", blank=True, max_length=300)
    figure = models.FloatField(null=True, blank=True)  # what decided an automatic item
    explanation = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    answered_label = models.CharField(max_length=150, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["checklist", "item__position"]
        constraints = [models.UniqueConstraint(fields=["checklist", "item"], name="one_response_per_item")]

    def __str__(self) -> str:
        return f"{self.item.key}: {self.status}"


class RiskLevel(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class WaiverStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    REVOKED = "revoked", "Revoked"


class Waiver(TimeStampedModel):
    """An exemption for one response until `expires_on` (inclusive)."""

    org_lookup = "response__checklist__project__organization"

    response = models.ForeignKey(ItemResponse, on_delete=models.CASCADE, related_name="waivers")
    reason = models.TextField()
    risk_level = models.CharField(max_length=10, choices=RiskLevel.choices)
    expires_on = models.DateField()
    status = models.CharField(max_length=10, choices=WaiverStatus.choices, default=WaiverStatus.REQUESTED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=500, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"waiver for {self.response.item.key} until {self.expires_on}"

    def state_on(self, today: date) -> str:
        """requested / approved / rejected / revoked, or expired once an approved waiver ran out."""
        if self.status == WaiverStatus.APPROVED and today > self.expires_on:
            return "expired"
        return self.status
