"""The price catalog, traffic profiles and the monthly projection that feeds the go/no-go.

The arithmetic is pure (`apps/costs/pricing.py`); this module picks its inputs: the project's
newest successful probe run (its SLO-compliant throughput, per replica), the endpoint's price
(or the catalog's for its GPU type), the expected traffic, and the catalog's hosted models.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.core.services import audit_record, diff, require_writer, snapshot
from apps.costs import catalog, pricing, stored
from apps.costs.models import Price, PriceKind, TrafficProfile, UsageLog, UsageLogStatus
from apps.orgs.access import Access
from apps.orgs.models import Organization

PRICE_FIELDS = ["name", "provider", "usd_per_gpu_hour", "spot_usd_per_gpu_hour", "hbm_gb", "hbm_bandwidth_gb_per_s",
                "usd_per_mtok_input", "usd_per_mtok_output", "source", "as_of"]  # fmt: skip
TRAFFIC_FIELDS = [f.name for f in TrafficProfile._meta.fields if f.name not in ("id", "project", "created_at",
                                                                                "updated_at")]  # fmt: skip


def ensure_catalog(org: Organization) -> None:
    """Seed the org's catalog from readiness' list once; later edits are the org's own."""
    if Price.objects.filter(organization=org).exists():
        return
    rows = [Price(organization=org, kind=PriceKind.GPU, name=g.name, provider=g.provider,
                  usd_per_gpu_hour=g.usd_per_gpu_hour, spot_usd_per_gpu_hour=g.spot_usd_per_gpu_hour, hbm_gb=g.hbm_gb,
                  hbm_bandwidth_gb_per_s=g.hbm_bandwidth_gb_per_s, source=g.source, as_of=g.as_of)
            for g in catalog.GPUS]  # fmt: skip
    rows += [Price(organization=org, kind=PriceKind.API, name=a.name, provider=a.provider,
                   usd_per_mtok_input=a.usd_per_mtok_input, usd_per_mtok_output=a.usd_per_mtok_output,
                   source=a.source, as_of=a.as_of) for a in catalog.HOSTED_MODELS]  # fmt: skip
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
    price.save()
    changes = diff(before, snapshot(price, PRICE_FIELDS))
    if changes:
        audit_record(access=access, organization_id=price.organization_id, action="price.update", obj=price,
                     changes=changes)  # fmt: skip
    return price


@transaction.atomic
def traffic_save(*, access: Access, project, **fields) -> TrafficProfile:
    """Create or update the project's expected traffic; checked by the projection's own rules."""
    from apps.checklists.services import readiness_changed

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
        pricing.Schedule(hours_per_day=profile.business_hours_per_day, days_per_month=profile.business_days_per_month,
                         start_hour=profile.business_start_hour)  # fmt: skip
    except (TypeError, ValueError) as exc:
        raise ApplicationError(f"The traffic profile is not consistent: {exc}.",
                               detail={"traffic": [str(exc)]}) from None  # fmt: skip
    profile.save()
    audit_record(access=access, organization_id=project.organization_id, action="traffic.save", obj=profile,
                 changes=diff(before, snapshot(profile, TRAFFIC_FIELDS)))  # fmt: skip
    readiness_changed(project)  # the projected cost feeds the go/no-go
    return profile


def _traffic(profile: TrafficProfile) -> pricing.Traffic:
    return pricing.Traffic(
        requests_per_day=profile.requests_per_day, input_tokens_per_request=profile.input_tokens_per_request,
        output_tokens_per_request=profile.output_tokens_per_request, peak_to_average=profile.peak_to_average,
        active_hours_per_day=profile.active_hours_per_day, active_days_per_month=profile.active_days_per_month,
        active_start_hour=profile.active_start_hour,
    )  # fmt: skip


def _f(value) -> float | None:
    return float(value) if value is not None else None


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
    out = {"endpoint": endpoint.name, "run_id": run.pk, "budget_usd": _f(project.monthly_budget_usd),
           "goodput_rps": goodput, "tokens_per_request": round(tokens_per_request, 1), "notes": [],
           "projected_monthly_usd": None, "cost_per_1m_output_tokens_usd": None, "options": [], "cheapest": None,
           "stale_prices": pricing.stale_prices(prices, today=today,
                                                max_age_days=settings.READINESS_PRICE_MAX_AGE_DAYS)}  # fmt: skip
    profile = TrafficProfile.objects.filter(project=project).first()
    if profile is not None:
        traffic = _traffic(profile)
    elif project.expected_peak_rpm:
        # No profile yet: the expected peak held all day, every day (an upper bound).
        traffic = pricing.Traffic(requests_per_day=project.expected_peak_rpm * 60 * 24, input_tokens_per_request=0,
                                  output_tokens_per_request=max(tokens_per_request, 1))  # fmt: skip
        out["notes"].append("no traffic profile: the expected peak is assumed all month (set one on the cost page)")
    else:
        traffic = None
        out["notes"].append("set the expected traffic (cost page) or the project's expected peak to project a month")
    hosted = [pricing.HostedModel(p.name, float(p.usd_per_mtok_input), float(p.usd_per_mtok_output))
              for p in prices if p.kind == PriceKind.API]  # fmt: skip
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
    out["cost_per_1m_output_tokens_usd"] = round(pricing.self_hosted_usd_per_mtok_output(
        usd_per_gpu_hour=hourly, gpus_per_replica=endpoint.gpus_per_replica, replicas=probed_replicas,
        goodput_output_tokens_per_s=good_tokens_per_s), 4)  # fmt: skip
    out["method"] = (f"{endpoint.gpus_per_replica}× {endpoint.gpu_type or 'GPU'} at ${hourly:g}/GPU-h per replica, "
                     f"{goodput / probed_replicas:.2f} SLO-compliant req/s per replica (run #{run.pk})")  # fmt: skip
    if traffic is None:
        return out
    spot_hourly = _f(catalog_gpu.spot_usd_per_gpu_hour) if catalog_gpu else None
    spec = pricing.ReplicaSpec(usd_per_gpu_hour=hourly, gpus_per_replica=endpoint.gpus_per_replica,
                               goodput_requests_per_s=goodput / probed_replicas,
                               spot_usd_per_gpu_hour=spot_hourly)  # fmt: skip
    p = profile
    projection = pricing.project_monthly(
        spec=spec, traffic=traffic, min_replicas=p.min_replicas if p else 1,
        scale_down_delay_s=p.scale_down_delay_s if p else 600, scale_up_lead_s=p.scale_up_lead_s if p else 0,
        schedule=pricing.Schedule(hours_per_day=p.business_hours_per_day, days_per_month=p.business_days_per_month,
                                  start_hour=p.business_start_hour) if p else None,
        spot=pricing.Spot(headroom_replicas=p.spot_headroom_replicas) if p and spec.spot_usd_per_gpu_hour else None,
        hosted=hosted,
    )  # fmt: skip
    out.update(_projection_fields(projection))
    return out


def _projection_fields(projection) -> dict:
    d = projection.to_dict()
    cheapest = projection.cheapest
    return {"options": d["options"], "cheapest": d["cheapest"],
            "projected_monthly_usd": round(cheapest.usd_per_month, 2) if cheapest else None,
            "always_on_usd_per_month": round(projection.always_on_usd_per_month, 2),
            "saving_vs_always_on_usd": d["saving_vs_always_on_usd"],
            "saving_vs_always_on_pct": d["saving_vs_always_on_pct"],
            "requests_per_month": round(projection.requests_per_month), "peak_rps": round(projection.peak_rps, 3),
            "average_rps": round(projection.average_rps, 3), "projection_notes": projection.notes}  # fmt: skip


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
        cost = pricing.hosted_cost(usd_per_mtok_input=p_in, usd_per_mtok_output=p_out,
                                   input_tokens_per_request=traffic.input_tokens_per_request,
                                   output_tokens_per_request=traffic.output_tokens_per_request)  # fmt: skip
        options.append({"key": f"hosted:{name}", "label": name, "usd_per_month": round(cost.usd_per_request *
                        requests_per_month, 2), "meets_slo": True if name == endpoint.name else None})  # fmt: skip
    out.update(options=options, cheapest=options[0]["key"], projected_monthly_usd=options[0]["usd_per_month"])
    return out


# --- usage logs --------------------------------------------------------------------------------

USAGE_SUFFIXES = stored.SUFFIXES


@transaction.atomic
def usage_log_upload(*, access: Access, project, upload) -> UsageLog:
    """Keep the file and queue its analysis (a worker streams it: tens of millions of rows are fine)."""
    require_writer(access, project.organization_id)
    name = (upload.name or "").rsplit("/", 1)[-1]
    if not name.lower().endswith(USAGE_SUFFIXES):
        raise ApplicationError("A usage log is a .csv or .jsonl file (optionally .gz).",
                               detail={"file": [f"Expected one of {', '.join(USAGE_SUFFIXES)}."]})  # fmt: skip
    if upload.size > settings.READINESS_USAGE_LOG_MAX_BYTES:
        raise ApplicationError(f"The file is larger than {settings.READINESS_USAGE_LOG_MAX_BYTES:,} bytes.",
                               detail={"file": ["Too large."]})  # fmt: skip
    log = UsageLog.objects.create(project=project, name=name[:200], file=upload, size_bytes=upload.size,
                                  uploaded_by=access.user)  # fmt: skip
    audit_record(access=access, organization_id=project.organization_id, action="usage_log.upload", obj=log,
                 changes={"name": [None, log.name], "size_bytes": [None, log.size_bytes]})  # fmt: skip
    transaction.on_commit(lambda: _queue_analysis(log.pk))
    return log


def usage_log_from_stored(*, access: Access, project, name: str) -> UsageLog:
    """Analyse a log already on the server, in the org's import folder (nothing is copied)."""
    require_writer(access, project.organization_id)
    try:
        path = stored.resolve(settings.READINESS_USAGE_LOG_IMPORT_DIR, project.organization.slug, name)
    except stored.StoredLogError as exc:
        raise ApplicationError(str(exc), detail={"stored_name": [str(exc)]}) from None
    log = UsageLog.objects.create(project=project, name=path.name[:200], stored_name=name.strip(),
                                  size_bytes=path.stat().st_size, uploaded_by=access.user)  # fmt: skip
    audit_record(access=access, organization_id=project.organization_id, action="usage_log.from_stored", obj=log,
                 changes={"stored_name": [None, log.stored_name], "size_bytes": [None, log.size_bytes]})  # fmt: skip
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


def usage_log_analyse(log_id: int) -> UsageLog | None:
    """Analyse a queued log once (claimed by a conditional update); failures are stored, not raised."""
    from apps.costs import usage
    from apps.reports.evaluation import latest_runs

    if not UsageLog.objects.filter(pk=log_id, status=UsageLogStatus.QUEUED).update(status=UsageLogStatus.ANALYSING):
        return None
    log = UsageLog.objects.select_related("project", "project__organization").get(pk=log_id)
    runs = latest_runs(log.project)
    replica_rps, usd_per_mtok_output = None, 0.0
    if runs:
        overall = (runs[0].summary or {}).get("overall") or {}
        replicas = runs[0].plan.endpoint.min_replicas or 1
        replica_rps = (overall.get("goodput") or 0.0) / replicas or None
        projection = project_projection(log.project, runs[0]) or {}
        usd_per_mtok_output = projection.get("cost_per_1m_output_tokens_usd") or 0.0
    try:
        result = usage.analyze_usage(_usage_log_path(log), replica_goodput_requests_per_s=replica_rps,
                                     usd_per_mtok_output=usd_per_mtok_output)  # fmt: skip
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        log.status, log.error = UsageLogStatus.FAILED, f"{type(exc).__name__}: {exc}"[:500]
    else:
        per_minute = result.requests_per_minute()
        log.hourly_requests = [sum(per_minute[i : i + 60]) for i in range(0, len(per_minute), 60)][: 24 * 62]
        log.analysis, log.status, log.error = result.to_dict(), UsageLogStatus.DONE, ""
        log.analysis["busiest_hour"] = result.busiest_hour()
    log.analysed_at = timezone.now()
    log.save()
    return log


@transaction.atomic
def usage_log_apply(*, access: Access, log: UsageLog) -> TrafficProfile:
    """Take the log's traffic shape as the project's expected traffic (requests/day, tokens, peak)."""
    if log.status != UsageLogStatus.DONE:
        raise ApplicationError("The log has not been analysed yet.", code="conflict", status=409)
    a = log.analysis
    days = max(1.0, (a["per_minute"]["span_minutes"] or 0) / 1440)
    requests = max(1, a["requests"])
    fields = {"requests_per_day": max(1, round(requests / days)),
              "input_tokens_per_request": round(a["input_tokens"] / requests),
              "output_tokens_per_request": max(1, round(a["output_tokens"] / requests)),
              "peak_to_average": max(1.0, round(a["per_minute"]["peak_to_average_requests"] or 1.0, 2))}  # fmt: skip
    return traffic_save(access=access, project=log.project, **fields)


def usage_log_replay_plan(*, access: Access, log: UsageLog, endpoint, scale: float = 1.0,
                          seconds_per_minute: float = 6.0):  # fmt: skip
    """A probe plan on one of the project's endpoints that replays the log's busiest hour: each
    minute becomes `seconds_per_minute` seconds of Poisson load at that minute's rate x `scale`,
    with the log's average prompt and completion sizes. Checked against the org's probe limits."""
    from apps.costs import usage
    from apps.probes.services import probe_plan_create

    require_writer(access, log.project.organization_id)
    if log.status != UsageLogStatus.DONE:
        raise ApplicationError("The log has not been analysed yet.", code="conflict", status=409)
    if endpoint is None or endpoint.project_id != log.project_id:
        raise ApplicationError("Choose an endpoint of this log's project.",
                               detail={"endpoint": ["Not an endpoint of this project."]})  # fmt: skip
    curve = ((log.analysis or {}).get("busiest_hour") or {}).get("requests_per_minute") or []
    if not any(curve):
        raise ApplicationError("The log has no requests to replay.", code="conflict", status=409)
    for name, value in (("scale", scale), ("seconds_per_minute", seconds_per_minute)):
        if not (isinstance(value, int | float) and value == value and 0 < value <= 1e6):
            raise ApplicationError(f"{name} must be a positive number.", detail={name: ["Must be positive."]})
    profile = usage.probe_profile_from_curve(curve, scale=scale, seconds_per_minute=seconds_per_minute, name="minute")
    requests = max(1, log.analysis["requests"])
    return probe_plan_create(
        access=access, endpoint=endpoint, name=f"replay {log.name} x{scale:g}"[:100], profile=profile,
        prompt_tokens=max(1, round(log.analysis["input_tokens"] / requests)),
        max_tokens=max(1, round(log.analysis["output_tokens"] / requests)),
    )  # fmt: skip
