import time

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.crypto import EncryptedTextField
from apps.core.models import TimeStampedModel
from apps.core.tenancy import TenantQuerySet


class ProbeLimits(TimeStampedModel):
    """An organization's overrides of the READINESS_PROBE_* defaults (null = the default)."""

    org_lookup = "organization"

    organization = models.OneToOneField("orgs.Organization", on_delete=models.CASCADE, related_name="probe_limits")
    max_concurrency = models.PositiveIntegerField(null=True, blank=True)
    max_rate = models.FloatField(null=True, blank=True, help_text="requests/s")
    max_duration_s = models.PositiveIntegerField(null=True, blank=True)
    max_requests_per_day = models.PositiveIntegerField(null=True, blank=True)
    max_tokens_per_day = models.PositiveBigIntegerField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    def __str__(self) -> str:
        return f"probe limits of {self.organization}"


class ProbePlan(TimeStampedModel):
    """How an endpoint should be probed: load profile, prompts, SLOs, parallelism, schedule."""

    org_lookup = "endpoint__project__organization"

    endpoint = models.ForeignKey("projects.Endpoint", on_delete=models.CASCADE, related_name="probe_plans")
    name = models.CharField(max_length=120)
    # {"stages": [{"kind": "poisson", "rate": 5, "duration": 60}, ...]} or {"sweep": {...}}
    profile = models.JSONField()
    warmup_s = models.FloatField(default=0)
    cooldown_s = models.FloatField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=256)
    prompts_jsonl = models.TextField(blank=True, help_text="optional: one JSON prompt per line")
    max_tokens = models.PositiveIntegerField(default=128)
    seed = models.IntegerField(default=0)
    slo = models.JSONField(default=dict, blank=True)  # SLO fields: ttft_p95_ms, tpot_p95_ms, ...
    metrics_url = models.CharField(max_length=500, blank=True)
    parallelism = models.PositiveSmallIntegerField(default=1)
    request_timeout_s = models.FloatField(default=60)
    request_id_header = models.CharField(
        max_length=100, blank=True, help_text="empty: the endpoint's; a header name; or 'none' for no request id"
    )
    schedule_cron = models.CharField(max_length=120, blank=True, help_text="minute hour day month weekday")
    regression_threshold_pct = models.FloatField(default=20)
    # A noisy-neighbour plan's tenant credentials, {"name": "key", ...} as JSON: encrypted like an
    # endpoint's key, never shown again, and sent only to the run's own origin.
    tenant_keys = EncryptedTextField(blank=True, null=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["endpoint__project__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "name"], name="probe_plan_name_unique_per_endpoint"),
            models.CheckConstraint(condition=Q(parallelism__gte=1), name="probe_plan_parallelism_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FINALIZING = "finalizing", "Finalizing"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FINALIZING)


class Trigger(models.TextChoices):
    MANUAL = "manual", "Manual"
    SCHEDULE = "schedule", "Schedule"


class ProbeRunQuerySet(TenantQuerySet):
    def succeeded(self) -> "ProbeRunQuerySet":
        """Runs that finished their planned load (whether they count as evidence is `verdict_for`'s call)."""
        return self.filter(status=RunStatus.SUCCEEDED)


class ProbeRun(TimeStampedModel):
    """One execution of a plan, split into shards that run as separate Celery tasks."""

    org_lookup = "organization"

    # Denormalised from plan -> endpoint -> project so scoping and listing need no joins.
    organization = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="+")
    plan = models.ForeignKey(ProbePlan, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    config = models.JSONField()  # the plan as it was when the run started (plans change)
    shard_count = models.PositiveSmallIntegerField(default=1)
    planned_duration_s = models.FloatField()
    start_at = models.FloatField(help_text="wall-clock (epoch s) the shards align their schedules to")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(null=True, blank=True)
    server_metrics = models.JSONField(null=True, blank=True)
    timeline = models.JSONField(null=True, blank=True)  # per-interval series for the charts
    regression = models.JSONField(null=True, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    # Why a run could not start: the preflight's status, body excerpt, request as sent and hint.
    diagnosis = models.JSONField(null=True, blank=True)
    request_count = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)

    objects = ProbeRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"]), models.Index(fields=["plan", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.plan.name} #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def progress(self) -> dict:
        """Live figures of the run, summed over its shards (uses prefetched shards when present)."""
        shards = list(self.shards.all())
        sent = sum(s.sent for s in shards)
        completed = sum(s.completed for s in shards)
        errors = sum(s.errors for s in shards)
        ttfts = [s.ttft_p95_recent_ms for s in shards if s.ttft_p95_recent_ms is not None]
        elapsed = None
        if self.started_at:
            end = self.finished_at.timestamp() if self.finished_at else time.time()
            elapsed = max(0.0, end - max(self.start_at, self.started_at.timestamp()))
        remaining = None if elapsed is None or not self.is_active else max(0.0, self.planned_duration_s - elapsed)
        # A run that stopped early (cancelled, failed) shows how far it got, not a full bar.
        done = self.status == RunStatus.SUCCEEDED
        fraction = 1.0 if done else (min(elapsed / self.planned_duration_s, 1.0) if elapsed else 0.0)
        return {
            "status": self.status,
            "sent": sent,
            "completed": completed,
            "errors": errors,
            "ttft_p95_recent_ms": round(max(ttfts), 1) if ttfts else None,
            "elapsed_s": round(elapsed, 1) if elapsed is not None else None,
            "remaining_s": round(remaining, 1) if remaining is not None else None,
            "fraction": round(fraction, 4),
            "shards": [{"index": s.index, "status": s.status, "sent": s.sent, "worker": s.worker} for s in shards],
            "cancel_requested": self.cancel_requested_at is not None,
        }


class ShardStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


SHARD_FINISHED = (ShardStatus.DONE, ShardStatus.CANCELLED, ShardStatus.FAILED)


class ProbeShard(models.Model):
    """One worker task's share of a run: its progress, heartbeat and (in batches) its records."""

    org_lookup = "run__organization"

    run = models.ForeignKey(ProbeRun, on_delete=models.CASCADE, related_name="shards")
    index = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=ShardStatus.choices, default=ShardStatus.QUEUED)
    worker = models.CharField(max_length=200, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    origin_wall = models.FloatField(null=True, blank=True, help_text="epoch s of the engine's time origin")
    sent = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    ttft_p95_recent_ms = models.FloatField(null=True, blank=True)
    server_metrics = models.JSONField(null=True, blank=True)
    windows = models.JSONField(null=True, blank=True)  # the engine's measurement windows, at the end
    extra = models.JSONField(null=True, blank=True)  # e.g. the sweep's report
    loop_lag_ms = models.JSONField(null=True, blank=True)  # p99 etc. of the event-loop lag
    error_message = models.CharField(max_length=500, blank=True)
    diagnosis = models.JSONField(null=True, blank=True)  # a failed preflight, in full

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="probe_shard_index_unique")]

    def __str__(self) -> str:
        return f"shard {self.index} of run {self.run_id}"


class ProbeRecordBatch(models.Model):
    """Records flushed by a shard while it runs (Records.to_bytes): a crash loses seconds, not the run."""

    org_lookup = "shard__run__organization"

    shard = models.ForeignKey(ProbeShard, on_delete=models.CASCADE, related_name="batches")
    sequence = models.PositiveIntegerField()
    count = models.PositiveIntegerField()
    data = models.BinaryField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["shard", "sequence"]
        constraints = [models.UniqueConstraint(fields=["shard", "sequence"], name="probe_batch_sequence_unique")]

    def __str__(self) -> str:
        return f"batch {self.sequence} of {self.shard}"
