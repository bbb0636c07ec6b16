"""A noisy-neighbour probe: several tenants share one endpoint, each with its own credentials and
traffic, and one of them bursts. It answers whether the quiet tenants kept their latency and error
rate while the noisy one burst (isolated) or not (leaky).

Each tenant runs as its own engine run (its own connections, key and headers) in one event loop,
so all tenants share one schedule: its base stages back to back from the start, and its burst at
`burst.at` beside them. The analysis is pure: it reads each tenant's records, with every tenant's
times moved onto one origin, through the same per-window figures as every other run
(`stats.summarize_window`).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field, replace
from functools import partial

from apps.probes.engine.profiles import CONSTANT, Stage
from apps.probes.engine.prompts import PromptSet
from apps.probes.engine.records import CONNECT, HTTP_4XX, HTTP_429, OK, Records
from apps.probes.engine.runner import ProbeConfig, ProbeRun, new_event_loop
from apps.probes.engine.stats import SLO, Window, summarize_window

ISOLATED, LEAKY, INCONCLUSIVE = "isolated", "leaky", "inconclusive"
MIN_REQUESTS = 5  # per quiet tenant and phase: fewer measure nothing about its latency
MAX_TENANTS = 20
MAX_TTFT_INCREASE_PCT = 1000.0  # 11x its baseline: beyond that "isolated" would mean nothing
MAX_NAME_CHARS = 100
# The noisy tenant must really burst: a burst that mostly never left the client, or never reached
# the server's queue (refused at connect, 401/403), proves nothing about the others' isolation.
MIN_BURST_SENT = 0.9
MAX_BURST_UNREACHED = 0.5
# Tenants run by separate workers must start together to share one schedule: a tenant that starts
# late by a tenth of the time before the burst, or of the burst, has its phases measured askew.
START_SKEW_FRACTION = 0.1
MIN_START_SKEW_S = 0.1
DEFAULT_TENANT_HEADER = "X-Tenant"


@dataclass(frozen=True)
class Burst:
    """`requests` sent evenly over `over` seconds, from `at` seconds after the start."""

    at: float
    requests: int
    over: float = 60.0

    def __post_init__(self):
        for name in ("at", "over"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value)):
                raise ValueError(f"burst {name} must be a finite number")
        if self.at < 0:
            raise ValueError("burst at must not be negative")
        if self.over <= 0:
            raise ValueError("burst over must be positive")
        if not (isinstance(self.requests, int) and self.requests >= 1):
            raise ValueError("burst requests must be a whole number of at least 1")

    @property
    def end(self) -> float:
        return self.at + self.over

    def stage(self) -> Stage:
        return Stage(kind=CONSTANT, duration=self.over, rate=self.requests / self.over, name="burst")


@dataclass(frozen=True)
class Tenant:
    name: str
    stages: tuple[Stage, ...] = ()
    api_key: str | None = field(default=None, repr=False)  # its own credential at the gateway
    header: str = ""  # the value of the plan's tenant header; the name when empty
    burst: Burst | None = None
    # Its own request sizes (synthetic prompts of this length, this many output tokens at most);
    # None: the plan's.
    prompt_tokens: int | None = None
    max_tokens: int | None = None

    def __post_init__(self):
        for name in ("prompt_tokens", "max_tokens"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"tenant {self.name}: {name} must be a whole number of at least 1")

    @property
    def duration(self) -> float:
        base = sum(s.duration for s in self.stages)
        return max(base, self.burst.end if self.burst else 0.0)


@dataclass(frozen=True)
class Isolation:
    """When the quiet tenants count as isolated: during the burst, each one's p95 TTFT stays within
    `ttft_increase_pct` of its own baseline, and its error rate within `error_rate_increase`
    (a fraction: 0.01 is one percentage point) of its baseline's."""

    ttft_increase_pct: float = 100.0
    error_rate_increase: float = 0.01

    def __post_init__(self):
        # Bounded: an allowance of +1e9 % would pass any endpoint, a negative one fail every one.
        pct, rate = self.ttft_increase_pct, self.error_rate_increase
        if not (_number(pct) and 0 < pct <= MAX_TTFT_INCREASE_PCT):
            raise ValueError(f"isolation ttft_increase_pct must be above 0 and at most {MAX_TTFT_INCREASE_PCT:g}")
        if not (_number(rate) and 0 <= rate <= 0.5):
            raise ValueError("isolation error_rate_increase is a fraction from 0 to 0.5 (0.01 is one point)")


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class TenantPlan:
    tenants: tuple[Tenant, ...]
    header: str = DEFAULT_TENANT_HEADER  # the header naming the tenant; "" sends none (keys only)
    isolation: Isolation = Isolation()

    def __post_init__(self):
        names = [t.name for t in self.tenants]
        if not 2 <= len(names) <= MAX_TENANTS:
            raise ValueError(f"a noisy-neighbour plan needs 2 to {MAX_TENANTS} tenants")
        if len(set(names)) != len(names) or not all(names):
            raise ValueError("every tenant needs a name of its own")
        if any(len(n) > MAX_NAME_CHARS for n in names):
            raise ValueError(f"a tenant's name is at most {MAX_NAME_CHARS} characters")
        noisy = [t for t in self.tenants if t.burst]
        if len(noisy) != 1:
            raise ValueError("exactly one tenant bursts (the noisy one)")
        burst = noisy[0].burst
        if burst.at <= 0:
            raise ValueError("the burst needs a baseline before it: start it after 0 s")
        quiet = [t for t in self.tenants if not t.burst]
        if not any(sum(s.duration for s in t.stages) >= burst.end for t in quiet):
            raise ValueError(
                "a quiet tenant needs traffic of its own from the start until the burst ends, to be measured against"
            )
        quiet_rate = sum(max((max(s.rate or 0, s.rate_end or 0) for s in t.stages), default=0) for t in quiet)
        if burst.requests / burst.over < quiet_rate:
            raise ValueError(
                f"the burst ({burst.requests / burst.over:g} requests/s) must be at least as fast as the quiet "
                f"tenants together ({quiet_rate:g}/s): a neighbour quieter than the rest is not noisy"
            )

    @property
    def noisy(self) -> Tenant:
        return next(t for t in self.tenants if t.burst)

    @property
    def duration(self) -> float:
        return max(t.duration for t in self.tenants)

    @classmethod
    def from_dict(cls, data: dict) -> TenantPlan:
        """From JSON: {"header": "X-Tenant", "isolation": {...}, "tenants": [{"name", "stages": [...],
        "api_key"?, "header"?, "burst"?: {"at", "requests", "over"?}, "prompt_tokens"?, "max_tokens"?}]}."""
        if not isinstance(data, dict) or not isinstance(data.get("tenants"), list):
            raise ValueError('expected {"tenants": [...]}')
        unknown = set(data) - {"tenants", "header", "isolation"}
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        tenants = []
        for raw in data["tenants"]:
            if not isinstance(raw, dict):
                raise ValueError("each tenant is an object")
            extra = set(raw) - {"name", "stages", "api_key", "header", "burst", "prompt_tokens", "max_tokens"}
            if extra:
                raise ValueError(f"unknown tenant field(s): {', '.join(sorted(extra))}")
            burst = raw.get("burst")
            tenants.append(
                Tenant(
                    name=str(raw.get("name") or ""),
                    stages=tuple(Stage.from_dict(s) for s in raw.get("stages") or ()),
                    api_key=raw.get("api_key") or None,
                    header=str(raw.get("header") or ""),
                    burst=Burst(**burst) if isinstance(burst, dict) else None,
                    prompt_tokens=raw.get("prompt_tokens"),
                    max_tokens=raw.get("max_tokens"),
                )
            )
        isolation = data.get("isolation") or {}
        if not isinstance(isolation, dict) or set(isolation) - {"ttft_increase_pct", "error_rate_increase"}:
            raise ValueError("isolation takes ttft_increase_pct and error_rate_increase")
        return cls(
            tenants=tuple(tenants),
            header=str(data.get("header", DEFAULT_TENANT_HEADER) or ""),
            isolation=Isolation(**isolation),
        )


@dataclass
class TenantRun:
    """One tenant's part of the run: its records, with times on the shared origin, and its summary
    (the engine's, or a worker run's recomputed from its shard's stored records)."""

    tenant: Tenant
    records: Records
    summary: dict


def tenant_config(base: ProbeConfig, plan: TenantPlan, tenant: Tenant, index: int) -> ProbeConfig:
    """The engine configuration of one tenant: all of its schedule (a tenant is never split between
    shards), its own key and header, its own seed, and request ids of its own."""
    headers = tuple(base.headers)
    if plan.header:
        headers += ((plan.header, tenant.header or tenant.name),)
    nonce = base.request_id_nonce
    seed = base.seed + 1000 * index  # tenants do not send in lockstep
    prompts = base.prompts
    if tenant.prompt_tokens:
        prompts = PromptSet.synthetic(prompt_tokens=tenant.prompt_tokens, seed=seed)
    return replace(
        base,
        stages=tenant_stages(tenant),
        prompts=prompts,
        max_tokens=tenant.max_tokens or base.max_tokens,
        api_key=tenant.api_key or base.api_key,
        headers=headers,
        seed=seed,
        canary=None,
        shard_index=0,
        shard_count=1,
        request_id_nonce=None if nonce is None else nonce + index,
    )


def tenant_stages(tenant: Tenant) -> list[Stage]:
    return list(tenant.stages) + ([tenant.burst.stage()] if tenant.burst else [])


def tenant_driver(tenant: Tenant):
    """What a worker's shard runs for one tenant: its base stages and its burst, side by side."""
    return partial(_drive, tenant=tenant)


async def _drive(run: ProbeRun, *, tenant: Tenant) -> dict:
    """A tenant's base stages back to back from 0 and its burst at its own time, side by side."""
    parts = []
    start = 0.0
    for index, stage in enumerate(tenant.stages):
        parts.append((stage, index, start))
        start += stage.duration

    async def base():
        for stage, index, at in parts:
            if run.cancel.is_set():
                return
            await run.run_stage(stage, index, start_at=at)

    jobs = [base()]
    if tenant.burst:
        jobs.append(run.run_stage(tenant.burst.stage(), len(tenant.stages), start_at=tenant.burst.at))
    await asyncio.gather(*jobs)
    run.windows.sort(key=lambda w: w.start)
    return {"tenant": tenant.name}


async def run_tenants(base: ProbeConfig, plan: TenantPlan, *, cancel: asyncio.Event | None = None) -> list[TenantRun]:
    runs = [ProbeRun(tenant_config(base, plan, t, i), cancel=cancel) for i, t in enumerate(plan.tenants)]
    results = await asyncio.gather(
        *(run.execute(driver=tenant_driver(t)) for run, t in zip(runs, plan.tenants, strict=True))
    )
    origin = min(run.origin for run in runs)
    for run in runs:
        _shift(run.records, run.origin - origin)
    return [TenantRun(t, result.records, result.summary) for t, result in zip(plan.tenants, results, strict=True)]


def run_tenant_probe(base: ProbeConfig, plan: TenantPlan) -> tuple[list[TenantRun], dict]:
    """Run the plan to completion on a fresh event loop; (each tenant's run, the analysis)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runs = runner.run(run_tenants(base, plan))
    return runs, analyse(runs, plan, base.slo)


def _shift(records: Records, delta: float) -> None:
    """Move a tenant's times onto the shared origin (its run started `delta` s after the first)."""
    if not delta:
        return
    for column in (records.intended, records.sent, records.first, records.last):
        for i in range(len(column)):
            column[i] += delta


# --- the analysis (pure) -------------------------------------------------------------------------


def jain_index(values: list[float]) -> float | None:
    """Jain's fairness index: 1 when every tenant got the same share, 1/n when one got it all."""
    values = [v for v in values if v == v]
    square_sum = sum(v * v for v in values)
    if not values or not square_sum:
        return None
    return round(sum(values) ** 2 / (len(values) * square_sum), 4)


def _phase(records: Records, label: str, start: float, end: float, slo: SLO) -> dict:
    figures = summarize_window(records, Window(-1, label, start, end), slo, None)
    return {
        "phase": label,
        "start_s": round(start, 3),
        "end_s": round(end, 3),
        "requests": figures["requests"],
        "ttft_p95_ms": figures["ttft_ms"].get("p95"),
        "error_rate": figures["error_rate"],
        "errors": figures["errors"],
    }


def _ratio(now: float | None, baseline: float | None) -> float | None:
    if now is None or not baseline:
        return None
    return round(now / baseline, 3)


def analyse(runs: list[TenantRun], plan: TenantPlan, slo: SLO, *, start_skew_s: float | None = None) -> dict:
    """Per-tenant figures, the quiet tenants before / during / after the burst, Jain's index over
    the share of each tenant's requests served within the SLO, who was throttled, and the verdict.
    `start_skew_s`: how far apart the tenants started, when separate workers ran them."""
    noisy = plan.noisy
    burst = noisy.burst
    end = plan.duration
    limits = plan.isolation
    tenants, quiet, reasons, not_measured = [], [], [], []
    noisy_run = next((run for run in runs if run.tenant is noisy), None)
    for run in runs:
        overall = run.summary["overall"]
        throttled = sum(1 for e in run.records.error if e == HTTP_429)
        tenants.append(
            {
                "name": run.tenant.name,
                "noisy": run.tenant is noisy,
                "requests": overall["requests"],
                "ttft_ms": overall["ttft_ms"],
                "tpot_ms": overall["tpot_ms"],
                "e2e_ms": overall["e2e_ms"],
                "errors": overall["errors"],
                "throttled": throttled,
                "error_rate": overall["error_rate"],
                "goodput": overall["goodput"],
                "output_token_throughput": overall["output_token_throughput"],
                "output_tokens": _served_tokens(run.records),
                "slo_attainment": overall["slo_attainment"],
                "client_saturated": run.summary["client_saturated"],
            }
        )
        if run.tenant is noisy:
            continue
        phases = [
            _phase(run.records, "before", 0.0, burst.at, slo),
            _phase(run.records, "during", burst.at, burst.end, slo),
            _phase(run.records, "after", burst.end, max(end, burst.end), slo),
        ]
        before, during = phases[0], phases[1]
        entry = {
            "name": run.tenant.name,
            "phases": phases,
            "ttft_ratio_during": _ratio(during["ttft_p95_ms"], before["ttft_p95_ms"]),
            "ttft_ratio_after": _ratio(phases[2]["ttft_p95_ms"], before["ttft_p95_ms"]),
        }
        quiet.append(entry)
        if before["ttft_p95_ms"] is None or during["ttft_p95_ms"] is None:
            not_measured.append(f"{run.tenant.name} has no completed request before or during the burst")
            continue
        if min(before["requests"], during["requests"]) < MIN_REQUESTS:
            not_measured.append(
                f"{run.tenant.name} sent {before['requests']} requests before and {during['requests']} during "
                f"the burst (at least {MIN_REQUESTS} each are needed)"
            )
            continue
        # After the burst too: on a shared queue its backlog delays the requests sent just after it.
        for phase in phases[1:]:
            if phase["phase"] == "after" and (phase["requests"] < MIN_REQUESTS or phase["ttft_p95_ms"] is None):
                continue
            reasons += _leaks(run.tenant.name, before, phase, limits)
    unplanned = [] if noisy_run is None else _burst_not_as_planned(noisy_run, noisy)
    throttled = [t["name"] for t in tenants if t["throttled"]]
    saturated = [t["name"] for t in tenants if t["client_saturated"]]
    allowed_skew = max(MIN_START_SKEW_S, START_SKEW_FRACTION * min(burst.at or burst.over, burst.over))
    if start_skew_s is not None and start_skew_s > allowed_skew:
        verdict = INCONCLUSIVE
        why = [
            f"the tenants started {start_skew_s:.2f} s apart (more than the {allowed_skew:.2g} s this plan allows), so "
            "the burst did not meet the others' load as planned: re-run when the probe workers have a free slot "
            "for each tenant"
        ]
    elif saturated:
        verdict = INCONCLUSIVE
        why = [f"the probe client fell behind its schedule for {', '.join(saturated)}: re-run on a quieter machine"]
    elif reasons:  # a smaller burst than planned that leaked still leaked
        verdict, why = LEAKY, reasons
    elif unplanned:
        verdict, why = INCONCLUSIVE, unplanned
    elif not_measured:
        verdict, why = INCONCLUSIVE, not_measured
    else:
        verdict = ISOLATED
        why = [
            f"every quiet tenant kept its p95 TTFT within +{limits.ttft_increase_pct:g} % and its error "
            f"rate within +{limits.error_rate_increase:.1%} of its baseline during and after {noisy.name}'s burst"
        ]
    return {
        "verdict": verdict,
        # The checklist rule's figure: 1 isolated, 0 leaky, none when the run proves neither.
        "isolated": {ISOLATED: 1, LEAKY: 0}.get(verdict),
        "reasons": why,
        "noisy": noisy.name,
        "burst": {"at_s": burst.at, "requests": burst.requests, "over_s": burst.over},
        "duration_s": plan.duration,
        "isolation": {"ttft_increase_pct": limits.ttft_increase_pct, "error_rate_increase": limits.error_rate_increase},
        "tenants": tenants,
        "quiet": quiet,
        "jain_index": jain_index([t["slo_attainment"] for t in tenants if t["slo_attainment"] is not None]),
        "throttled": throttled,
        "throttled_only_noisy": set(throttled) <= {noisy.name},
    }


def _served_tokens(records: Records) -> int:
    return sum(n for n, e in zip(records.output_tokens, records.error, strict=True) if e == OK)


def _leaks(name: str, before: dict, phase: dict, limits: Isolation) -> list[str]:
    """Why a quiet tenant's `phase` (during or after the burst) is beyond its allowance, if it is."""
    out = []
    when = f"{phase['phase']} the burst"
    allowed = before["ttft_p95_ms"] * (1 + limits.ttft_increase_pct / 100)
    if phase["ttft_p95_ms"] > allowed:
        out.append(
            f"{name}: p95 TTFT {phase['ttft_p95_ms']:,.0f} ms {when}, "
            f"{_ratio(phase['ttft_p95_ms'], before['ttft_p95_ms']):g}x its baseline of "
            f"{before['ttft_p95_ms']:,.0f} ms (allowed +{limits.ttft_increase_pct:g} %)"
        )
    if phase["error_rate"] > before["error_rate"] + limits.error_rate_increase:
        out.append(
            f"{name}: error rate {phase['error_rate']:.1%} {when}, {before['error_rate']:.1%} before "
            f"(allowed +{limits.error_rate_increase:.1%})"
        )
    return out


def _burst_not_as_planned(run: TenantRun, noisy: Tenant) -> list[str]:
    """Why the noisy tenant's burst did not happen as planned (too few sent, or most never reached
    the server: refused at connect, or a 4xx other than 429 such as a wrong key), if it did not."""
    index = len(noisy.stages)  # the burst runs as the stage after the tenant's own
    sent = [e for e, stage in zip(run.records.error, run.records.stage, strict=True) if stage == index]
    planned = noisy.burst.requests
    if len(sent) < MIN_BURST_SENT * planned:
        return [f"{noisy.name} sent {len(sent)} of its {planned} burst requests: the burst did not happen as planned"]
    unreached = sum(1 for e in sent if e in (CONNECT, HTTP_4XX))
    if unreached > MAX_BURST_UNREACHED * len(sent):
        return [
            f"{unreached} of {noisy.name}'s {len(sent)} burst requests never reached the server's queue (refused "
            "at connect, or a 4xx other than 429 such as a wrong key): check its key and header"
        ]
    return []


def format_analysis(report: dict) -> str:
    """The analysis as the CLI prints it: a line per tenant, the quiet ones around the burst, the verdict."""
    lines = [f"{'tenant':<16} {'requests':>8} {'TTFT p95':>10} {'E2E p95':>10} {'errors':>7} {'429':>5} {'goodput':>8}"]
    for t in report["tenants"]:
        ttft, e2e = t["ttft_ms"].get("p95"), t["e2e_ms"].get("p95")
        lines.append(
            f"{t['name'][:16]:<16} {t['requests']:>8} {_ms(ttft):>10} {_ms(e2e):>10} "
            f"{t['error_rate']:>7.1%} {t['throttled']:>5} {t['goodput']:>7.2f}/s" + ("  (noisy)" if t["noisy"] else "")
        )
    burst = report["burst"]
    lines.append(
        f"burst: {report['noisy']} sends {burst['requests']} requests over {burst['over_s']:g} s "
        f"from {burst['at_s']:g} s"
    )
    for q in report["quiet"]:
        phases = ", ".join(f"{p['phase']} {_ms(p['ttft_p95_ms'])} ({p['requests']} req)" for p in q["phases"])
        lines.append(f"  {q['name']}: p95 TTFT {phases}")
    jain = report["jain_index"]
    lines.append(f"Jain's fairness index (share served within the SLO): {jain if jain is not None else '—'}")
    if report["throttled"]:
        who = "only the noisy tenant" if report["throttled_only_noisy"] else ", ".join(report["throttled"])
        lines.append(f"throttled (429): {who}")
    lines.append(f"verdict: {report['verdict'].upper()}")
    lines += [f"  - {reason}" for reason in report["reasons"]]
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"
