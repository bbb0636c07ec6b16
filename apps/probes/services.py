"""Probe plans and runs: every write goes through here (audited, atomic, limit-checked)."""

from __future__ import annotations

import json
import logging
import math
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from apps.core.clock import db_now
from apps.core.errors import ApplicationError
from apps.core.events import Event, announce
from apps.core.readiness import readiness_changed
from apps.core.services import audit_record, diff, require_writer, save_unique, snapshot
from apps.net.netguard import OutboundRefused
from apps.orgs.access import Access
from apps.orgs.models import Organization
from apps.probes import plans
from apps.probes.engine import compat
from apps.probes.engine.records import CANARY_STAGE, Records
from apps.probes.engine.runner import ProbeConfig
from apps.probes.engine.stats import SLO, Window, format_error_details, summarize, summarize_canary
from apps.probes.engine.tenants import TenantRun
from apps.probes.engine.tenants import analyse as analyse_tenants
from apps.probes.models import (
    ACTIVE_STATUSES,
    SHARD_FINISHED,
    ProbeLimits,
    ProbePlan,
    ProbeRun,
    ProbeShard,
    RunStatus,
    ShardStatus,
    Trigger,
)
from apps.probes.selectors import latest_sweep_capacity, merged, previous_run, records_by_shard, run_records
from apps.probes.signals import run_finished
from apps.probes.tenant_keys import set_tenant_keys
from apps.probes.timeline import timeline
from apps.probes.verdict import AUTOSCALING, MET, MISSED, TENANTS, verdict_for

PLAN_FIELDS = [
    "name",
    "profile",
    "warmup_s",
    "cooldown_s",
    "prompt_tokens",
    "prompts_jsonl",
    "max_tokens",
    "seed",
    "slo",
    "metrics_url",
    "parallelism",
    "request_timeout_s",
    "schedule_cron",
    "regression_threshold_pct",
    "request_id_header",
]
LIMIT_FIELDS = ["max_concurrency", "max_rate", "max_duration_s", "max_requests_per_day", "max_tokens_per_day"]
LIMIT_CEILING = 1e12  # beyond any real limit, and within every database's integer columns
START_DELAY_S = 1.0  # shards align on a start time this far ahead, so parallel shards begin together
# Tenants must start together for the burst to meet the others' load: time for every worker process
# to take its shard and send its preflight first.
TENANT_START_DELAY_S = 5.0

logger = logging.getLogger(__name__)


# --- limits --------------------------------------------------------------------------------


def probe_limits(org_id: int) -> plans.Limits:
    override = ProbeLimits.objects.filter(organization_id=org_id).first()

    def pick(name: str, setting: str):
        value = getattr(override, name, None) if override else None
        return value if value is not None else getattr(settings, setting)

    return plans.Limits(
        max_concurrency=pick("max_concurrency", "READINESS_PROBE_MAX_CONCURRENCY"),
        max_rate=pick("max_rate", "READINESS_PROBE_MAX_RATE"),
        max_duration_s=pick("max_duration_s", "READINESS_PROBE_MAX_DURATION_S"),
        max_requests_per_day=pick("max_requests_per_day", "READINESS_PROBE_MAX_REQUESTS_PER_DAY"),
        max_tokens_per_day=pick("max_tokens_per_day", "READINESS_PROBE_MAX_TOKENS_PER_DAY"),
        max_parallelism=settings.READINESS_PROBE_MAX_PARALLELISM,
        max_active_runs=settings.READINESS_PROBE_MAX_ACTIVE_RUNS,
    )


@transaction.atomic
def probe_limits_update(*, access: Access, org, **fields) -> ProbeLimits:
    """Admins override the defaults for their organization; None restores a default."""
    if not access.can_admin(org.pk):
        raise ApplicationError("Only owners and admins can change probe limits.", code="forbidden", status=403)
    unknown = set(fields) - set(LIMIT_FIELDS)
    if unknown:
        raise ApplicationError("Unknown fields.", detail={k: ["Unknown field."] for k in unknown})
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise ApplicationError(f"{name} must be a positive number.", detail={name: ["Must be a positive number."]})
        if value > LIMIT_CEILING:
            raise ApplicationError(f"{name} must be at most {LIMIT_CEILING:g}.", detail={name: ["Too large."]})
    limits, _ = ProbeLimits.objects.get_or_create(organization=org)
    before = snapshot(limits, LIMIT_FIELDS)
    for name, value in fields.items():
        setattr(limits, name, value)
    limits.save()
    audit_record(
        access=access,
        organization_id=org.pk,
        action="probe_limits.update",
        obj=limits,
        changes=diff(before, snapshot(limits, LIMIT_FIELDS)),
    )
    return limits


def usage_today(org_id: int) -> tuple[int, int]:
    """(requests, output tokens) of the org's runs of the last 24 hours. A finished run counts what
    it sent; a run still queued or going counts what it reserved at start (its hard stop, and its
    max_tokens for each), so that runs started together cannot spend the same budget twice. Runs
    started before reservations existed count what they have sent so far."""
    runs = ProbeRun.objects.filter(organization_id=org_id, created_at__gte=timezone.now() - timedelta(days=1))
    done = runs.exclude(status__in=ACTIVE_STATUSES).aggregate(r=Sum("request_count"), t=Sum("output_tokens"))
    requests, tokens = done["r"] or 0, done["t"] or 0
    for run in runs.filter(status__in=ACTIVE_STATUSES).annotate(sent_so_far=Sum("shards__sent")).only("config"):
        reserved = run.config.get("max_requests")
        count = reserved if reserved is not None else run.sent_so_far or 0
        requests += count
        tokens += count * plans.max_tokens_per_request(run.config)
    return requests, tokens


# --- plans ---------------------------------------------------------------------------------


def _save_plan(plan: ProbePlan) -> None:
    message = f"This endpoint already has a plan named {plan.name!r}."
    save_unique(plan, field="name", message=message, hint="Already used for this endpoint.")


def _validated(fields: dict, org_id: int) -> dict:
    unknown = set(fields) - set(PLAN_FIELDS) - {"tenant_keys"}
    if unknown:
        raise ApplicationError("Unknown fields.", detail={k: ["Unknown field."] for k in sorted(unknown)})
    if "name" in fields and not str(fields["name"]).strip():
        raise ApplicationError("The plan needs a name.", detail={"name": ["This field is required."]})
    cleaned = plans.validate_plan(fields, probe_limits(org_id))
    cleaned.pop("tenant_keys", None)
    return cleaned


def _sync_schedule(plan: ProbePlan) -> None:
    """Keep the plan's django-celery-beat entry in step with its cron text."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    if not plan.schedule_cron:
        if plan.periodic_task_id:
            PeriodicTask.objects.filter(pk=plan.periodic_task_id).delete()
            plan.periodic_task = None
            plan.save(update_fields=["periodic_task"])
        return
    minute, hour, dom, month, dow = plans.parse_cron(plan.schedule_cron)
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow, timezone="UTC"
    )
    org_id = plan.endpoint.project.organization_id
    values = {
        "crontab": crontab,
        "task": "apps.probes.tasks.scheduled_probe_task",
        "args": json.dumps([plan.pk, org_id]),
        "enabled": True,
    }
    if plan.periodic_task_id:
        PeriodicTask.objects.filter(pk=plan.periodic_task_id).update(**values)
    else:
        plan.periodic_task = PeriodicTask.objects.create(name=f"probe-plan-{plan.pk}", **values)
        plan.save(update_fields=["periodic_task"])


@transaction.atomic
def probe_plan_create(*, access: Access, endpoint, **fields) -> ProbePlan:
    """Create a plan for `endpoint`; the profile is checked against the org's limits."""
    org_id = endpoint.project.organization_id
    require_writer(access, org_id)
    fields.setdefault("metrics_url", "")
    keys = fields.get("tenant_keys")
    cleaned = _validated({"parallelism": 1, "max_tokens": 128, **fields}, org_id)
    plan = ProbePlan(endpoint=endpoint, created_by=access.user, **cleaned)
    keys_changed = set_tenant_keys(plan, keys)
    _save_plan(plan)
    _sync_schedule(plan)
    audit_record(
        access=access,
        organization_id=org_id,
        action="probe_plan.create",
        obj=plan,
        changes={**diff({}, snapshot(plan, PLAN_FIELDS)), **(keys_changed or {})},
    )
    return plan


@transaction.atomic
def probe_plan_update(*, access: Access, plan: ProbePlan, **fields) -> ProbePlan:
    org_id = plan.endpoint.project.organization_id
    require_writer(access, org_id)
    before = snapshot(plan, PLAN_FIELDS)
    merged = {**{k: getattr(plan, k) for k in PLAN_FIELDS}, **fields}
    cleaned = _validated(merged, org_id)
    for name in PLAN_FIELDS:
        setattr(plan, name, cleaned[name])
    keys_changed = set_tenant_keys(plan, fields.get("tenant_keys"))
    _save_plan(plan)
    _sync_schedule(plan)
    changes = {**diff(before, snapshot(plan, PLAN_FIELDS)), **(keys_changed or {})}
    if changes:
        audit_record(access=access, organization_id=org_id, action="probe_plan.update", obj=plan, changes=changes)
    return plan


@transaction.atomic
def probe_plan_delete(*, access: Access, plan: ProbePlan) -> None:
    org_id = plan.endpoint.project.organization_id
    require_writer(access, org_id)
    if plan.runs.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FINALIZING]).exists():
        raise ApplicationError("The plan has a run in progress; cancel it first.", code="conflict", status=409)
    audit_record(
        access=access,
        organization_id=org_id,
        action="probe_plan.delete",
        obj=plan,
        changes=diff(snapshot(plan, PLAN_FIELDS), {}),
    )
    if plan.periodic_task_id:
        plan.periodic_task.delete()
    plan.delete()


# --- endpoint compatibility ----------------------------------------------------------------

COMPAT_REQUEST_TIMEOUT_S = 10.0
COMPAT_BUDGET_S = 60.0


@sensitive_variables()  # the endpoint's key, revealed into the config: stars on an error page
def endpoint_compatibility_check(*, access: Access, endpoint) -> dict:
    """Run the compatibility check (engine/compat.py) against `endpoint`, store it on the endpoint
    (probes then leave out the request parts it refuses) and return it. Network trouble is a result,
    not an error; a refused target (SSRF guard) or a malformed stored key is an error."""
    org_id = endpoint.project.organization_id
    require_writer(access, org_id)
    try:
        config = ProbeConfig(
            base_url=endpoint.base_url,
            model=endpoint.model_name,
            stages=[],
            api=endpoint.api_flavour,
            api_key=endpoint.api_key.reveal() if endpoint.api_key else None,
            request_timeout=COMPAT_REQUEST_TIMEOUT_S,
            metrics_url=endpoint.metrics_url or None,
            allow_private=settings.READINESS_ALLOW_PRIVATE_ENDPOINTS,
            request_id_header=endpoint.request_id_header or None,
        )
        report = compat.run_check(config, budget_s=COMPAT_BUDGET_S)
    except (OutboundRefused, ValueError) as exc:
        raise ApplicationError(f"Cannot check this endpoint: {exc}", code="refused") from None
    except TimeoutError:
        raise ApplicationError(
            f"The check took longer than {COMPAT_BUDGET_S:g} s: the server answers too slowly or not at all.",
            code="timeout",
            status=504,
        ) from None
    report["checked_at"] = timezone.now().isoformat()
    type(endpoint).objects.filter(pk=endpoint.pk).update(compatibility=report)
    endpoint.compatibility = report
    refused = plans.refused_parts(report)
    audit_record(
        access=access,
        organization_id=org_id,
        action="endpoint.check_compatibility",
        obj=endpoint,
        changes={"streaming": [None, report["streaming"]], "refused_parts": [None, refused]},
    )
    return report


# --- runs ----------------------------------------------------------------------------------


@transaction.atomic
def probe_run_start(*, access: Access, plan: ProbePlan, trigger: str = Trigger.MANUAL) -> ProbeRun:
    """Queue a run of `plan` (one shard per unit of parallelism); tasks are sent on commit."""
    org_id = plan.endpoint.project.organization_id
    require_writer(access, org_id)
    # One start at a time per org: the checks below read what other starts reserve.
    Organization.objects.select_for_update().filter(pk=org_id).first()
    limits = probe_limits(org_id)
    # The plan was valid when saved; limits may have been lowered since.
    plans.validate_plan({k: getattr(plan, k) for k in PLAN_FIELDS}, limits)
    active = ProbeRun.objects.filter(organization_id=org_id, status__in=ACTIVE_STATUSES).count()
    if active >= limits.max_active_runs:
        raise ApplicationError(
            f"The organization already has {active} probe runs queued or running (at most "
            f"{limits.max_active_runs} at once); wait for one to finish or cancel one.",
            code="limit_exceeded",
            status=429,
        )
    requests_today, tokens_today = usage_today(org_id)
    if requests_today >= limits.max_requests_per_day:
        raise ApplicationError(
            f"The organization's max requests per day ({limits.max_requests_per_day}) is used up.",
            code="limit_exceeded",
            status=429,
        )
    if tokens_today >= limits.max_tokens_per_day:
        raise ApplicationError(
            f"The organization's max tokens per day ({limits.max_tokens_per_day}) is used up.",
            code="limit_exceeded",
            status=429,
        )
    snap = plans.snapshot(plan)
    spec = plans.autoscaling_spec(plan.profile)
    if spec is not None and plans.autoscaling_peak(spec) is None:
        snap["profile"] = {"autoscaling": _autoscaling_capacity(plan, spec, limits)}
    stages, sweep = plans.parse_profile(snap["profile"])
    canary = plans.autoscaling_canary(plans.autoscaling_spec(snap["profile"]))
    planned = plans.max_requests_estimate(stages, sweep)
    if planned is not None and canary is not None:
        planned += canary.rate * sum(s.duration for s in stages)
    tenants = plans.tenant_spec(snap["profile"])
    snap["max_requests"] = plans.run_request_budget(
        limits.max_requests_per_day - requests_today,
        limits.max_tokens_per_day - tokens_today,
        plans.max_tokens_per_request(snap),
        planned,
        limits.max_active_runs,
    )
    if snap["max_requests"] < 1:
        raise ApplicationError(
            f"What is left of the organization's max tokens per day ({limits.max_tokens_per_day}) does not cover "
            f"one request of {plans.max_tokens_per_request(snap)} tokens.",
            code="limit_exceeded",
            status=429,
        )
    snap["max_rate"] = limits.max_rate
    run = ProbeRun.objects.create(
        organization_id=org_id,
        plan=plan,
        trigger=trigger,
        config=snap,
        # A noisy-neighbour run has one shard per tenant, all starting together.
        shard_count=len(tenants["tenants"]) if tenants is not None else plan.parallelism,
        planned_duration_s=plans.planned_duration(stages, sweep, snap["profile"]),
        start_at=time.time() + (TENANT_START_DELAY_S if tenants is not None else START_DELAY_S),
        created_by=access.user,
    )
    ProbeShard.objects.bulk_create([ProbeShard(run=run, index=i) for i in range(run.shard_count)])
    audit_record(
        access=access,
        organization_id=org_id,
        action="probe_run.start",
        obj=run,
        changes={"trigger": [None, trigger], "shards": [None, run.shard_count]},
    )
    transaction.on_commit(lambda: _enqueue(run))
    return run


def _autoscaling_capacity(plan: ProbePlan, spec: dict, limits: plans.Limits) -> dict:
    """Fill in one replica's capacity from the endpoint's latest sweep, so the step is a known
    multiple of it; the resolved peak must still be within the org's rate limit."""
    found = latest_sweep_capacity(plan.endpoint_id)
    if found is None:
        raise ApplicationError(
            "This autoscaling plan steps to a multiple of one replica's capacity, and no sweep on this endpoint "
            "has found one yet: run a sweep plan first, or give replica_capacity_rps or peak_rate.",
            code="capacity_unknown",
            status=409,
            detail={"profile": ["No sweep result on this endpoint yet."]},
        )
    rate, sweep_run = found
    resolved = plans.autoscaling_resolved(spec, rate, f"sweep run #{sweep_run.pk}")
    plans.validate_plan({k: getattr(plan, k) for k in PLAN_FIELDS} | {"profile": {"autoscaling": resolved}}, limits)
    return resolved


# Marks a queued shard whose message could not be sent (the broker was away when its run started);
# the reaper sends it again (`probe_shards_resend`), so the run starts when the broker is back.
UNSENT = "not sent yet: the task queue was unreachable; sent again when it is back"


def _enqueue(run: ProbeRun) -> None:
    try:
        _send_shards(run.shards.all(), run)
    except Exception:  # noqa: BLE001 - the run is committed: its start must not fail now
        logger.warning("probe run %s not queued (broker away): the reaper sends it again", run.pk, exc_info=True)
        ProbeShard.objects.filter(run=run, status=ShardStatus.QUEUED).update(error_message=UNSENT)
        ProbeRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(error_message=UNSENT)  # its page says why


def _send_shards(shards, run: ProbeRun) -> None:
    from apps.probes.tasks import probe_shard_task

    soft = int(run.planned_duration_s + START_DELAY_S + run.config["request_timeout_s"] + 60)
    for shard in shards:
        probe_shard_task.apply_async(
            args=[shard.pk, run.organization_id],
            queue=settings.READINESS_PROBE_QUEUE,
            soft_time_limit=soft,
            time_limit=soft + 30,
        )


def probe_shards_resend() -> int:
    """Send again the shards whose message never left (UNSENT); returns how many went. A shard
    is claimed by a conditional update, so one sent twice still runs once."""
    sent = 0
    for run in ProbeRun.objects.filter(shards__status=ShardStatus.QUEUED, shards__error_message=UNSENT).distinct():
        shards = list(run.shards.filter(status=ShardStatus.QUEUED, error_message=UNSENT))
        try:
            _send_shards(shards, run)
        except Exception:  # noqa: BLE001 - still away: the next reaper tick tries again
            logger.warning("probe run %s still not queued (broker away)", run.pk, exc_info=True)
            break
        sent += ProbeShard.objects.filter(pk__in=[s.pk for s in shards], error_message=UNSENT).update(error_message="")
        ProbeRun.objects.filter(pk=run.pk, error_message=UNSENT).update(error_message="")
    return sent


@transaction.atomic
def probe_run_cancel(*, access: Access, run: ProbeRun) -> ProbeRun:
    """Ask every shard to stop; shards notice within a second and keep what they measured."""
    require_writer(access, run.organization_id)
    if not run.is_active:
        raise ApplicationError(f"The run is already {run.status}.", code="conflict", status=409)
    now = timezone.now()
    ProbeRun.objects.filter(pk=run.pk, cancel_requested_at__isnull=True).update(cancel_requested_at=now)
    # Shards no worker has claimed yet will never run.
    ProbeShard.objects.filter(run=run, status=ShardStatus.QUEUED).update(status=ShardStatus.CANCELLED, finished_at=now)
    audit_record(access=access, organization_id=run.organization_id, action="probe_run.cancel", obj=run)
    run.refresh_from_db()
    transaction.on_commit(lambda: probe_run_finalize(run.pk))
    return run


def probe_run_finalize(run_id: int) -> bool:
    """Compute the run's summary once every shard has finished; only one caller wins the claim."""
    if ProbeShard.objects.filter(run_id=run_id).exclude(status__in=SHARD_FINISHED).exists():
        return False
    claimed = ProbeRun.objects.filter(pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
        status=RunStatus.FINALIZING
    )
    if claimed != 1:
        return False
    run = ProbeRun.objects.get(pk=run_id)
    shards = list(run.shards.order_by("index"))
    snap = run.config
    tenants = plans.tenant_spec(snap["profile"])
    by_shard = records_by_shard(run) if tenants is not None else None
    # The canary's tiny requests are summarized apart: they are a yardstick, not part of the load.
    records, canary = (merged(by_shard.values()) if by_shard is not None else run_records(run)).split(CANARY_STAGE)
    windows = _run_windows(snap, shards, records)
    summary = summarize(records, windows, SLO(**snap["slo"]))
    if len(canary):
        summary["canary"] = summarize_canary(canary, windows, SLO(**snap["slo"]))
    lags = [s.loop_lag_ms for s in shards if s.loop_lag_ms]
    if lags:
        # Each shard measured its own loop; the run is as trustworthy as its busiest shard.
        worst = max(lags, key=lambda d: d.get("p99", 0))
        summary["event_loop_lag_ms"] = worst
        summary["client_saturated"] = (
            summary["client_saturated"] or worst.get("p99", 0) > summary["saturation_threshold_ms"]
        )
        summary["latencies_trustworthy"] = not summary["client_saturated"]
    for shard in shards:
        if shard.extra:
            summary.update(shard.extra)
    starts = [s.origin_wall for s in shards if s.origin_wall is not None]
    summary["shard_start_skew_s"] = round(max(starts) - min(starts), 3) if starts else None
    failed = [s for s in shards if s.status == ShardStatus.FAILED]
    run.diagnosis = next((s.diagnosis for s in shards if s.diagnosis), None)
    if run.diagnosis is not None:
        status, message = RunStatus.FAILED, run.diagnosis["message"]
    elif failed:
        status, message = RunStatus.FAILED, "; ".join(f"shard {s.index}: {s.error_message}" for s in failed)[:500]
    elif run.cancel_requested_at:
        status, message = RunStatus.CANCELLED, ""
    else:
        status, message = RunStatus.SUCCEEDED, ""
    summary["cancelled"] = status == RunStatus.CANCELLED
    run.server_metrics = next((s.server_metrics for s in shards if s.server_metrics), None)
    spec = plans.autoscaling_spec(snap["profile"])
    if spec is not None and len(records):
        summary["autoscaling"] = _autoscaling_analysis(run, records, canary, spec, snap)
    if tenants is not None and len(records):
        summary["tenants"] = _tenant_analysis(tenants, shards, by_shard, snap, summary)
    run.summary = summary
    span = max([w.end for w in windows] + [run.planned_duration_s])
    run.timeline = timeline(records, span)
    run.request_count = len(records) + len(canary)
    run.output_tokens = sum(records.output_tokens) + sum(canary.output_tokens)
    run.status = status
    run.error_message = message
    run.finished_at = timezone.now()
    if status == RunStatus.SUCCEEDED:
        run.regression = regression_check(run)
    run.save()
    _after_run(run)
    return True


def _announce_run(run: ProbeRun, project) -> None:
    """Failed runs, missed SLOs and regressions are findings for the integrations (one per plan)."""
    key = f"plan:{run.plan_id}"
    data = {
        "plan": run.plan.name,
        "run": run.pk,
        "trigger": run.trigger,
        "status": run.status,
        "url": reverse("run-detail", kwargs={"org_slug": project.organization.slug, "pk": run.pk}),
    }
    summary = run.summary or {}
    # What the server said, bounded and redacted: "4xx: 400 x 338: {...}" lines and the preflight's hint.
    data["errors"] = format_error_details(summary.get("error_details") or {})
    if run.status == RunStatus.FAILED:
        diagnosis = run.diagnosis and {k: run.diagnosis.get(k) for k in ("status", "content_type", "body", "hint")}
        announce(
            Event.PROBE_FAILED,
            project=project,
            finding_key=key,
            data={**data, "error": run.error_message, "diagnosis": diagnosis},
        )
        return
    verdict = verdict_for(run)  # the verdict the run's page, the decision and the report show
    data["verdict"] = verdict.as_dict()
    if verdict.outcome == MISSED:
        if verdict.kind == AUTOSCALING:
            missed = [{"slo": "recovery", "ok": False, "detail": why} for why in verdict.missed]
        elif verdict.kind == TENANTS:  # judged by its quiet tenants, not by the run-wide checks
            missed = [{"slo": "tenant isolation", "ok": False, "detail": why} for why in verdict.reasons]
        else:
            missed = [c for c in summary.get("slo_checks", []) if not c["ok"]]
        announce(Event.PROBE_SLO_MISSED, project=project, finding_key=f"{key}:slo", data={**data, "missed": missed})
    if run.regression and run.regression.get("regressed"):
        announce(
            Event.PROBE_REGRESSED,
            project=project,
            finding_key=f"{key}:regression",
            data={**data, "regression": run.regression},
        )


def _after_run(run: ProbeRun) -> None:
    """Finalizing only finalizes: what a finished run sets off runs as tasks of its own once the
    summary is committed, on the decision queue (not behind the probe shards): the decision's
    re-evaluation (`readiness_changed`), the run's announcement, a saturated run's re-run, and
    whatever the apps above listen for on `run_finished` (the reports app's scheduled report)."""
    readiness_changed(run.plan.endpoint.project)
    run_finished.send(sender=ProbeRun, run=run)
    run_id = run.pk
    transaction.on_commit(lambda: _send_followups(run_id))


def _send_followups(run_id: int) -> None:
    from apps.probes.tasks import probe_run_announce_task, probe_run_rerun_task

    for task in (probe_run_announce_task, probe_run_rerun_task):
        task.apply_async(args=[run_id], queue=settings.READINESS_DECISION_QUEUE)


def probe_run_announce(run_id: int) -> None:
    """Tell the integrations what a finished run found (failed, SLO missed, regressed)."""
    run = ProbeRun.objects.select_related("plan__endpoint__project__organization").filter(pk=run_id).first()
    if run is not None:
        _announce_run(run, run.plan.endpoint.project)


def _autoscaling_analysis(run: ProbeRun, records, canary, spec: dict, snap: dict) -> dict:
    """KPIs, timeline, signal ranking and a recommended KEDA / HPA policy (apps/probes/autoscaling)."""
    from apps.probes.autoscaling import analyze_autoscaling

    slo_ms = (snap.get("slo") or {}).get("ttft_p95_ms") or 1000.0
    step_up, step_down = spec["base_s"], spec["base_s"] + spec["hold_s"]
    endpoint = run.plan.endpoint
    series = (run.server_metrics or {}).get("series") or {}
    analysis = analyze_autoscaling(
        records,
        series,
        step_up=step_up,
        step_down=step_down,
        slo_ttft_p95_ms=slo_ms,
        window=max(1.0, min(10.0, spec["hold_s"] / 4)),
        stay=min(60.0, spec["hold_s"] / 2),
        dt=1.0,
        name=run.plan.name,
        deployment=endpoint.name,
        model=endpoint.model_name,
        min_replicas=endpoint.min_replicas or 1,
        max_replicas=endpoint.max_replicas,
        replica_capacity_rps=spec.get("replica_capacity_rps"),
        canary=canary if len(canary) else None,
    )
    analysis.update(
        step_up_s=step_up,
        step_down_s=step_down,
        slo_ttft_p95_ms=slo_ms,
        peak_rate=plans.autoscaling_peak(spec),
        replica_capacity_rps=spec.get("replica_capacity_rps"),
        capacity_source=spec.get("capacity_source"),
    )
    return analysis


SERIES = ("bucket_s", "t", "ttft_p95_ms", "completed_rps", "error_rps")


def _tenant_analysis(spec: dict, shards: list[ProbeShard], by_shard: dict, snap: dict, summary: dict) -> dict:
    """Each tenant's figures from its own shard's records, and the isolation verdict (pure:
    `tenants.analyse`). A shard whose client lagged makes its tenant's latencies untrustworthy."""
    plan = plans.tenant_plan(spec)
    slo = SLO(**snap["slo"])
    runs = []
    for shard in shards:
        tenant = plan.tenants[shard.index]
        records = by_shard.get(shard.index, Records()).split(CANARY_STAGE)[0]
        windows = [Window(**w) for w in shard.windows or []] or [Window(0, tenant.name, 0.0, plan.duration)]
        figures = summarize(records, windows, slo)
        lag = (shard.loop_lag_ms or {}).get("p99", 0)
        figures["client_saturated"] = figures["client_saturated"] or lag > figures["saturation_threshold_ms"]
        runs.append(TenantRun(tenant, records, figures))
    analysis = analyse_tenants(runs, plan, slo, start_skew_s=summary.get("shard_start_skew_s"))
    # Each tenant's p95 TTFT over time, in buckets wide enough to hold a few of a quiet tenant's requests.
    width = max(2.0, math.ceil(plan.duration / 60))
    analysis["series"] = {
        run.tenant.name: {k: v for k, v in timeline(run.records, plan.duration, width=width).items() if k in SERIES}
        for run in runs
    }
    return analysis


def _run_windows(snap: dict, shards: list[ProbeShard], records) -> list[Window]:
    """The windows the shards really measured (a cancelled stage ends when it stopped); for shards
    that died without saying, the planned windows cut at the last request sent. A noisy-neighbour
    run's shards each ran a tenant's own stages: the run's figures span the whole of it."""
    if plans.tenant_spec(snap["profile"]) is not None:
        ends = [w["end"] for shard in shards for w in (shard.windows or [])]
        return [Window(0, "all tenants", 0.0, max(ends, default=max(records.intended, default=0.0) + 1e-6))]
    reported = [w for shard in shards for w in (shard.windows or [])]
    if reported:
        by_stage: dict[int, dict] = {}
        for w in reported:  # shards share a schedule; the longest-running one bounds each stage
            if w["stage"] not in by_stage or w["end"] > by_stage[w["stage"]]["end"]:
                by_stage[w["stage"]] = w
        return [Window(**w) for _, w in sorted(by_stage.items())]
    _, sweep = plans.parse_profile(snap["profile"])
    if sweep is not None:
        return [Window(0, "sweep", 0.0, max(records.intended, default=0.0))]
    planned = plans.windows_for(snap)
    if len(records) and any(s.status == ShardStatus.FAILED for s in shards):
        last = max(records.intended) + 1e-6  # windows are half-open: keep the last send in
        planned = [Window(w.stage, w.label, w.start, max(w.start, min(w.end, last))) for w in planned]
    return planned


def regression_check(run: ProbeRun) -> dict | None:
    """Compare with the plan's previous successful run: p95 TTFT / TPOT up by more than the
    plan's threshold, throughput down by more, or an SLO met before and missed now. Runs that
    are not evidence (a saturated client) are not compared: their latencies mean nothing."""
    before = previous_run(run)
    if before is None or not before.summary:
        return None
    now_v, then_v = verdict_for(run), verdict_for(before)
    if not (now_v.evidence and then_v.evidence):
        return None
    threshold = run.plan.regression_threshold_pct
    now_o, then_o = run.summary["overall"], before.summary["overall"]
    findings = []
    for label, key, pct, worse_if_up in (
        ("p95 TTFT", "ttft_ms", "p95", True),
        ("p95 TPOT", "tpot_ms", "p95", True),
        ("p99 E2E", "e2e_ms", "p99", True),
    ):
        a, b = then_o[key].get(pct), now_o[key].get(pct)
        if a and b and worse_if_up and (b - a) / a * 100 > threshold:
            findings.append(f"{label} up {((b - a) / a * 100):.0f}% ({a:.1f} → {b:.1f} ms)")
    a, b = then_o["output_token_throughput"], now_o["output_token_throughput"]
    if a and (a - b) / a * 100 > threshold:
        findings.append(f"output tokens/s down {((a - b) / a * 100):.0f}% ({a:.0f} → {b:.0f})")
    if then_v.outcome == MET and now_v.outcome == MISSED:
        findings.append(f"SLO newly missed: {', '.join(now_v.missed)}")
    return {"previous_run": before.pk, "regressed": bool(findings), "findings": findings, "threshold_pct": threshold}


def probe_runs_reap(*, now=None) -> int:
    """Fail shards whose heartbeat stopped ("worker lost") and finalize their runs; returns shards reaped.
    Judged by the database's clock, the one heartbeats are written with: a jump of this machine's
    clock reaps nothing alive."""
    now = now or db_now()
    stale = now - timedelta(seconds=settings.READINESS_PROBE_HEARTBEAT_TIMEOUT_S)
    lost = ProbeShard.objects.filter(status=ShardStatus.RUNNING, heartbeat_at__lt=stale)
    run_ids = set(lost.values_list("run_id", flat=True))
    reaped = lost.update(status=ShardStatus.FAILED, finished_at=now, error_message="worker lost (no heartbeat)")
    # Never picked up (no worker, or the message was lost): give up after an hour.
    never = ProbeShard.objects.filter(status=ShardStatus.QUEUED, run__created_at__lt=now - timedelta(hours=1))
    run_ids |= set(never.values_list("run_id", flat=True))
    reaped += never.update(status=ShardStatus.FAILED, finished_at=now, error_message="no worker picked the shard up")
    # Runs whose shards all finished but whose finalizer died in between.
    run_ids |= set(ProbeRun.objects.filter(status=RunStatus.RUNNING, updated_at__lt=stale).values_list("pk", flat=True))
    run_ids |= set(
        ProbeRun.objects.filter(status=RunStatus.FINALIZING, updated_at__lt=stale).values_list("pk", flat=True)
    )
    ProbeRun.objects.filter(pk__in=run_ids, status=RunStatus.FINALIZING, updated_at__lt=stale).update(
        status=RunStatus.RUNNING
    )
    for run_id in run_ids:
        _finalize_or_fail(run_id)
    return reaped


def _finalize_or_fail(run_id: int) -> None:
    """Finalize one reaped run; one that cannot be summarized fails with the reason instead of
    failing every reaper tick, and holding up the other organizations' runs behind it."""
    try:
        with transaction.atomic():
            probe_run_finalize(run_id)
    except Exception as exc:  # noqa: BLE001 (any bug in one run's summary)
        logger.exception("probe run %s could not be finalized", run_id)
        ProbeRun.objects.filter(pk=run_id, status__in=ACTIVE_STATUSES).update(
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            error_message=f"its results could not be summarized ({type(exc).__name__}); its records are kept"[:500],
        )
