"""A plan's stored form <-> the engine's configuration, with validation against the org's limits.

Pure Python apart from reading settings defaults: plans are validated the same way from the
UI, the API and the scheduler, and every refusal names the field and the limit.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace

from apps.core.errors import ApplicationError
from apps.core.headers import header_value_problem, request_id_header
from apps.net.netguard import OutboundRefused, parse_http_url
from apps.probes.engine import openai
from apps.probes.engine.profiles import CONCURRENT, CONSTANT, OPEN_LOOP, SYNCHRONOUS, Stage
from apps.probes.engine.prompts import PromptSet
from apps.probes.engine.runner import Canary, ProbeConfig
from apps.probes.engine.stats import SLO, Window, planned_spans, stage_windows
from apps.probes.engine.sweep import SweepSpec, sweep_driver
from apps.probes.engine.tenants import TenantPlan, tenant_config, tenant_driver, tenant_stages

PROFILE_FORMS = ("stages", "sweep", "autoscaling", "tenants")
SLO_FIELDS = ("ttft_p95_ms", "tpot_p95_ms", "e2e_p99_ms", "error_rate", "min_output_tps")


@dataclass(frozen=True)
class Limits:
    max_concurrency: int
    max_rate: float
    max_duration_s: int
    max_requests_per_day: int
    max_tokens_per_day: int
    max_parallelism: int
    max_active_runs: int = 3


# Bounds on the per-request numbers, whatever an org's limits: beyond them a plan is a mistake or
# an attack on the workers (2e9 max_tokens, a negative or 1e300 s timeout).
MAX_TOKENS_PER_REQUEST = 131_072
MAX_PROMPT_TOKENS = 262_144
MAX_REQUEST_TIMEOUT_S = 3600.0
MAX_SEED = 2**31 - 1
MAX_REGRESSION_THRESHOLD_PCT = 10_000.0


def _err(field: str, message: str):
    return ApplicationError(message, detail={field: [message]})


def parse_profile(profile) -> tuple[list[Stage], SweepSpec | None]:
    """{"stages": [...]} or {"sweep": {...}}; a clear error for anything else."""
    if isinstance(profile, str):
        try:
            profile = json.loads(profile)
        except json.JSONDecodeError as exc:
            raise _err("profile", f"Not JSON: {exc.msg}.") from None
    if not isinstance(profile, dict) or set(profile) - set(PROFILE_FORMS) or len(profile) != 1:
        raise _err("profile", 'Give {"stages": [...]}, {"sweep": {...}}, {"autoscaling": {...}} or {"tenants": {...}}.')
    if "autoscaling" in profile:
        return autoscaling_stages(profile["autoscaling"]), None
    if "tenants" in profile:
        # Every tenant's stages, its burst included: what the limits are checked against.
        return [stage for tenant in tenant_plan(profile["tenants"]).tenants for stage in tenant_stages(tenant)], None
    if "sweep" in profile:
        spec = profile["sweep"]
        if not isinstance(spec, dict):
            raise _err("profile", "The sweep must be an object.")
        try:
            return [], SweepSpec(**spec)
        except (TypeError, ValueError) as exc:
            raise _err("profile", f"Sweep: {exc}.") from None
    stages = profile["stages"]
    if not isinstance(stages, list) or not stages:
        raise _err("profile", "The stage list is empty: give at least one stage.")
    parsed = []
    for i, raw in enumerate(stages, 1):
        if not isinstance(raw, dict):
            raise _err("profile", f"Stage {i} must be an object.")
        try:
            parsed.append(Stage.from_dict(raw))
        except (TypeError, ValueError) as exc:
            raise _err("profile", f"Stage {i}: {exc}.") from None
    return parsed, None


AUTOSCALING_REQUIRED = ("base_rate", "base_s", "hold_s", "after_s")
AUTOSCALING_OPTIONAL = ("peak_rate", "peak_multiple", "replica_capacity_rps", "canary_rate", "capacity_source")
DEFAULT_CANARY_RATE = 1.0


def _positive(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def check_autoscaling(spec) -> dict:
    """An autoscaling profile: open-loop (Poisson) load at `base_rate` for `base_s`, stepped up for
    `hold_s`, then back down for `after_s` (the scale-down is measured there).

    The step goes to `peak_rate`, or to `peak_multiple` x one replica's capacity: the given
    `replica_capacity_rps`, or else the highest SLO-meeting rate of the endpoint's latest sweep,
    looked up when a run starts. A canary of tiny requests runs alongside at `canary_rate`
    (default 1/s; 0 turns it off).
    """
    if not isinstance(spec, dict):
        raise _err("profile", "The autoscaling profile must be an object.")
    missing = [k for k in AUTOSCALING_REQUIRED if k not in spec]
    unknown = sorted(set(spec) - set(AUTOSCALING_REQUIRED) - set(AUTOSCALING_OPTIONAL))
    if missing or unknown:
        raise _err(
            "profile",
            f"An autoscaling profile has {', '.join(AUTOSCALING_REQUIRED)}, either peak_rate or "
            f"peak_multiple, and optionally replica_capacity_rps and canary_rate"
            f"{'; missing: ' + ', '.join(missing) if missing else ''}"
            f"{'; unknown: ' + ', '.join(unknown) if unknown else ''}.",
        )
    numbers = [k for k in spec if k != "capacity_source"]
    if not isinstance(spec.get("capacity_source", ""), str):
        raise _err("profile", "capacity_source is a note (text).")
    if not all(_positive(spec[k]) or (k == "canary_rate" and spec[k] == 0) for k in numbers):
        raise _err("profile", "Autoscaling rates and durations are positive numbers (canary_rate may be 0).")
    if ("peak_rate" in spec) == ("peak_multiple" in spec):
        raise _err("profile", "Give either peak_rate (requests/s) or peak_multiple (x one replica's capacity).")
    if "peak_multiple" in spec and spec["peak_multiple"] <= 1:
        raise _err("profile", "peak_multiple must be above 1 (it is a step up beyond one replica's capacity).")
    peak = autoscaling_peak(spec)
    if peak is not None and peak <= spec["base_rate"]:
        raise _err("profile", f"The peak rate ({peak:g}/s) must be above the base rate (it is a step up).")
    return spec


def autoscaling_peak(spec: dict) -> float | None:
    """The step's rate, or None while it waits for a sweep to measure one replica's capacity."""
    if "peak_rate" in spec:
        return float(spec["peak_rate"])
    if spec.get("replica_capacity_rps"):
        return round(spec["peak_multiple"] * spec["replica_capacity_rps"], 3)
    return None


def autoscaling_resolved(spec: dict, capacity_rps: float, source: str) -> dict:
    """The spec with one replica's measured capacity filled in (what a run's snapshot keeps)."""
    return check_autoscaling({**spec, "replica_capacity_rps": round(capacity_rps, 3), "capacity_source": source})


def autoscaling_stages(spec) -> list[Stage]:
    spec = check_autoscaling(spec)
    # Unresolved (the peak comes from a sweep at start): the stages' durations are known, and the
    # base rate stands in for the step until then; the org's rate limit is checked again at start.
    peak = autoscaling_peak(spec) or spec["base_rate"]
    phases = (
        ("base", spec["base_rate"], spec["base_s"]),
        ("step up", peak, spec["hold_s"]),
        ("step down", spec["base_rate"], spec["after_s"]),
    )
    return [Stage.from_dict({"kind": "poisson", "rate": rate, "duration": s, "name": n}) for n, rate, s in phases]


def autoscaling_canary(spec: dict | None) -> Canary | None:
    """The canary of an autoscaling plan (None for other plans, or when canary_rate is 0)."""
    if spec is None:
        return None
    rate = spec.get("canary_rate", DEFAULT_CANARY_RATE)
    return Canary(rate=rate) if rate else None


def autoscaling_spec(profile) -> dict | None:
    if isinstance(profile, str):
        try:
            profile = json.loads(profile)
        except json.JSONDecodeError:
            return None
    return profile.get("autoscaling") if isinstance(profile, dict) else None


# --- noisy neighbours ------------------------------------------------------------------------------


def tenant_plan(spec) -> TenantPlan:
    """A noisy-neighbour profile's tenants: the same JSON as `manage.py probe --tenants`, without
    keys (a plan keeps its tenants' keys encrypted, apart: `ProbePlan.tenant_keys`)."""
    if not isinstance(spec, dict):
        raise _err("profile", 'The tenants profile is an object: {"tenants": [...], "header"?, "isolation"?}.')
    for raw in spec.get("tenants") or ():
        if isinstance(raw, dict) and raw.get("api_key"):
            raise _err(
                "profile",
                f"Tenant {raw.get('name') or '?'}: a plan keeps tenant keys encrypted, apart from its profile; "
                "give them as tenant keys (name: key), not in the profile.",
            )
    try:
        return TenantPlan.from_dict(spec)
    except (TypeError, ValueError) as exc:
        raise _err("profile", f"Tenants: {exc}.") from None


def tenant_spec(profile) -> dict | None:
    """The tenants part of a noisy-neighbour profile, else None."""
    if isinstance(profile, str):
        try:
            profile = json.loads(profile)
        except json.JSONDecodeError:
            return None
    return profile.get("tenants") if isinstance(profile, dict) else None


def parse_tenant_keys(raw) -> dict[str, str]:
    """Tenant keys as given (an object, or lines of "name: key"): {name: key}, each key one line."""
    if isinstance(raw, str):
        pairs = {}
        for number, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            # "name: key" splits at the first ": " (a name like org:42 keeps its colon), else at the
            # first colon; a key may hold colons either way.
            name, sep, key = line.partition(": ") if ": " in line else line.partition(":")
            if not sep or not name.strip() or not key.strip():
                raise _err("tenant_keys", f"Line {number}: write one tenant per line as name: key.")
            pairs[name.strip()] = key.strip()
        raw = pairs
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise _err("tenant_keys", "Give the tenant keys as an object of tenant name to key.")
    for name, key in raw.items():
        problem = header_value_problem(key) if key else "it is empty"
        if problem or len(key) > 4096:
            raise _err("tenant_keys", f"Tenant {name}: not a usable key ({problem or 'over 4096 characters'}).")
    return raw


def _check_tenants(spec: dict, limits: Limits, fields: dict) -> None:
    plan = tenant_plan(spec)
    if int(fields.get("parallelism") or 1) != 1:
        raise _err("parallelism", "A noisy-neighbour plan runs one shard per tenant: leave parallelism at 1.")
    if len(plan.tenants) > limits.max_parallelism:
        raise _err(
            "profile",
            f"{len(plan.tenants)} tenants need {len(plan.tenants)} shards at once, beyond the organization's "
            f"max parallelism of {limits.max_parallelism}.",
        )
    if float(fields.get("warmup_s") or 0) or float(fields.get("cooldown_s") or 0):
        raise _err("warmup_s", "A noisy-neighbour plan is measured before, during and after its burst: no warm-up.")
    for t in plan.tenants:
        if (t.prompt_tokens or 0) > MAX_PROMPT_TOKENS or (t.max_tokens or 0) > MAX_TOKENS_PER_REQUEST:
            raise _err(
                "profile",
                f"Tenant {t.name}: prompt_tokens at most {MAX_PROMPT_TOKENS:,}, max_tokens at most "
                f"{MAX_TOKENS_PER_REQUEST:,}.",
            )
    _check_tenant_headers(plan)
    top = sum(max((max(s.rate or 0, s.rate_end or 0) for s in tenant_stages(t)), default=0) for t in plan.tenants)
    # Tenants run side by side, each with all of its schedule: their requests in flight add up.
    workers = sum(_peak_in_flight(tenant_stages(t)) for t in plan.tenants)
    if workers > limits.max_concurrency:
        raise _err(
            "profile",
            f"The tenants together keep up to {workers} requests in flight, beyond the organization's max "
            f"concurrency of {limits.max_concurrency}.",
        )
    if top > limits.max_rate:
        raise _err(
            "profile",
            f"The tenants together may send {top:g} requests/s, beyond the organization's max rate of "
            f"{limits.max_rate:g}/s.",
        )
    keys = fields.get("tenant_keys")
    if keys:
        names = [t.name for t in plan.tenants]
        unknown = set(parse_tenant_keys(keys)) - set(names)
        if unknown:
            # What was typed is not repeated: a key written before its name would be shown back.
            raise _err(
                "tenant_keys",
                f"{len(unknown)} of the keys name no tenant of the profile (its tenants: {', '.join(names)}); "
                "write one per line as name: key.",
            )


def _peak_in_flight(stages: list[Stage]) -> int:
    """The most requests a tenant's own schedule keeps in flight by design: a closed loop's users, an
    open loop's cap (an uncapped open loop has none by design; the rate limit bounds it)."""
    return max((s.workers if s.kind not in OPEN_LOOP else s.concurrency or 0) for s in stages)


def _check_tenant_headers(plan: TenantPlan) -> None:
    """The tenant header and each tenant's value in it, checked when the plan is saved rather than
    refused by every shard at run time (a log's user id outside ASCII, a line break, Authorization)."""
    try:
        header = request_id_header(plan.header) if plan.header else None
    except ValueError as exc:
        raise _err("profile", f"Tenant header: {exc}.") from None
    if header is None:
        return
    for t in plan.tenants:
        problem = header_value_problem(t.header or t.name)
        if problem:
            source = "header value" if t.header else "name (sent as its header value; give it a header value)"
            raise _err("profile", f"Tenant {t.name!r}: its {source} cannot be sent: {problem}")


def planned_duration(stages: list[Stage], sweep: SweepSpec | None, profile=None) -> float:
    spec = tenant_spec(profile) if profile is not None else None
    if spec is not None:
        return tenant_plan(spec).duration
    if sweep is not None:
        return sweep.step_duration * (sweep.max_steps + sweep.refine_steps + (1 if sweep.start_rate is None else 0))
    return sum(s.duration for s in stages)


def max_requests_estimate(stages: list[Stage], sweep: SweepSpec | None) -> float | None:
    """Upper bound of requests for open-loop stages; None when closed loop decides (server speed)."""
    if sweep is not None or any(s.kind not in OPEN_LOOP for s in stages):
        return None
    return sum(s.duration * max(s.rate, s.rate_end or 0) for s in stages)


def parse_slo(raw) -> SLO:
    if isinstance(raw, str):
        try:
            return SLO.parse(raw)
        except ValueError as exc:
            raise _err("slo", str(exc)) from None
    if not isinstance(raw, dict):
        raise _err("slo", "Give the SLO as an object or as text like ttft_p95=500ms,error_rate=1%.")
    unknown = set(raw) - set(SLO_FIELDS)
    if unknown:
        raise _err("slo", f"Unknown SLO field(s): {', '.join(sorted(unknown))}; known: {', '.join(SLO_FIELDS)}.")
    values = {}
    for key, value in raw.items():
        if value in (None, ""):
            continue
        try:
            values[key] = float(value)
        except (TypeError, ValueError):
            raise _err("slo", f"{key} must be a number ({'a fraction' if key == 'error_rate' else 'ms'}).") from None
        if values[key] < 0:
            raise _err("slo", f"{key} must not be negative.")
    if values.get("error_rate", 0) > 1:
        raise _err("slo", "error_rate is a fraction: 0.01 means 1 %.")
    return SLO(**values)


def validate_plan(fields: dict, limits: Limits) -> dict:
    """Check a plan's fields; returns them cleaned (profile and slo normalised)."""
    stages, sweep = parse_profile(fields.get("profile"))
    slo = parse_slo(fields.get("slo") or {})
    parallelism = int(fields.get("parallelism") or 1)
    if parallelism < 1:
        raise _err("parallelism", "Parallelism must be at least 1.")
    if parallelism > limits.max_parallelism:
        raise _err("parallelism", f"Parallelism {parallelism} exceeds the limit of {limits.max_parallelism}.")
    if sweep is not None and parallelism != 1:
        raise _err("parallelism", "A sweep decides each step from the last one, so it runs on one worker.")
    for i, s in enumerate(stages, 1):
        top_rate = max(s.rate or 0, s.rate_end or 0)
        if top_rate > limits.max_rate:
            raise _err(
                "profile",
                f"Stage {i}: rate {top_rate:g}/s exceeds the organization's max rate of {limits.max_rate:g}/s.",
            )
        workers = s.workers if s.kind in (CONCURRENT, SYNCHRONOUS) else (s.concurrency or 0)
        if workers > limits.max_concurrency:
            raise _err(
                "profile",
                f"Stage {i}: concurrency {workers} exceeds the organization's max concurrency "
                f"of {limits.max_concurrency}.",
            )
    if sweep is not None and sweep.start_rate and sweep.start_rate > limits.max_rate:
        raise _err("profile", f"The sweep's start rate exceeds the organization's max rate of {limits.max_rate:g}/s.")
    tenants = tenant_spec(fields["profile"])
    if tenants is not None:
        _check_tenants(tenants, limits, fields)
    elif fields.get("tenant_keys"):
        raise _err("tenant_keys", "Only a noisy-neighbour plan (a tenants profile) has tenant keys.")
    duration = planned_duration(stages, sweep, fields["profile"])
    if duration > limits.max_duration_s:
        raise _err(
            "profile",
            f"The plan runs {duration:g} s, beyond the organization's max duration of {limits.max_duration_s} s.",
        )
    warmup = _bounded(fields, "warmup_s", 0, duration, default=0)
    cooldown = _bounded(fields, "cooldown_s", 0, duration, default=0)
    if sweep is None and warmup + cooldown >= duration:
        raise _err("warmup_s", "Warm-up and cool-down must be >= 0 and together shorter than the run.")
    _bounded(fields, "max_tokens", 1, MAX_TOKENS_PER_REQUEST, default=128, integer=True)
    _bounded(fields, "prompt_tokens", 1, MAX_PROMPT_TOKENS, default=256, integer=True)
    timeout = _bounded(fields, "request_timeout_s", 0, MAX_REQUEST_TIMEOUT_S, default=60)
    if timeout == 0:
        raise _err("request_timeout_s", "The request timeout must be above 0 s.")
    _bounded(fields, "seed", 0, MAX_SEED, default=0, integer=True)
    _bounded(fields, "regression_threshold_pct", 0, MAX_REGRESSION_THRESHOLD_PCT, default=20)
    if fields.get("metrics_url"):
        try:
            parse_http_url(fields["metrics_url"])
        except OutboundRefused as exc:
            raise _err("metrics_url", str(exc)) from None
    if fields.get("prompts_jsonl"):
        prompts_from_jsonl(fields["prompts_jsonl"])
    if fields.get("schedule_cron"):
        parse_cron(fields["schedule_cron"])
    if fields.get("request_id_header"):
        try:
            request_id_header(fields["request_id_header"])
        except ValueError as exc:
            raise _err("request_id_header", f"{exc}.") from None
    cleaned = dict(fields)
    if sweep:
        cleaned["profile"] = {"sweep": fields["profile"]["sweep"]}
    elif autoscaling_spec(fields["profile"]):
        cleaned["profile"] = {"autoscaling": autoscaling_spec(fields["profile"])}  # kept: finalize analyses it
    elif tenants is not None:
        cleaned["profile"] = {"tenants": tenants}
    else:
        cleaned["profile"] = {"stages": [s.to_dict() for s in stages]}
    cleaned["slo"] = slo.to_dict()
    return cleaned


def _bounded(fields: dict, name: str, low: float, high: float, *, default: float, integer: bool = False) -> float:
    """fields[name] as a finite number in [low, high] (the default when absent), or a clear error."""
    value = fields.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _err(name, f"{name} must be a number.") from None
    if isinstance(value, bool) or not math.isfinite(number) or (integer and number != int(number)):
        raise _err(name, f"{name} must be a finite {'whole ' if integer else ''}number.")
    if not low <= number <= high:
        raise _err(name, f"{name} must be between {low:g} and {high:g}.")
    return number


def run_request_budget(
    remaining_requests: int, remaining_tokens: int, max_tokens: int, planned: float | None, max_active_runs: int
) -> int:
    """How many requests a run may send: its hard stop, passed to the engine, and what it reserves
    of the day's budget while it runs. An open-loop plan needs what its schedule sends; a closed
    loop or a sweep (the server's speed decides) gets at most 1/N of what is left, N being the
    org's cap on runs at once, so that a few runs can share the day."""
    left = min(remaining_requests, remaining_tokens // max(max_tokens, 1))
    if planned is not None:
        # Poisson arrivals scatter around rate x duration (by about its square root): the headroom
        # keeps a normal schedule from meeting its own hard stop.
        return max(0, min(left, math.ceil(planned * 1.2) + 20))
    return max(0, left // max(max_active_runs, 1) or left)


def shard_share(total: int, index: int, count: int) -> int:
    """Shard `index`'s part of `total` requests: the parts add up to the total exactly."""
    return total // count + (1 if index < total % count else 0)


def prompts_from_jsonl(text: str) -> PromptSet:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".jsonl") as fh:
        fh.write(text)
        fh.flush()
        try:
            return PromptSet.from_jsonl(fh.name)
        except ValueError as exc:
            raise _err("prompts_jsonl", str(exc).replace(f"{fh.name}:", "line ")) from None


def parse_cron(text: str) -> tuple[str, str, str, str, str]:
    parts = text.split()
    if len(parts) != 5:
        raise _err("schedule_cron", "A cron schedule has 5 fields: minute hour day-of-month month day-of-week.")
    from django_celery_beat.validators import crontab_validator

    try:
        crontab_validator(text)
    except Exception as exc:  # django's ValidationError, with the field at fault
        message = "; ".join(getattr(exc, "messages", [str(exc)]))
        raise _err("schedule_cron", f"Invalid cron schedule: {message}") from None
    return tuple(parts)


def snapshot(plan) -> dict:
    """What a run keeps of its plan: later edits of the plan do not change past runs."""
    endpoint = plan.endpoint
    return {
        "plan_id": plan.pk,
        "plan_name": plan.name,
        "endpoint_id": endpoint.pk,
        "base_url": endpoint.base_url,
        "api": endpoint.api_flavour,
        "model": endpoint.model_name,
        "profile": plan.profile,
        "warmup_s": plan.warmup_s,
        "cooldown_s": plan.cooldown_s,
        "prompt_tokens": plan.prompt_tokens,
        "prompts_jsonl": plan.prompts_jsonl,
        "max_tokens": plan.max_tokens,
        "seed": plan.seed,
        "slo": plan.slo,
        "metrics_url": plan.metrics_url or endpoint.metrics_url,
        "parallelism": plan.parallelism,
        "request_timeout_s": plan.request_timeout_s,
        # One correlation-id nonce for all the run's shards; the optional request parts the endpoint's
        # last compatibility check found refused are left out from the start.
        "request_id_header": plan.request_id_header or endpoint.request_id_header or "none",
        "request_id_nonce": int.from_bytes(os.urandom(6), "big"),
        "parts_off": refused_parts(endpoint.compatibility),
    }


def refused_parts(compatibility: dict | None) -> list[str]:
    """The optional request parts a compatibility check found the server refuses."""
    accepts = (compatibility or {}).get("accepts") or {}
    return sorted(part for part in openai.OPTIONAL_PARTS if accepts.get(part) is False)


def engine_config(
    snap: dict,
    *,
    api_key: str | None,
    allow_private: bool,
    shard_index: int,
    shard_count: int,
    max_requests: int | None = None,
    tenant_keys: dict[str, str] | None = None,
) -> tuple[ProbeConfig, object]:
    stages, sweep = parse_profile(snap["profile"])
    tenants = tenant_spec(snap["profile"])
    if tenants is not None and max_requests is None and snap.get("max_requests") is not None:
        max_requests = tenant_share(snap["max_requests"], tenant_plan(tenants), shard_index)
    if max_requests is None and snap.get("max_requests") is not None:
        # The day's budget the run reserved at start, split exactly between the shards: a hard stop.
        max_requests = shard_share(snap["max_requests"], shard_index, shard_count)
    if sweep is not None and snap.get("max_rate"):
        sweep = replace(sweep, max_rate=snap["max_rate"])  # a sweep never grows past the org's max rate
    prompts = (
        prompts_from_jsonl(snap["prompts_jsonl"])
        if snap.get("prompts_jsonl")
        else PromptSet.synthetic(prompt_tokens=snap["prompt_tokens"], seed=snap["seed"])
    )
    config = ProbeConfig(
        base_url=snap["base_url"],
        model=snap["model"],
        stages=stages,
        api=snap["api"],
        api_key=api_key,
        prompts=prompts,
        max_tokens=snap["max_tokens"],
        request_timeout=snap["request_timeout_s"],
        warmup=snap["warmup_s"],
        cooldown=snap["cooldown_s"],
        seed=snap["seed"],
        slo=SLO(**snap["slo"]),
        metrics_url=snap["metrics_url"] or None,
        allow_private=allow_private,
        max_requests=max_requests,
        # An autoscaling probe reads its replicas and queue every second (the KPIs are in seconds).
        **({"scrape_interval": 1.0} if autoscaling_spec(snap["profile"]) else {}),
        canary=autoscaling_canary(autoscaling_spec(snap["profile"])),
        shard_index=shard_index,
        shard_count=shard_count,
        request_id_header=snap.get("request_id_header", openai.DEFAULT_REQUEST_ID_HEADER),
        request_id_nonce=snap.get("request_id_nonce"),
        parts_off=frozenset(snap.get("parts_off") or ()),
    )
    if tenants is not None:
        # One shard per tenant, all on the run's shared start: its whole schedule, key and header.
        plan = tenant_plan(tenants)
        tenant = plan.tenants[shard_index]
        tenant = replace(tenant, api_key=(tenant_keys or {}).get(tenant.name) or None)
        return tenant_config(config, plan, tenant, shard_index), tenant_driver(tenant)
    return config, (sweep_driver(sweep) if sweep else None)


def max_tokens_per_request(snap: dict) -> int:
    """The most output tokens one request of the run may ask for (what the day's token budget
    reserves per request): the plan's, or a tenant's own when it asks for more."""
    spec = tenant_spec(snap.get("profile"))
    own = [t.max_tokens or 0 for t in tenant_plan(spec).tenants] if spec is not None else []
    return max([snap.get("max_tokens", 0), *own])


def tenant_share(total: int, plan: TenantPlan, index: int) -> int:
    """Tenant `index`'s part of the run's request budget: in proportion to what its schedule sends
    (the noisy tenant's burst needs more than an even split); the parts never exceed the total."""
    planned = [max_requests_estimate(tenant_stages(t), None) for t in plan.tenants]
    if any(p is None for p in planned):  # a closed loop's count is the server's speed: an even split
        return shard_share(total, index, len(plan.tenants))
    whole = sum(planned)
    if not whole:
        return shard_share(total, index, len(plan.tenants))
    return int(total * planned[index] / whole)


def windows_for(snap: dict) -> list[Window]:
    """The measurement windows of a stage plan: the same for every shard (one shared schedule)."""
    stages, _ = parse_profile(snap["profile"])
    spans = planned_spans([(s.duration, s.label) for s in stages])
    return stage_windows(spans, snap["warmup_s"], snap["cooldown_s"])


# --- the offered load, for charts -----------------------------------------------------------------


def offered_load(profile) -> dict:
    """The load a plan offers over time: one segment per stage, open loop in requests/s and closed
    loop in requests in flight, with the notes a reader needs where the plan leaves a number to
    the run (a sweep's later steps, an autoscaling step sized by a sweep).

    The plan form's preview (static/js/plan_form.js) draws the same segments from the same JSON;
    a browser test holds the two together.
    """
    stages, sweep = parse_profile(profile)
    notes = []
    if sweep is not None:
        stages, notes = _sweep_steps(sweep)
    spec = autoscaling_spec(profile)
    if spec is not None and autoscaling_peak(spec) is None:
        notes.append(
            f"The step goes to {spec['peak_multiple']:g} × one replica's capacity, measured by the endpoint's "
            "latest sweep when the run starts; shown at the base rate until then."
        )
    segments, t = [], 0.0
    if tenant_spec(profile) is not None:
        segments, notes = _tenant_segments(tenant_plan(tenant_spec(profile)))
        stages, t = [], max((s["end"] for s in segments), default=0.0)
    for stage in stages:
        open_loop = stage.kind in OPEN_LOOP
        rate_end = stage.rate_end if stage.rate_end is not None else stage.rate
        segments.append(
            {
                "start": round(t, 6),
                "end": round(t + stage.duration, 6),
                "kind": stage.kind,
                "label": stage.label,
                "rate": stage.rate if open_loop else None,
                "rate_end": rate_end if open_loop else None,
                "concurrency": None if open_loop else stage.workers,
            }
        )
        t += stage.duration
    requests = None  # a closed loop's count is the server's speed, a sweep's its results
    unsized_step = spec is not None and autoscaling_peak(spec) is None
    if segments and sweep is None and not unsized_step and all(s["rate"] is not None for s in segments):
        requests = sum((s["end"] - s["start"]) * (s["rate"] + s["rate_end"]) / 2 for s in segments)
    rates = [r for s in segments for r in (s["rate"], s["rate_end"]) if r is not None]
    return {
        "segments": segments,
        "duration_s": round(t, 6),
        "peak_rate": max(rates) if rates else None,
        "expected_requests": round(requests) if requests is not None else None,
        "notes": notes,
    }


def _tenant_segments(plan: TenantPlan) -> tuple[list[dict], list[str]]:
    """The tenants' load added up: a segment between each pair of moments where a tenant's rate
    changes (a stage's ends, the burst's start and end). A closed loop or a ramp has no one rate."""
    spans = []
    for tenant in plan.tenants:
        t = 0.0
        for stage in tenant.stages:
            spans.append((t, t + stage.duration, stage))
            t += stage.duration
        if tenant.burst:
            spans.append((tenant.burst.at, tenant.burst.end, tenant.burst.stage()))
    if any(stage.kind not in OPEN_LOOP or stage.rate_end is not None for _, _, stage in spans):
        return [], ["Some tenants send in a closed loop or ramp: the run page shows each tenant's load as sent."]
    cuts = sorted({round(edge, 6) for start, end, _ in spans for edge in (start, end)})
    segments = []
    for start, end in zip(cuts, cuts[1:], strict=False):
        active = [stage for a, b, stage in spans if a <= start and end <= b]
        rate = round(sum(stage.rate for stage in active), 6)
        burst = " with the burst" if any(stage.name == "burst" for stage in active) else ""
        segments.append(
            {
                "start": start,
                "end": end,
                "kind": CONSTANT,
                "label": f"all tenants{burst}",
                "rate": rate,
                "rate_end": rate,
                "concurrency": None,
            }
        )
    noisy = plan.noisy
    return segments, [
        f"All {len(plan.tenants)} tenants added up; {noisy.name} bursts {noisy.burst.requests} requests over "
        f"{noisy.burst.over:g} s from {noisy.burst.at:g} s."
    ]


def _sweep_steps(sweep: SweepSpec) -> tuple[list[Stage], list[str]]:
    """A sweep's steps if every one met the SLOs (the most it can offer): later steps depend on the
    server, so this is the upper bound, and a start rate measured at run time leaves only the first."""
    if sweep.start_rate is None:
        first = Stage(SYNCHRONOUS, sweep.step_duration, name="baseline")
        return [first], [
            "The sweep first measures one synchronous step; its later rates grow from what that step "
            f"sustains (× {sweep.growth:g} per step, up to {sweep.max_steps} steps)."
        ]
    steps, rate = [], sweep.start_rate
    for i in range(sweep.max_steps):
        if sweep.max_rate is not None and rate > sweep.max_rate:
            break
        steps.append(Stage(sweep.kind, sweep.step_duration, rate=round(rate, 6), name=f"step {i + 1}"))
        rate *= sweep.growth
    return steps, [
        "Shown: every step meeting the SLOs. The sweep stops at the first step that misses or saturates, "
        f"then refines the rate in up to {sweep.refine_steps} more steps."
    ]
