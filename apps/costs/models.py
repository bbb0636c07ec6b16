"""The price catalog of an organization and each project's expected traffic."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from apps.core.models import TimeStampedModel
from apps.core.tenancy import TenantQuerySet

POSITIVE = [MinValueValidator(Decimal("0"))]


def _usd(**kwargs):
    return models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True, validators=POSITIVE, **kwargs)


class PriceKind(models.TextChoices):
    GPU = "gpu", "GPU ($ per GPU-hour)"
    API = "api", "Hosted API ($ per 1M tokens)"


class Price(TimeStampedModel):
    """One price with where it came from and when; seeded from apps/costs/catalog.py, editable."""

    org_lookup = "organization"

    organization = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="prices")
    kind = models.CharField(max_length=4, choices=PriceKind.choices)
    name = models.CharField(max_length=100)
    provider = models.CharField(max_length=60, blank=True)
    usd_per_gpu_hour = _usd(help_text="On-demand $ per GPU-hour")
    spot_usd_per_gpu_hour = _usd(help_text="Spot / preemptible $ per GPU-hour")
    hbm_gb = models.PositiveIntegerField(null=True, blank=True)
    hbm_bandwidth_gb_per_s = models.PositiveIntegerField(null=True, blank=True)
    usd_per_mtok_input = _usd(help_text="$ per 1M input tokens")
    usd_per_mtok_output = _usd(help_text="$ per 1M output tokens")
    source = models.CharField(max_length=300)
    as_of = models.DateField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["kind", "name"]
        constraints = [models.UniqueConstraint(fields=["organization", "kind", "name"], name="price_name_unique")]

    def __str__(self) -> str:
        return self.name


class TrafficProfile(TimeStampedModel):
    """What the project expects in production; the projections size capacity for it."""

    org_lookup = "project__organization"

    project = models.OneToOneField("projects.Project", on_delete=models.CASCADE, related_name="traffic")
    requests_per_day = models.PositiveIntegerField()
    input_tokens_per_request = models.PositiveIntegerField(default=500)
    output_tokens_per_request = models.PositiveIntegerField(default=250)
    peak_to_average = models.FloatField(default=3.0, help_text="Busiest minute over the average during active hours")
    active_hours_per_day = models.FloatField(default=24)
    active_start_hour = models.FloatField(default=0)
    active_days_per_month = models.FloatField(default=30.4)
    min_replicas = models.PositiveSmallIntegerField(default=1)
    scale_down_delay_s = models.PositiveIntegerField(default=600)
    scale_up_lead_s = models.PositiveIntegerField(default=0, help_text="Time a new replica takes (T_ready)")
    business_hours_per_day = models.FloatField(default=12)
    business_days_per_month = models.FloatField(default=22)
    business_start_hour = models.FloatField(default=7)
    spot_headroom_replicas = models.PositiveSmallIntegerField(default=1)

    objects = TenantQuerySet.as_manager()

    def __str__(self) -> str:
        return f"traffic of {self.project}"


class UsageLogStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    ANALYSING = "analysing", "Analysing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class UsageLog(TimeStampedModel):
    """A usage log for a project (CSV or JSONL, optionally gzipped), analysed by a worker: uploaded
    (`file`), or already stored on the server in the org's import folder (`stored_name`)."""

    org_lookup = "project__organization"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="usage_logs")
    name = models.CharField(max_length=200)
    file = models.FileField(upload_to="usage/%Y/%m/", max_length=300, blank=True)
    stored_name = models.CharField(max_length=500, blank=True, help_text="relative to the org's import folder")
    size_bytes = models.BigIntegerField(default=0)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=UsageLogStatus.choices, default=UsageLogStatus.QUEUED)
    analysis = models.JSONField(null=True, blank=True)
    hourly_requests = models.JSONField(default=list, blank=True)  # for the chart
    error = models.CharField(max_length=500, blank=True)
    analysed_at = models.DateTimeField(null=True, blank=True)
    # The analysis in progress: which attempt holds it (a token a redelivered message cannot
    # guess), when its worker last reported, and how many workers have claimed it. A worker
    # whose heartbeat went stale is presumed dead: a redelivery may claim the log again, and
    # the reaper fails it.
    claim = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        # The reaper's query: analyses whose heartbeat is old.
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="usagelog_status_heartbeat")]

    def __str__(self) -> str:
        return self.name
