"""Cost arithmetic: cost per 1M tokens, monthly projections, price staleness. Plain Python, no Django.

Units are in the names, because unit slips are the usual bug here: prices are per GPU-*hour*,
throughput is per *second*, token prices are per *1M* tokens (not per 1K). Conversions go
through the constants below and nowhere else.

The projection model (DESIGN.md, "Cost per token"):

- demand is a per-minute curve of requests/s over one month (730 h = 43,800 minutes); it is
  built from a traffic description (requests/day, peak-to-average, active hours and days) or
  from an explicit per-hour or per-minute curve, repeated to fill the month;
- replicas needed in a minute = ceil(demand rps / one replica's SLO-compliant rps), because
  capacity is sized for the peak minute, not the daily average;
- each option (always-on, autoscaled, business hours, spot) turns that into replica-hours and
  dollars, and says whether it still meets the SLOs; hosted APIs are priced per token.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date

SECONDS_PER_MINUTE = 60
SECONDS_PER_HOUR = 3600
MINUTES_PER_HOUR = 60
HOURS_PER_DAY = 24
MINUTES_PER_DAY = 1440
HOURS_PER_MONTH = 730  # the cloud providers' billing month: 8,760 h / 12
MINUTES_PER_MONTH = HOURS_PER_MONTH * MINUTES_PER_HOUR  # 43,800
DAYS_PER_MONTH = HOURS_PER_MONTH / HOURS_PER_DAY  # 30.4166...
TOKENS_PER_MTOK = 1_000_000

# ceil(4.000000001) is 5 replicas; a ratio that is whole up to float noise is whole.
_CEIL_EPS = 1e-9


def _ceil(x: float) -> int:
    return max(0, math.ceil(x - _CEIL_EPS))


# --- cost per token -------------------------------------------------------------------------------


def tenant_usd_per_mtok_output(
    tenants: list[dict], *, duration_s: float, usd_per_hour: float | None, usd_per_mtok: float | None
) -> list[dict]:
    """What each tenant of a noisy-neighbour run paid per 1M output tokens served within its SLO.

    Self-hosted (`usd_per_hour`: the measured deployment's price): the deployment's cost over the
    run's `duration_s` is shared by each tenant's share of the requests sent, what it asked for, so
    a starved tenant pays for capacity it did not get, and its price per useful token shows it.
    Counts, not rates: a tenant that sent only during a short burst is priced on what it got.
    Hosted (`usd_per_mtok`): every token is billed; a token outside the SLO is paid for and wasted.
    Each entry is a tenant of `engine.tenants.analyse` ({"name", "requests", "output_tokens",
    "slo_attainment", ...}); a tenant served nothing within its SLO has no price (None).
    """
    sent = sum(t["requests"] for t in tenants) or 1
    run_usd = usd_per_hour * duration_s / 3600 if usd_per_hour is not None else None
    rows = []
    for t in tenants:
        within = t["slo_attainment"] if t.get("slo_attainment") is not None else 1.0
        good_tokens = (t.get("output_tokens") or 0) * within
        usd = None
        if run_usd is not None and good_tokens > 0:
            usd = run_usd * (t["requests"] / sent) / good_tokens * 1_000_000
        elif usd_per_mtok is not None and within > 0:
            usd = usd_per_mtok / within
        rows.append({"name": t["name"], "noisy": t.get("noisy", False), "usd_per_mtok_output": _round(usd)})
    return rows


def _round(usd: float | None) -> float | None:
    return None if usd is None else round(usd, 4)


def self_hosted_usd_per_mtok_output(
    *,
    usd_per_gpu_hour: float,
    gpus_per_replica: int,
    replicas: int,
    goodput_output_tokens_per_s: float,
    utilisation: float = 1.0,
) -> float:
    """$ per 1M output tokens of a measured self-hosted configuration.

    `goodput_output_tokens_per_s` is the SLO-compliant output throughput of the whole measured
    configuration (all `replicas`), as a probe reports it. Input tokens are not priced
    separately: the GPU time that processed them is already in the measured goodput.
    `utilisation` (0–1] is the share of paid capacity the real traffic shape uses; at 0.25 you
    pay for four tokens' worth of GPU time per token served.
    """
    if goodput_output_tokens_per_s <= 0:
        raise ValueError("goodput_output_tokens_per_s must be positive")
    if not 0 < utilisation <= 1:
        raise ValueError("utilisation must be in (0, 1]")
    usd_per_hour = usd_per_gpu_hour * gpus_per_replica * replicas
    output_tokens_per_hour = goodput_output_tokens_per_s * SECONDS_PER_HOUR
    return usd_per_hour / output_tokens_per_hour * TOKENS_PER_MTOK / utilisation


@dataclass(frozen=True)
class HostedCost:
    """A hosted API's price for one request shape, split into input and output."""

    input_usd_per_request: float
    output_usd_per_request: float
    usd_per_request: float
    # All-in $ per 1M output tokens (the input that came with them included): comparable with
    # self_hosted_usd_per_mtok_output, whose GPU time also covered the input.
    usd_per_mtok_output_all_in: float
    # $ per 1M tokens of either kind, the "blended" price some dashboards show.
    usd_per_mtok_blended: float

    def to_dict(self) -> dict:
        return asdict(self)


def hosted_cost(
    *,
    usd_per_mtok_input: float,
    usd_per_mtok_output: float,
    input_tokens_per_request: float,
    output_tokens_per_request: float,
) -> HostedCost:
    """Cost of one request of the given shape on a hosted API priced per 1M input/output tokens."""
    if input_tokens_per_request < 0 or output_tokens_per_request < 0:
        raise ValueError("token counts must not be negative")
    input_usd = input_tokens_per_request * usd_per_mtok_input / TOKENS_PER_MTOK
    output_usd = output_tokens_per_request * usd_per_mtok_output / TOKENS_PER_MTOK
    total = input_usd + output_usd
    all_tokens = input_tokens_per_request + output_tokens_per_request
    return HostedCost(
        input_usd_per_request=input_usd,
        output_usd_per_request=output_usd,
        usd_per_request=total,
        usd_per_mtok_output_all_in=total / output_tokens_per_request * TOKENS_PER_MTOK
        if output_tokens_per_request
        else math.inf,
        usd_per_mtok_blended=total / all_tokens * TOKENS_PER_MTOK if all_tokens else 0.0,
    )


def requests_per_s_from_tokens_per_s(*, output_tokens_per_s: float, output_tokens_per_request: float) -> float:
    """A replica's request goodput from its token goodput, at a given output length."""
    if output_tokens_per_request <= 0:
        raise ValueError("output_tokens_per_request must be positive")
    return output_tokens_per_s / output_tokens_per_request


# --- staleness -----------------------------------------------------------------------------------

DEFAULT_MAX_PRICE_AGE_DAYS = 90


def price_age_days(as_of: date, *, today: date) -> int:
    return (today - as_of).days


def price_is_stale(as_of: date, *, today: date, max_age_days: int = DEFAULT_MAX_PRICE_AGE_DAYS) -> bool:
    """A price quoted more than `max_age_days` ago (strictly older) is stale and should be re-checked."""
    return price_age_days(as_of, today=today) > max_age_days


def stale_prices(prices: Iterable, *, today: date, max_age_days: int = DEFAULT_MAX_PRICE_AGE_DAYS) -> list[dict]:
    """The entries (anything with `name` and `as_of`) whose price is stale, oldest first."""
    out = [
        {"name": p.name, "as_of": p.as_of.isoformat(), "age_days": price_age_days(p.as_of, today=today)}
        for p in prices
        if price_is_stale(p.as_of, today=today, max_age_days=max_age_days)
    ]
    return sorted(out, key=lambda row: -row["age_days"])


# --- demand curves -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Traffic:
    """Expected traffic, as a product owner describes it.

    `peak_to_average` is the busiest minute's request rate over the average rate *during the
    active hours*. Active hours are one contiguous block per day from `active_start_hour`;
    active days are taken weekdays first (see `_active_days`), so a 22-day month is Mon–Fri.
    """

    requests_per_day: float
    input_tokens_per_request: float
    output_tokens_per_request: float
    peak_to_average: float = 1.0
    active_hours_per_day: float = 24
    active_days_per_month: float = DAYS_PER_MONTH
    active_start_hour: float = 0

    def __post_init__(self):
        if self.requests_per_day < 0:
            raise ValueError("requests_per_day must not be negative")
        if self.peak_to_average < 1:
            raise ValueError("peak_to_average is at least 1 (the peak is never below the average)")
        if not 0 < self.active_hours_per_day <= HOURS_PER_DAY:
            raise ValueError("active_hours_per_day must be in (0, 24]")
        if self.active_start_hour < 0 or self.active_start_hour + self.active_hours_per_day > HOURS_PER_DAY:
            raise ValueError("the active hours must fit inside one day (no wrap past midnight)")
        if not 0 < self.active_days_per_month <= DAYS_PER_MONTH + 1e-9:
            raise ValueError(f"active_days_per_month must be in (0, {DAYS_PER_MONTH:.2f}]")


@dataclass(frozen=True)
class DemandCurve:
    """Requests per second, one value per `interval_s` (60 for per-minute, 3600 for per-hour)."""

    rps: tuple[float, ...]
    interval_s: int = SECONDS_PER_MINUTE

    def __post_init__(self):
        if self.interval_s % SECONDS_PER_MINUTE or self.interval_s <= 0:
            raise ValueError("interval_s must be a whole number of minutes")
        if not self.rps:
            raise ValueError("a demand curve needs at least one value")
        if any(not math.isfinite(v) or v < 0 for v in self.rps):
            raise ValueError("demand values must be finite and not negative")

    @classmethod
    def per_minute(cls, rps: Sequence[float]) -> DemandCurve:
        return cls(tuple(float(v) for v in rps), SECONDS_PER_MINUTE)

    @classmethod
    def per_hour(cls, rps: Sequence[float]) -> DemandCurve:
        return cls(tuple(float(v) for v in rps), SECONDS_PER_HOUR)

    def per_minute_for_month(self) -> list[float]:
        """The curve at one-minute steps, repeated (cyclically) to fill exactly one 730-hour month."""
        step = self.interval_s // SECONDS_PER_MINUTE
        base = [v for v in self.rps for _ in range(step)]
        reps = -(-MINUTES_PER_MONTH // len(base))
        return (base * reps)[:MINUTES_PER_MONTH]


def _active_days(count: float) -> set[int]:
    """Which day slots (0..30) of the month are active: weekdays first, then weekends.

    Nested by construction: the 20 days of a 20-day schedule are among the 22 of a 22-day one,
    so a schedule with at least as many days as the traffic covers all of its days. Day 0 is a
    Monday; the month's last slot is a partial day (730 h is 30 days and 10 hours).
    """
    slots = -(-MINUTES_PER_MONTH // MINUTES_PER_DAY)  # 31
    if count >= DAYS_PER_MONTH - 1e-9:
        return set(range(slots))
    order = [d for d in range(slots) if d % 7 < 5] + [d for d in range(slots) if d % 7 >= 5]
    return set(order[: round(count)])


def _diurnal_day(active_minutes: int, peak_to_average: float) -> list[float]:
    """A one-peak daily shape over the active minutes with mean exactly 1 and max exactly `peak_to_average`.

    The bump is sin(πx)^k, lifted by a constant floor: r = a + b·f with max a+b = p and mean
    a + b·mean(f) = 1. A flatter bump cannot reach high peaks with a non-negative floor, so k
    grows until it can (sin^k has mean ≈ √(2/(πk))).
    """
    if peak_to_average <= 1 + 1e-12:
        return [1.0] * active_minutes
    k = 1
    while True:
        f = [math.sin(math.pi * (i + 0.5) / active_minutes) ** k for i in range(active_minutes)]
        top = max(f)
        f = [v / top for v in f]
        mean_f = sum(f) / active_minutes
        b = (peak_to_average - 1) / (1 - mean_f)
        a = peak_to_average - b
        if a >= -1e-12 or k > 10_000:
            return [max(0.0, a) + b * v for v in f]
        k += 1


def traffic_demand_curve(traffic: Traffic, *, shape: str = "diurnal") -> DemandCurve:
    """A month of per-minute demand from a traffic description.

    `shape="diurnal"`: one smooth daily peak over the active hours, whose busiest minute is
    `peak_to_average` × the active-hours average. `shape="flat"`: the average all active hours
    (then `peak_to_average` is ignored). Inactive hours and days have zero demand.
    """
    if shape not in ("diurnal", "flat"):
        raise ValueError("shape must be 'diurnal' or 'flat'")
    start = round(traffic.active_start_hour * MINUTES_PER_HOUR)
    active_minutes = max(1, round(traffic.active_hours_per_day * MINUTES_PER_HOUR))
    avg_rps = traffic.requests_per_day / (active_minutes * SECONDS_PER_MINUTE)
    day_shape = _diurnal_day(active_minutes, traffic.peak_to_average) if shape == "diurnal" else [1.0] * active_minutes
    active_day = [0.0] * MINUTES_PER_DAY
    for i, v in enumerate(day_shape):
        active_day[start + i] = avg_rps * v
    idle_day = [0.0] * MINUTES_PER_DAY
    days = _active_days(traffic.active_days_per_month)
    month: list[float] = []
    for d in range(-(-MINUTES_PER_MONTH // MINUTES_PER_DAY)):
        month.extend(active_day if d in days else idle_day)
    return DemandCurve(tuple(month[:MINUTES_PER_MONTH]), SECONDS_PER_MINUTE)


# --- projections ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaSpec:
    """One serving replica as measured: its price and its SLO-compliant request rate."""

    usd_per_gpu_hour: float
    gpus_per_replica: int
    goodput_requests_per_s: float
    spot_usd_per_gpu_hour: float | None = None
    name: str = ""

    def __post_init__(self):
        if self.goodput_requests_per_s <= 0:
            raise ValueError("goodput_requests_per_s must be positive")
        if self.gpus_per_replica < 1:
            raise ValueError("gpus_per_replica must be at least 1")

    @property
    def usd_per_replica_hour(self) -> float:
        return self.usd_per_gpu_hour * self.gpus_per_replica


@dataclass(frozen=True)
class Schedule:
    """Business hours: `hours_per_day` from `start_hour`, on `days_per_month` days (weekdays first)."""

    hours_per_day: float = 12
    days_per_month: float = 22
    start_hour: float = 7

    def __post_init__(self):
        if not 0 < self.hours_per_day <= HOURS_PER_DAY or self.start_hour + self.hours_per_day > HOURS_PER_DAY:
            raise ValueError("the schedule must fit inside one day")


@dataclass(frozen=True)
class Spot:
    """Spot capacity: a discount off on-demand (or the spec's spot price) and spare replicas.

    `headroom_replicas` are kept on top of what demand needs, so that losing
    `max_simultaneous_preemptions` replicas at once does not drop below the SLO capacity while
    the replacements start.
    """

    discount: float | None = None  # 0.6 = pay 40 % of on-demand; None: use spec.spot_usd_per_gpu_hour
    headroom_replicas: int = 1
    max_simultaneous_preemptions: int = 1


@dataclass(frozen=True)
class HostedModel:
    name: str
    usd_per_mtok_input: float
    usd_per_mtok_output: float


@dataclass
class Option:
    key: str
    label: str
    usd_per_month: float
    meets_slo: bool | None  # None: not measured (hosted APIs unless told)
    replica_hours: float | None = None
    gpu_hours: float | None = None
    peak_replicas: int | None = None
    utilisation: float | None = None
    usd_per_mtok_output: float | None = None
    vs_hosted_usd: float | None = None  # this option minus the cheapest hosted alternative
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Projection:
    options: list[Option]
    cheapest: Option | None  # the cheapest option that meets the SLOs
    always_on_usd_per_month: float
    saving_vs_always_on_usd: float | None
    saving_vs_always_on_pct: float | None
    requests_per_month: float
    output_tokens_per_month: float
    peak_rps: float
    average_rps: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cheapest"] = self.cheapest.key if self.cheapest else None
        return d


def replicas_needed(demand_rps: float, goodput_requests_per_s: float) -> int:
    """ceil(demand / one replica's SLO-compliant rate); 0 when there is no demand."""
    if goodput_requests_per_s <= 0:
        raise ValueError("goodput_requests_per_s must be positive")
    return _ceil(demand_rps / goodput_requests_per_s)


def autoscaled_replicas(
    needed: Sequence[int], *, min_replicas: int, scale_down_delay_minutes: int, scale_up_lead_minutes: int = 0
) -> list[int]:
    """Replicas running each minute under an autoscaler.

    Scale-down waits until demand has stayed low for the delay (an HPA stabilisation window):
    the replicas at minute t are the most needed over [t − delay, t]. Scale-up is costed as if
    replicas were ready `scale_up_lead_minutes` ahead of demand (window extends to t + lead):
    that is what avoiding an SLO breach during a replica's start-up costs. O(n) with a
    monotonic deque.
    """
    n = len(needed)
    out = [0] * n
    window: deque[int] = deque()  # indices, their needed values decreasing
    hi = -1
    for t in range(n):
        while hi < min(n - 1, t + scale_up_lead_minutes):
            hi += 1
            while window and needed[window[-1]] <= needed[hi]:
                window.pop()
            window.append(hi)
        while window[0] < t - scale_down_delay_minutes:
            window.popleft()
        out[t] = max(min_replicas, needed[window[0]])
    return out


def project_monthly(
    *,
    spec: ReplicaSpec,
    traffic: Traffic,
    demand: DemandCurve | None = None,
    shape: str = "diurnal",
    min_replicas: int = 1,
    scale_down_delay_s: int = 600,
    scale_up_lead_s: int = 0,
    schedule: Schedule | None = None,
    spot: Spot | None = None,
    hosted: Sequence[HostedModel] = (),
    hosted_meets_slo: bool | None = None,
    off_schedule_traffic_allowed: bool = False,
) -> Projection:
    """Monthly cost of serving `traffic` each way, and the cheapest way that still meets the SLOs.

    Options: always-on at peak capacity (730 h); autoscaled (replica-minutes from the demand
    curve, `min_replicas`, scale-down delay); business hours (peak capacity during `schedule`
    only); spot (the autoscaled replicas plus headroom at the spot price); each hosted model.

    Meeting the SLOs: always-on and autoscaled do (capacity ≥ demand every minute, given the
    lead). Business hours does only if no demand falls outside the schedule, unless
    `off_schedule_traffic_allowed` (someone has agreed those requests may fail). Spot does if
    its headroom covers `max_simultaneous_preemptions`. Hosted APIs are not measured here, so
    they count only when `hosted_meets_slo=True`. Token counts per request come from
    `traffic`; the demand curve (explicit, or built from `traffic`) decides the request rate.
    """
    schedule = schedule or Schedule()
    curve = (demand or traffic_demand_curve(traffic, shape=shape)).per_minute_for_month()
    rate = spec.goodput_requests_per_s
    needed = [_ceil(v / rate) for v in curve]
    requests_per_month = sum(curve) * SECONDS_PER_MINUTE
    output_tokens_per_month = requests_per_month * traffic.output_tokens_per_request
    peak_rps = max(curve)
    average_rps = requests_per_month / (MINUTES_PER_MONTH * SECONDS_PER_MINUTE)
    hourly = spec.usd_per_replica_hour

    def option(key, label, replica_minutes, peak, usd_per_replica_hour, meets, note="") -> Option:
        replica_hours = replica_minutes / MINUTES_PER_HOUR
        usd = replica_hours * usd_per_replica_hour
        capacity_requests = replica_minutes * SECONDS_PER_MINUTE * rate
        return Option(
            key=key,
            label=label,
            usd_per_month=usd,
            meets_slo=meets,
            replica_hours=replica_hours,
            gpu_hours=replica_hours * spec.gpus_per_replica,
            peak_replicas=peak,
            utilisation=min(1.0, requests_per_month / capacity_requests) if capacity_requests else None,
            usd_per_mtok_output=usd / output_tokens_per_month * TOKENS_PER_MTOK if output_tokens_per_month else None,
            note=note,
        )

    options: list[Option] = []
    peak_needed = max(max(needed), min_replicas, 1)
    options.append(
        option(
            "always_on",
            f"Always-on, {peak_needed} replica(s) × 730 h",
            peak_needed * MINUTES_PER_MONTH,
            peak_needed,
            hourly,
            True,
            "Sized for the busiest minute of the month, running all month.",
        )
    )

    lead_min = _ceil(scale_up_lead_s / SECONDS_PER_MINUTE)
    delay_min = _ceil(scale_down_delay_s / SECONDS_PER_MINUTE)
    scaled = autoscaled_replicas(
        needed, min_replicas=min_replicas, scale_down_delay_minutes=delay_min, scale_up_lead_minutes=lead_min
    )
    options.append(
        option(
            "autoscaled",
            f"Autoscaled, min {min_replicas}, scale-down after {scale_down_delay_s:g} s",
            sum(scaled),
            max(scaled),
            hourly,
            True,
            f"Replicas follow the per-minute peak; ready {scale_up_lead_s:g} s ahead of demand.",
        )
    )

    days = _active_days(schedule.days_per_month)
    s0 = round(schedule.start_hour * MINUTES_PER_HOUR)
    s1 = s0 + round(schedule.hours_per_day * MINUTES_PER_HOUR)
    on = [(m // MINUTES_PER_DAY) in days and s0 <= m % MINUTES_PER_DAY < s1 for m in range(MINUTES_PER_MONTH)]
    in_schedule = [n for n, o in zip(needed, on, strict=True) if o]
    sched_peak = max(max(in_schedule, default=0), 1)
    off_requests = sum(v for v, o in zip(curve, on, strict=True) if not o) * SECONDS_PER_MINUTE
    if off_requests <= 0:
        meets, note = True, "No demand falls outside the schedule."
    elif off_schedule_traffic_allowed:
        meets, note = True, f"{off_requests:,.0f} requests/month fall outside the schedule; agreed to go unserved."
    else:
        meets, note = False, f"{off_requests:,.0f} requests/month fall outside the schedule and would go unserved."
    options.append(
        option(
            "business_hours",
            f"Business hours, {sched_peak} replica(s) × {schedule.hours_per_day:g} h × {len(days)} days",
            sched_peak * sum(on),
            sched_peak,
            hourly,
            meets,
            note,
        )
    )

    if spot is not None:
        if spot.discount is not None:
            spot_hourly = hourly * (1 - spot.discount)
        elif spec.spot_usd_per_gpu_hour is not None:
            spot_hourly = spec.spot_usd_per_gpu_hour * spec.gpus_per_replica
        else:
            raise ValueError("spot needs a discount or the spec's spot_usd_per_gpu_hour")
        with_headroom = [r + spot.headroom_replicas for r in scaled]
        safe = spot.headroom_replicas >= spot.max_simultaneous_preemptions
        options.append(
            option(
                "spot",
                f"Spot, autoscaled + {spot.headroom_replicas} spare replica(s)",
                sum(with_headroom),
                max(with_headroom),
                spot_hourly,
                safe,
                f"Survives {spot.max_simultaneous_preemptions} simultaneous preemption(s)"
                if safe
                else "Headroom smaller than the preemptions to survive.",
            )
        )

    hosted_rows = []
    for h in hosted:
        per_request = hosted_cost(
            usd_per_mtok_input=h.usd_per_mtok_input,
            usd_per_mtok_output=h.usd_per_mtok_output,
            input_tokens_per_request=traffic.input_tokens_per_request,
            output_tokens_per_request=traffic.output_tokens_per_request,
        )
        usd = per_request.usd_per_request * requests_per_month
        hosted_rows.append(
            Option(
                key=f"hosted:{h.name}",
                label=f"Hosted API {h.name}",
                usd_per_month=usd,
                meets_slo=hosted_meets_slo,
                usd_per_mtok_output=per_request.usd_per_mtok_output_all_in,
                note="Pay per token; latency not measured here." if hosted_meets_slo is None else "Pay per token.",
            )
        )
    if hosted_rows:
        cheapest_hosted = min(r.usd_per_month for r in hosted_rows)
        for o in options:
            o.vs_hosted_usd = o.usd_per_month - cheapest_hosted
    options.extend(hosted_rows)

    always_on = options[0].usd_per_month
    meeting = [o for o in options if o.meets_slo]
    cheapest = min(meeting, key=lambda o: o.usd_per_month) if meeting else None
    saving = always_on - cheapest.usd_per_month if cheapest else None
    return Projection(
        options=options,
        cheapest=cheapest,
        always_on_usd_per_month=always_on,
        saving_vs_always_on_usd=saving,
        saving_vs_always_on_pct=(100 * saving / always_on) if saving is not None and always_on else None,
        requests_per_month=requests_per_month,
        output_tokens_per_month=output_tokens_per_month,
        peak_rps=peak_rps,
        average_rps=average_rps,
        notes=[
            "Replicas per minute = ceil(demand rps / replica goodput rps); the peak minute sizes capacity.",
            "Scale-up is costed as instant unless the time a new replica takes to be ready is set (use the "
            "autoscaling probe's T_ready).",
        ],
    )
