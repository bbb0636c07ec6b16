"""The price catalog, traffic profiles and the monthly projection that feeds the go/no-go.

The arithmetic is pure (`apps/costs/pricing.py`); this module picks its inputs: the project's
newest successful probe run (its SLO-compliant throughput, per replica), the endpoint's price
(or the catalog's for its GPU type), the expected traffic, and the catalog's hosted models.
"""

from __future__ import annotations

import logging
import time
import uuid
import zlib
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from apps.core.clock import db_now
from apps.core.errors import ApplicationError
from apps.core.readiness import readiness_changed
from apps.core.services import audit_record, diff, require_writer, save_unique, snapshot
from apps.costs import catalog, pricing, stored
from apps.costs.models import Price, PriceKind, TrafficProfile, UsageLog, UsageLogStatus
from apps.orgs.access import Access
from apps.orgs.models import Organization
from apps.probes.engine.tenants import MAX_TENANTS, TenantPlan
from apps.probes.selectors import latest_runs
from apps.probes.services import probe_plan_create
from apps.probes.verdict import STEADY, run_kind, verdict_for

logger = logging.getLogger(__name__)

PRICE_FIELDS = [
    "name",
    "provider",
    "usd_per_gpu_hour",
    "spot_usd_per_gpu_hour",
    "hbm_gb",
    "hbm_bandwidth_gb_per_s",
    "usd_per_mtok_input",
    "usd_per_mtok_output",
    "source",
    "as_of",
]
TRAFFIC_FIELDS = [
    f.name for f in TrafficProfile._meta.fields if f.name not in ("id", "project", "created_at", "updated_at")
]


def ensure_catalog(org: Organization) -> None:
    """Seed the org's catalog from readiness' list once; later edits are the org's own."""
    if Price.objects.filter(organization=org).exists():
        return
    rows = [
        Price(
            organization=org,
            kind=PriceKind.GPU,
            name=g.name,
            provider=g.provider,
            usd_per_gpu_hour=g.usd_per_gpu_hour,
            spot_usd_per_gpu_hour=g.spot_usd_per_gpu_hour,
            hbm_gb=g.hbm_gb,
            hbm_bandwidth_gb_per_s=g.hbm_bandwidth_gb_per_s,
            source=g.source,
            as_of=g.as_of,
        )
        for g in catalog.GPUS
    ]
    rows += [
        Price(
            organization=org,
            kind=PriceKind.API,
            name=a.name,
            provider=a.provider,
            usd_per_mtok_input=a.usd_per_mtok_input,
            usd_per_mtok_output=a.usd_per_mtok_output,
            source=a.source,
            as_of=a.as_of,
        )
        for a in catalog.HOSTED_MODELS
    ]
    Price.objects.bulk_create(rows, ignore_conflicts=True)


@transaction.atomic
def price_update(*, access: Access, price: Price, **fields) -> Price:
    require_writer(access, price.organization_id)
    unknown = set(fields) - set(PRICE_FIELDS)
    if unknown:
        raise ApplicationError("Unknown fields.", detail={f: ["Unknown field."] for f in sorted(unknown)})
    before = snapshot(price, PRICE_FIELDS)
    for name, value in fields.items():
        setattr(price, name, value)
    errors = {}
    for name in ("usd_per_gpu_hour", "spot_usd_per_gpu_hour", "usd_per_mtok_input", "usd_per_mtok_output"):
        value = getattr(price, name)
        try:
            if value is not None and Decimal(str(value)) < 0:
                errors[name] = ["Must be zero or more."]
        except InvalidOperation:
            errors[name] = ["A number."]
    if price.kind == PriceKind.GPU and price.usd_per_gpu_hour is None:
        errors["usd_per_gpu_hour"] = ["A GPU needs its on-demand price."]
    if price.kind == PriceKind.API and (price.usd_per_mtok_input is None or price.usd_per_mtok_output is None):
        errors["usd_per_mtok_output"] = ["A hosted model needs its input and output prices."]
    if not price.as_of or price.as_of > timezone.localdate():
        errors["as_of"] = ["The date the price was read, not in the future."]
    if not (price.source or "").strip():
        errors["source"] = ["Say where the price comes from."]
    if errors:
        raise ApplicationError("The price has invalid fields.", detail=errors)
    save_unique(
        price,
        field="name",
        message=f"The catalog already has a {price.kind} price named {price.name!r}.",
        hint="Already in the catalog.",
    )
    changes = diff(before, snapshot(price, PRICE_FIELDS))
    if changes:
        audit_record(
            access=access, organization_id=price.organization_id, action="price.update", obj=price, changes=changes
        )
    return price


@transaction.atomic
def traffic_save(*, access: Access, project, **fields) -> TrafficProfile:
    """Create or update the project's expected traffic; checked by the projection's own rules."""
    require_writer(access, project.organization_id)
    unknown = set(fields) - set(TRAFFIC_FIELDS)
    if unknown:
        raise ApplicationError("Unknown fields.", detail={f: ["Unknown field."] for f in sorted(unknown)})
    profile = TrafficProfile.objects.filter(project=project).first() or TrafficProfile(project=project)
    before = snapshot(profile, TRAFFIC_FIELDS) if profile.pk else {}
    for name, value in fields.items():
        setattr(profile, name, value)
    try:
        _traffic(profile)
        pricing.Schedule(
            hours_per_day=profile.business_hours_per_day,
            days_per_month=profile.business_days_per_month,
            start_hour=profile.business_start_hour,
        )
    except (TypeError, ValueError) as exc:
        raise ApplicationError(
            f"The traffic profile is not consistent: {exc}.", detail={"traffic": [str(exc)]}
        ) from None
    profile.save()
    audit_record(
        access=access,
        organization_id=project.organization_id,
        action="traffic.save",
        obj=profile,
        changes=diff(before, snapshot(profile, TRAFFIC_FIELDS)),
    )
    readiness_changed(project)  # the projected cost feeds the go/no-go
    return profile


def _traffic(profile: TrafficProfile) -> pricing.Traffic:
    return pricing.Traffic(
        requests_per_day=profile.requests_per_day,
        input_tokens_per_request=profile.input_tokens_per_request,
        output_tokens_per_request=profile.output_tokens_per_request,
        peak_to_average=profile.peak_to_average,
        active_hours_per_day=profile.active_hours_per_day,
        active_days_per_month=profile.active_days_per_month,
        active_start_hour=profile.active_start_hour,
    )


def _f(value) -> float | None:
    return float(value) if value is not None else None


def cost_for(project, runs) -> dict | None:
    """The cost projection from the newest of `runs` (`probes.selectors.latest_runs`) that counts
    as evidence, or None.

    A cancelled or client-saturated run measured less goodput than the server has: a projection
    from it would be a cost nobody will pay, so it is left out like everywhere else."""
    usable = [r for r in runs if verdict_for(r).evidence]
    # Capacity comes from steady load: an autoscaling run's goodput includes its transient, and a
    # noisy-neighbour run's its burst.
    steady = [r for r in usable if run_kind(r.config, r.summary) == STEADY]
    return project_projection(project, (steady or usable)[0] if usable else None)


def tenant_costs(project, runs) -> dict | None:
    """Each tenant's price per 1M output tokens within the SLO in the newest noisy-neighbour run of
    `runs` (`latest_runs`) that counts as evidence, at its endpoint's price
    (`pricing.tenant_usd_per_mtok_output`)."""
    run = next((r for r in runs if (r.summary or {}).get("tenants") and verdict_for(r).evidence), None)
    if run is None:
        return None
    endpoint, analysis = run.plan.endpoint, run.summary["tenants"]
    usd_per_hour = usd_per_mtok = None
    if endpoint.price_model == "hosted_api":
        usd_per_mtok = _f(endpoint.output_usd_per_mtok)
    else:
        gpus = Price.objects.filter(organization=project.organization, kind=PriceKind.GPU)
        gpu = gpus.filter(name=endpoint.gpu_type).first()
        hourly = _f(endpoint.gpu_hourly_usd) or (_f(gpu.usd_per_gpu_hour) if gpu else None)
        if hourly is not None and endpoint.gpus_per_replica:
            usd_per_hour = hourly * endpoint.gpus_per_replica * (endpoint.min_replicas or 1)
    return {
        "run_id": run.pk,
        "plan": run.plan.name,
        "priced": usd_per_hour is not None or usd_per_mtok is not None,
        "tenants": pricing.tenant_usd_per_mtok_output(
            analysis["tenants"],
            duration_s=analysis.get("duration_s") or run.planned_duration_s,
            usd_per_hour=usd_per_hour,
            usd_per_mtok=usd_per_mtok,
        ),
    }


def project_projection(project, run) -> dict | None:
    """The monthly options for `project` from `run` (its newest successful probe run), or None
    without a run. Shape: {"projected_monthly_usd", "cost_per_1m_output_tokens_usd", "method",
    "notes", "options", "cheapest", ...}; "projected_monthly_usd" is the cheapest option that
    meets the SLOs, which is what the budget rule compares."""
    if run is None:
        return None
    overall = (run.summary or {}).get("overall") or {}
    endpoint = run.plan.endpoint
    ensure_catalog(project.organization)
    prices = list(Price.objects.filter(organization=project.organization))
    today = timezone.localdate()
    rps, goodput = overall.get("request_throughput") or 0.0, overall.get("goodput") or 0.0
    tokens_per_request = overall.get("output_token_throughput", 0.0) / rps if rps else 0.0
    out = {
        "endpoint": endpoint.name,
        "run_id": run.pk,
        "budget_usd": _f(project.monthly_budget_usd),
        "goodput_rps": goodput,
        "tokens_per_request": round(tokens_per_request, 1),
        "notes": [],
        "projected_monthly_usd": None,
        "cost_per_1m_output_tokens_usd": None,
        "options": [],
        "cheapest": None,
        "stale_prices": pricing.stale_prices(prices, today=today, max_age_days=settings.READINESS_PRICE_MAX_AGE_DAYS),
    }
    profile = TrafficProfile.objects.filter(project=project).first()
    if profile is not None:
        traffic = _traffic(profile)
    elif project.expected_peak_rpm:
        # No profile yet: the expected peak held all day, every day (an upper bound).
        traffic = pricing.Traffic(
            requests_per_day=project.expected_peak_rpm * 60 * 24,
            input_tokens_per_request=0,
            output_tokens_per_request=max(tokens_per_request, 1),
        )
        out["notes"].append("no traffic profile: the expected peak is assumed all month (set one on the cost page)")
    else:
        traffic = None
        out["notes"].append("set the expected traffic (cost page) or the project's expected peak to project a month")
    hosted = [
        pricing.HostedModel(p.name, float(p.usd_per_mtok_input), float(p.usd_per_mtok_output))
        for p in prices
        if p.kind == PriceKind.API
    ]
    if endpoint.price_model == "hosted_api":
        return _hosted_endpoint(out, endpoint, traffic, hosted)
    catalog_gpu = next((p for p in prices if p.kind == PriceKind.GPU and p.name == endpoint.gpu_type), None)
    hourly = _f(endpoint.gpu_hourly_usd) or (_f(catalog_gpu.usd_per_gpu_hour) if catalog_gpu else None)
    if hourly is None or not endpoint.gpus_per_replica:
        out["notes"].append("the endpoint has no GPU price (set it, or a GPU type the catalog knows)")
        return out
    probed_replicas = endpoint.min_replicas or 1
    good_tokens_per_s = tokens_per_request * goodput
    if good_tokens_per_s <= 0:
        out["notes"].append("no request met the SLO: capacity and cost per token are unbounded")
        return out
    out["cost_per_1m_output_tokens_usd"] = round(
        pricing.self_hosted_usd_per_mtok_output(
            usd_per_gpu_hour=hourly,
            gpus_per_replica=endpoint.gpus_per_replica,
            replicas=probed_replicas,
            goodput_output_tokens_per_s=good_tokens_per_s,
        ),
        4,
    )
    out["method"] = (
        f"{endpoint.gpus_per_replica}× {endpoint.gpu_type or 'GPU'} at ${hourly:,.2f}/GPU-h per replica, "
        f"{goodput / probed_replicas:.2f} SLO-compliant req/s per replica (run #{run.pk})"
    )
    if traffic is None:
        return out
    spot_hourly = _f(catalog_gpu.spot_usd_per_gpu_hour) if catalog_gpu else None
    spec = pricing.ReplicaSpec(
        usd_per_gpu_hour=hourly,
        gpus_per_replica=endpoint.gpus_per_replica,
        goodput_requests_per_s=goodput / probed_replicas,
        spot_usd_per_gpu_hour=spot_hourly,
    )
    p = profile
    projection = pricing.project_monthly(
        spec=spec,
        traffic=traffic,
        min_replicas=p.min_replicas if p else 1,
        scale_down_delay_s=p.scale_down_delay_s if p else 600,
        scale_up_lead_s=p.scale_up_lead_s if p else 0,
        schedule=pricing.Schedule(
            hours_per_day=p.business_hours_per_day,
            days_per_month=p.business_days_per_month,
            start_hour=p.business_start_hour,
        )
        if p
        else None,
        spot=pricing.Spot(headroom_replicas=p.spot_headroom_replicas) if p and spec.spot_usd_per_gpu_hour else None,
        hosted=hosted,
    )
    out.update(_projection_fields(projection))
    return out


def _cents(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _projection_fields(projection) -> dict:
    """The projection as the page, the report and the API show it: money rounded to cents (a
    float sum such as 422.40000000000003 never leaves), prices per 1M tokens to 1/100 of a cent."""
    d = projection.to_dict()
    cheapest = projection.cheapest
    options = [
        {
            **o,
            "usd_per_month": _cents(o["usd_per_month"]),
            "vs_hosted_usd": _cents(o["vs_hosted_usd"]),
            "usd_per_mtok_output": None if o["usd_per_mtok_output"] is None else round(o["usd_per_mtok_output"], 4),
        }
        for o in d["options"]
    ]
    return {
        "options": options,
        "cheapest": d["cheapest"],
        "projected_monthly_usd": _cents(cheapest.usd_per_month) if cheapest else None,
        "always_on_usd_per_month": round(projection.always_on_usd_per_month, 2),
        "saving_vs_always_on_usd": _cents(d["saving_vs_always_on_usd"]),
        "saving_vs_always_on_pct": d["saving_vs_always_on_pct"],
        "requests_per_month": round(projection.requests_per_month),
        "peak_rps": round(projection.peak_rps, 3),
        "average_rps": round(projection.average_rps, 3),
        "projection_notes": projection.notes,
    }


def _hosted_endpoint(out: dict, endpoint, traffic, hosted) -> dict:
    price_in, price_out = _f(endpoint.input_usd_per_mtok), _f(endpoint.output_usd_per_mtok)
    if price_in is None or price_out is None:
        out["notes"].append("the endpoint has no token prices")
        return out
    out["cost_per_1m_output_tokens_usd"] = price_out
    out["method"] = f"hosted API at ${price_in:g} in / ${price_out:g} out per 1M tokens"
    if traffic is None:
        return out
    requests_per_month = traffic.requests_per_day * traffic.active_days_per_month
    options = []
    choices = [(endpoint.name, price_in, price_out)]
    choices += [(h.name, h.usd_per_mtok_input, h.usd_per_mtok_output) for h in hosted]
    for name, p_in, p_out in choices:
        cost = pricing.hosted_cost(
            usd_per_mtok_input=p_in,
            usd_per_mtok_output=p_out,
            input_tokens_per_request=traffic.input_tokens_per_request,
            output_tokens_per_request=traffic.output_tokens_per_request,
        )
        options.append(
            {
                "key": f"hosted:{name}",
                "label": name,
                "usd_per_month": round(cost.usd_per_request * requests_per_month, 2),
                "meets_slo": True if name == endpoint.name else None,
            }
        )
    out.update(options=options, cheapest=options[0]["key"], projected_monthly_usd=options[0]["usd_per_month"])
    return out


# --- usage logs --------------------------------------------------------------------------------

USAGE_SUFFIXES = stored.SUFFIXES


@transaction.atomic
def usage_log_upload(*, access: Access, project, upload) -> UsageLog:
    """Keep the file and queue its analysis (a worker streams it: tens of millions of rows are fine).

    Refused beyond READINESS_USAGE_LOG_MAX_BYTES for the file, and beyond the organization's
    READINESS_USAGE_LOG_ORG_QUOTA_BYTES for all its uploaded logs together."""
    require_writer(access, project.organization_id)
    name = (upload.name or "").rsplit("/", 1)[-1]
    if not name.lower().endswith(USAGE_SUFFIXES):
        raise ApplicationError(
            "A usage log is a .csv or .jsonl file (optionally .gz).",
            detail={"file": [f"Expected one of {', '.join(USAGE_SUFFIXES)}."]},
        )
    size, most = upload.size, settings.READINESS_USAGE_LOG_MAX_BYTES
    if size > most:
        message = (
            f"The file is {size:,} bytes; an uploaded usage log may be at most {most:,} bytes "
            "(READINESS_USAGE_LOG_MAX_BYTES). Gzip it, or have an operator put it in the "
            "organization's import folder."
        )
        raise ApplicationError(message, detail={"file": [message]})
    # Lock the organization's row so that two uploads at once cannot both fit in the last space.
    Organization.objects.select_for_update().get(pk=project.organization_id)
    used = _usage_logs_stored_bytes(project.organization_id)
    quota = settings.READINESS_USAGE_LOG_ORG_QUOTA_BYTES
    if used + size > quota:
        message = (
            f"The organization's usage logs already take {used:,} of its {quota:,} bytes "
            f"(READINESS_USAGE_LOG_ORG_QUOTA_BYTES); this {size:,}-byte file does not fit. "
            "Delete logs that are no longer needed (API: DELETE /api/v1/usage-logs/<id>/)."
        )
        raise ApplicationError(message, detail={"file": [message]})
    log = UsageLog.objects.create(
        project=project, name=name[:200], file=upload, size_bytes=size, uploaded_by=access.user
    )
    audit_record(
        access=access,
        organization_id=project.organization_id,
        action="usage_log.upload",
        obj=log,
        changes={"name": [None, log.name], "size_bytes": [None, log.size_bytes]},
    )
    transaction.on_commit(lambda: _queue_analysis(log.pk))
    return log


def _usage_logs_stored_bytes(org_id: int) -> int:
    """Bytes of the org's uploaded logs (logs in the import folder are the operator's, not counted)."""
    uploaded = UsageLog.objects.filter(project__organization_id=org_id).exclude(file="")
    return uploaded.aggregate(total=Sum("size_bytes"))["total"] or 0


@transaction.atomic
def usage_log_delete(*, access: Access, log: UsageLog) -> None:
    """Delete the log, its analysis and its uploaded file (which frees the org's quota). A worker
    still analysing it loses its claim and stops at its next heartbeat."""
    require_writer(access, log.project.organization_id)
    audit_record(
        access=access,
        organization_id=log.project.organization_id,
        action="usage_log.delete",
        obj=log,
        changes={"name": [log.name, None], "size_bytes": [log.size_bytes, None]},
    )
    file = log.file
    log.delete()
    if file:
        storage, name = file.storage, file.name
        transaction.on_commit(lambda: storage.delete(name))


def usage_log_from_stored(*, access: Access, project, name: str) -> UsageLog:
    """Analyse a log already on the server, in the org's import folder (nothing is copied)."""
    require_writer(access, project.organization_id)
    try:
        path = stored.resolve(settings.READINESS_USAGE_LOG_IMPORT_DIR, project.organization.slug, name)
    except stored.StoredLogError as exc:
        raise ApplicationError(str(exc), detail={"stored_name": [str(exc)]}) from None
    log = UsageLog.objects.create(
        project=project,
        name=path.name[:200],
        stored_name=name.strip(),
        size_bytes=path.stat().st_size,
        uploaded_by=access.user,
    )
    audit_record(
        access=access,
        organization_id=project.organization_id,
        action="usage_log.from_stored",
        obj=log,
        changes={"stored_name": [None, log.stored_name], "size_bytes": [None, log.size_bytes]},
    )
    transaction.on_commit(lambda: _queue_analysis(log.pk))
    return log


def _usage_log_path(log: UsageLog):
    """Where the worker reads the log: the upload, or the stored file, resolved again (it may have
    been moved, or a symlink changed, since it was chosen)."""
    if log.file:
        return log.file.path
    return stored.resolve(settings.READINESS_USAGE_LOG_IMPORT_DIR, log.project.organization.slug, log.stored_name)


def _queue_analysis(log_id: int) -> None:
    from apps.costs.tasks import usage_log_analyse_task

    usage_log_analyse_task.delay(log_id)


# A log whose analysis killed this many workers (out of memory, hard time limit) is not tried again.
USAGE_LOG_MAX_ATTEMPTS = 3
# What each cap is called where an operator changes it: named in the error the user sees.
_LIMIT_SETTINGS = {
    "bytes": "READINESS_USAGE_LOG_MAX_DECOMPRESSED_BYTES",
    "rows": "READINESS_USAGE_LOG_MAX_ROWS",
    "distinct": "READINESS_USAGE_LOG_MAX_DISTINCT",
}
_CHART_HOURS = 24 * 62


class _ClaimLost(Exception):
    """The log is no longer this attempt's: reaped, deleted, or claimed by another worker."""


def _stale_analysis(now) -> Q:
    """An analysis whose worker has not reported within the heartbeat timeout (presumed dead)."""
    stale = now - timedelta(seconds=settings.READINESS_USAGE_LOG_HEARTBEAT_TIMEOUT_S)
    # No heartbeat at all: claimed before heartbeats existed; its last change says how old it is.
    return Q(status=UsageLogStatus.ANALYSING) & (
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, updated_at__lt=stale)
    )


class _Heartbeat:
    """Reports the attempt alive every quarter of the timeout, and stops it (raises _ClaimLost)
    once the log is not its own any more, so that it does not work on for nothing."""

    def __init__(self, log_id: int, claim: str) -> None:
        self.log_id, self.claim = log_id, claim
        self.every_s = settings.READINESS_USAGE_LOG_HEARTBEAT_TIMEOUT_S / 4
        self.last = time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() - self.last < self.every_s:
            return
        self.last = time.monotonic()
        mine = UsageLog.objects.filter(pk=self.log_id, status=UsageLogStatus.ANALYSING, claim=self.claim)
        if not mine.update(heartbeat_at=db_now()):
            raise _ClaimLost


def _usage_log_claim(log_id: int) -> str | None:
    """Claim the log for one attempt (a conditional update: of two workers, one wins): a queued
    log, or one whose worker stopped heartbeating (its message was redelivered after the worker
    died). Returns the claim, or None: done, failed, gone, or analysed by a live worker."""
    now = db_now()  # heartbeats are written and judged by the database's clock
    claim = uuid.uuid4().hex
    claimable = UsageLog.objects.filter(Q(status=UsageLogStatus.QUEUED) | _stale_analysis(now), pk=log_id)
    if claimable.filter(attempts__lt=USAGE_LOG_MAX_ATTEMPTS).update(
        status=UsageLogStatus.ANALYSING, claim=claim, heartbeat_at=now, attempts=F("attempts") + 1, updated_at=now
    ):
        return claim
    # A log that has stopped every worker it was given is failed rather than tried again.
    claimable.update(
        status=UsageLogStatus.FAILED,
        claim="",
        analysed_at=now,
        updated_at=now,
        error=f"The analysis stopped its worker {USAGE_LOG_MAX_ATTEMPTS} times (killed, out of memory "
        "or past the hard time limit); it is not tried again.",
    )
    return None


def _usage_log_finish(log_id: int, claim: str, **fields) -> bool:
    """Store the attempt's outcome, only if the log is still its own (not reaped, not reclaimed)."""
    now = timezone.now()
    mine = UsageLog.objects.filter(pk=log_id, status=UsageLogStatus.ANALYSING, claim=claim)
    return bool(mine.update(**fields, claim="", analysed_at=now, updated_at=now))


def usage_log_analyse(log_id: int) -> UsageLog | None:
    """Analyse a log once: claimed by a conditional update (a redelivered message finds it taken,
    unless its worker died), heartbeating while it reads, within the caps (settings
    READINESS_USAGE_LOG_*). Failures are stored on the log with their reason, not raised.
    Returns the log, or None when this call did not analyse it."""
    from apps.costs import usage

    claim = _usage_log_claim(log_id)
    if claim is None:
        return None
    try:
        log_row = UsageLog.objects.select_related("project", "project__organization").get(pk=log_id)
        fields = _usage_log_analysis(log_row, _Heartbeat(log_id, claim), usage, latest_runs)
    except _ClaimLost:
        return None
    except SoftTimeLimitExceeded:
        fields = _failed(
            f"The analysis took longer than {settings.READINESS_USAGE_LOG_SOFT_TIME_LIMIT_S:,} s "
            "(READINESS_USAGE_LOG_SOFT_TIME_LIMIT_S) and was stopped. Analyse a shorter "
            "stretch of the log."
        )
    except usage.UsageLimitExceeded as exc:
        setting = _LIMIT_SETTINGS.get(exc.limit)
        fields = _failed(f"The log is too large to analyse: {exc}" + (f" ({setting})." if setting else "."))
    except UsageLog.DoesNotExist:
        return None
    except (OSError, ValueError, UnicodeDecodeError, EOFError, zlib.error) as exc:
        # EOFError: a gzip cut short; zlib.error: a corrupt one; OSError: not gzip, or unreadable.
        fields = _failed(f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a bug must not leave the log "analysing" until the reaper
        logger.exception("usage log %s: the analysis crashed", log_id)
        fields = _failed(f"The analysis failed unexpectedly ({type(exc).__name__}).")
    if not _usage_log_finish(log_id, claim, **fields):
        return None
    return UsageLog.objects.filter(pk=log_id).first()


def _failed(message: str) -> dict:
    return {"status": UsageLogStatus.FAILED, "error": message[:500]}


def _usage_log_analysis(log_row: UsageLog, heartbeat: _Heartbeat, usage, latest_runs) -> dict:
    runs = latest_runs(log_row.project)
    replica_rps, usd_per_mtok_output = None, 0.0
    if runs:
        overall = (runs[0].summary or {}).get("overall") or {}
        replicas = runs[0].plan.endpoint.min_replicas or 1
        replica_rps = (overall.get("goodput") or 0.0) / replicas or None
        projection = project_projection(log_row.project, runs[0]) or {}
        usd_per_mtok_output = projection.get("cost_per_1m_output_tokens_usd") or 0.0
    limits = usage.Limits(
        max_bytes=settings.READINESS_USAGE_LOG_MAX_DECOMPRESSED_BYTES,
        max_rows=settings.READINESS_USAGE_LOG_MAX_ROWS,
        max_distinct=settings.READINESS_USAGE_LOG_MAX_DISTINCT,
    )
    heartbeat()
    result = usage.analyze_usage(
        _usage_log_path(log_row),
        replica_goodput_requests_per_s=replica_rps,
        usd_per_mtok_output=usd_per_mtok_output,
        limits=limits,
        progress=heartbeat,
    )
    analysis = result.to_dict()
    analysis["busiest_hour"] = result.busiest_hour()
    return {
        "status": UsageLogStatus.DONE,
        "error": "",
        "analysis": analysis,
        "hourly_requests": result.hourly_requests(_CHART_HOURS),
    }


def usage_logs_reap(*, now=None) -> int:
    """Fail analyses whose worker stopped heartbeating (lost, killed, past the hard time limit);
    returns how many. Their worker, should it come back, finds its claim gone and stores nothing."""
    now = now or db_now()
    return UsageLog.objects.filter(_stale_analysis(now)).update(
        status=UsageLogStatus.FAILED,
        claim="",
        analysed_at=now,
        updated_at=now,
        error=(
            f"The analysis stopped: its worker sent no heartbeat for "
            f"{settings.READINESS_USAGE_LOG_HEARTBEAT_TIMEOUT_S:,} s (READINESS_USAGE_LOG_HEARTBEAT_TIMEOUT_S). "
            "It was lost, killed (out of memory?) or stopped at the hard time limit "
            f"({settings.READINESS_USAGE_LOG_TIME_LIMIT_S:,} s, READINESS_USAGE_LOG_TIME_LIMIT_S)."
        ),
    )


@transaction.atomic
def usage_log_apply(*, access: Access, log: UsageLog) -> TrafficProfile:
    """Take the log's traffic shape as the project's expected traffic (requests/day, tokens, peak)."""
    if log.status != UsageLogStatus.DONE:
        raise ApplicationError("The log has not been analysed yet.", code="conflict", status=409)
    a = log.analysis
    days = max(1.0, (a["per_minute"]["span_minutes"] or 0) / 1440)
    requests = max(1, a["requests"])
    fields = {
        "requests_per_day": max(1, round(requests / days)),
        "input_tokens_per_request": round(a["input_tokens"] / requests),
        "output_tokens_per_request": max(1, round(a["output_tokens"] / requests)),
        "peak_to_average": max(1.0, round(a["per_minute"]["peak_to_average_requests"] or 1.0, 2)),
    }
    return traffic_save(access=access, project=log.project, **fields)


def usage_log_replay_plan(
    *, access: Access, log: UsageLog, endpoint, scale: float = 1.0, seconds_per_minute: float = 6.0
):
    """A probe plan on one of the project's endpoints that replays the log's busiest hour: each
    minute becomes `seconds_per_minute` seconds of Poisson load at that minute's rate x `scale`,
    with the log's average prompt and completion sizes. Checked against the org's probe limits."""
    from apps.costs import usage

    require_writer(access, log.project.organization_id)
    if log.status != UsageLogStatus.DONE:
        raise ApplicationError("The log has not been analysed yet.", code="conflict", status=409)
    if endpoint is None or endpoint.project_id != log.project_id:
        raise ApplicationError(
            "Choose an endpoint of this log's project.", detail={"endpoint": ["Not an endpoint of this project."]}
        )
    curve = ((log.analysis or {}).get("busiest_hour") or {}).get("requests_per_minute") or []
    if not any(curve):
        raise ApplicationError("The log has no requests to replay.", code="conflict", status=409)
    for name, value in (("scale", scale), ("seconds_per_minute", seconds_per_minute)):
        if not (isinstance(value, int | float) and value == value and 0 < value <= 1e6):
            raise ApplicationError(f"{name} must be a positive number.", detail={name: ["Must be positive."]})
    profile = usage.probe_profile_from_curve(curve, scale=scale, seconds_per_minute=seconds_per_minute, name="minute")
    requests = max(1, log.analysis["requests"])
    return probe_plan_create(
        access=access,
        endpoint=endpoint,
        name=f"replay {log.name} x{scale:g}"[:100],
        profile=profile,
        prompt_tokens=max(1, round(log.analysis["input_tokens"] / requests)),
        max_tokens=max(1, round(log.analysis["output_tokens"] / requests)),
    )


def usage_log_tenants_plan(log: UsageLog, *, scale: float = 1.0, quiet: int = 3) -> dict:
    """The log's noisy-neighbour plan (`usage.noisy_neighbour_plan`): `quiet` users beside the
    noisy one, every rate x `scale` (a sparse log's average rates send too little to measure),
    checked as the probe will read it; a read, so anyone who may see the log may take it."""
    from apps.costs import usage

    if log.status != UsageLogStatus.DONE:
        raise ApplicationError("The log has not been analysed yet.", code="conflict", status=409)
    if not (isinstance(scale, int | float) and scale == scale and 0 < scale <= 1e6):
        raise ApplicationError("scale must be a positive number.", detail={"scale": ["Must be positive."]})
    if not (isinstance(quiet, int) and 1 <= quiet <= MAX_TENANTS - 1):
        message = f"Between 1 and {MAX_TENANTS - 1} quiet tenants."
        raise ApplicationError(message, detail={"quiet": [message]})
    try:
        plan = usage.noisy_neighbour_plan(log.analysis or {}, scale=scale, quiet=quiet)
        TenantPlan.from_dict(plan)
    except ValueError as exc:
        raise ApplicationError(f"No noisy-neighbour plan from this log: {exc}.", code="conflict", status=409) from None
    return plan


def usage_log_tenants_plan_create(*, access: Access, log: UsageLog, endpoint, scale: float = 1.0, quiet: int = 1):
    """A noisy-neighbour probe plan from the log on one of its project's endpoints, with the log's
    average prompt and completion sizes; checked against the org's probe limits like any plan."""
    require_writer(access, log.project.organization_id)
    if endpoint is None or endpoint.project_id != log.project_id:
        raise ApplicationError(
            "Choose an endpoint of this log's project.", detail={"endpoint": ["Not an endpoint of this project."]}
        )
    tenants = usage_log_tenants_plan(log, scale=scale, quiet=quiet)
    requests = max(1, log.analysis["requests"])
    return probe_plan_create(
        access=access,
        endpoint=endpoint,
        name=f"noisy neighbours {log.name} x{scale:g}"[:100],
        profile={"tenants": tenants},
        prompt_tokens=max(1, round(log.analysis["input_tokens"] / requests)),
        max_tokens=max(1, round(log.analysis["output_tokens"] / requests)),
    )
