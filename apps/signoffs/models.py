"""Sign-off gates: a policy per org, decisions per project and function, follow-ups.

A decision is never edited: a newer decision by the same person on the same gate supersedes
it, and a material change of the evidence marks it stale. Both stay for the record.
"""

from django.conf import settings
from django.db import models

from apps.core.models import TimeStampedModel
from apps.core.tenancy import TenantQuerySet

DEFAULT_GATES = [{"function": f, "required": 1} for f in ("security", "legal", "finance", "engineering", "product")]


def default_gates():
    return [dict(g) for g in DEFAULT_GATES]


class SignoffPolicy(TimeStampedModel):
    org_lookup = "organization"

    organization = models.OneToOneField("orgs.Organization", on_delete=models.CASCADE, related_name="signoff_policy")
    gates = models.JSONField(default=default_gates, help_text='[{"function": "security", "required": 1}, ...]')
    allow_owner_approval = models.BooleanField(
        default=False, help_text="The project owner may approve gates of their own project."
    )
    allow_multiple_gates = models.BooleanField(default=False, help_text="One person may clear more than one gate.")

    objects = TenantQuerySet.as_manager()

    def __str__(self) -> str:
        return f"sign-off policy of {self.organization}"


class Verdict(models.TextChoices):
    APPROVE = "approve", "Approve"
    APPROVE_WITH_CONDITIONS = "approve_with_conditions", "Approve with conditions"
    REJECT = "reject", "Reject"


class SignoffDecision(TimeStampedModel):
    org_lookup = "project__organization"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="signoffs")
    function = models.CharField(max_length=40)
    verdict = models.CharField(max_length=32, choices=Verdict.choices)
    reason = models.TextField(blank=True)
    conditions = models.JSONField(default=list, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    fingerprint = models.CharField(max_length=64)
    evidence = models.JSONField(default=dict, help_text="The material state that was approved.")
    stale_at = models.DateTimeField(null=True, blank=True)
    stale_reason = models.CharField(max_length=500, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.function}: {self.verdict} by {self.decided_by}"

    @property
    def is_current(self) -> bool:
        return self.stale_at is None and self.superseded_at is None


class FollowUpStatus(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Done"


class FollowUp(TimeStampedModel):
    """A condition of an approval, tracked until someone marks it done."""

    org_lookup = "project__organization"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="follow_ups")
    decision = models.ForeignKey(SignoffDecision, on_delete=models.CASCADE, related_name="follow_ups")
    text = models.CharField(max_length=500)
    status = models.CharField(max_length=8, choices=FollowUpStatus.choices, default=FollowUpStatus.OPEN)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    closed_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["status", "created_at"]

    def __str__(self) -> str:
        return self.text
