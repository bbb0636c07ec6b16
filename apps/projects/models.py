from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from apps.core.crypto import EncryptedTextField
from apps.core.models import TimeStampedModel
from apps.core.tenancy import TenantQuerySet

NON_NEGATIVE = [MinValueValidator(Decimal("0"))]


class Stage(models.TextChoices):
    POC = "poc", "Proof of concept"
    PILOT = "pilot", "Pilot"
    PRODUCTION = "production", "Production"


class RiskTier(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class DataClassification(models.TextChoices):
    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    CONFIDENTIAL = "confidential", "Confidential"
    RESTRICTED = "restricted", "Restricted"


class Project(TimeStampedModel):
    """One GenAI proof of concept on its way to production."""

    org_lookup = "organization"

    organization = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    use_case = models.TextField(blank=True)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.POC)
    risk_tier = models.CharField(max_length=16, choices=RiskTier.choices, default=RiskTier.MEDIUM)
    data_classification = models.CharField(
        max_length=16, choices=DataClassification.choices, default=DataClassification.INTERNAL
    )
    monthly_budget_usd = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=NON_NEGATIVE
    )
    expected_peak_rpm = models.PositiveIntegerField(
        null=True, blank=True, help_text="Expected peak traffic, requests per minute."
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="project_slug_unique_per_org"),
            models.CheckConstraint(
                condition=Q(monthly_budget_usd__isnull=True) | Q(monthly_budget_usd__gte=0),
                name="project_budget_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ApiFlavour(models.TextChoices):
    CHAT = "chat", "OpenAI chat completions"
    COMPLETIONS = "completions", "OpenAI completions"


class PriceModel(models.TextChoices):
    SELF_HOSTED = "self_hosted", "Self-hosted (GPU hours)"
    HOSTED_API = "hosted_api", "Hosted API (per token)"


def _price_field(**kwargs):
    return models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, validators=NON_NEGATIVE, **kwargs
    )


class Endpoint(TimeStampedModel):
    """An OpenAI-compatible inference endpoint of a project, with its price model."""

    org_lookup = "project__organization"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="endpoints")
    name = models.CharField(max_length=120)
    base_url = models.CharField(max_length=500, help_text="OpenAI-compatible base URL, e.g. http://host:8000/v1")
    api_flavour = models.CharField(max_length=16, choices=ApiFlavour.choices, default=ApiFlavour.CHAT)
    model_name = models.CharField(max_length=200)
    api_key = EncryptedTextField(blank=True, null=True)
    metrics_url = models.CharField(max_length=500, blank=True, help_text="Prometheus /metrics URL (optional)")

    price_model = models.CharField(max_length=16, choices=PriceModel.choices, default=PriceModel.SELF_HOSTED)
    gpu_type = models.CharField(max_length=60, blank=True)
    gpus_per_replica = models.PositiveSmallIntegerField(null=True, blank=True)
    gpu_hourly_usd = _price_field()
    min_replicas = models.PositiveSmallIntegerField(null=True, blank=True)
    max_replicas = models.PositiveSmallIntegerField(null=True, blank=True)
    input_usd_per_mtok = _price_field(help_text="$ per 1M input tokens")
    output_usd_per_mtok = _price_field(help_text="$ per 1M output tokens")

    last_check_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True)
    last_check_detail = models.CharField(max_length=500, blank=True)
    request_id_header = models.CharField(
        max_length=100,
        default="X-Request-Id",
        blank=True,
        help_text="header carrying each probe request's UUID; empty or 'none' sends no id",
    )
    # The last compatibility check: what the server serves and which optional request parts it
    # accepts (probes leave out the ones it refuses). Null until checked.
    compatibility = models.JSONField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["project__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="endpoint_name_unique_per_project"),
            models.CheckConstraint(
                condition=(Q(gpu_hourly_usd__isnull=True) | Q(gpu_hourly_usd__gte=0))
                & (Q(input_usd_per_mtok__isnull=True) | Q(input_usd_per_mtok__gte=0))
                & (Q(output_usd_per_mtok__isnull=True) | Q(output_usd_per_mtok__gte=0)),
                name="endpoint_prices_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(min_replicas__isnull=True)
                | Q(max_replicas__isnull=True)
                | Q(min_replicas__lte=models.F("max_replicas")),
                name="endpoint_min_replicas_le_max",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project.name} / {self.name}" if self.project_id else self.name
