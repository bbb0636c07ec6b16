"""Cost arithmetic with hand-computed answers; unit slips (hour vs second, 1K vs 1M) are the usual bug."""

from datetime import date

import pytest

from apps.costs import catalog
from apps.costs.pricing import (
    MINUTES_PER_MONTH,
    DemandCurve,
    HostedModel,
    ReplicaSpec,
    Schedule,
    Spot,
    Traffic,
    autoscaled_replicas,
    hosted_cost,
    price_is_stale,
    project_monthly,
    replicas_needed,
    requests_per_s_from_tokens_per_s,
    self_hosted_usd_per_mtok_output,
    stale_prices,
    traffic_demand_curve,
)


@pytest.mark.parametrize(
    ("usd_per_gpu_hour", "gpus", "replicas", "tokens_per_s", "utilisation", "expected"),
    [
        # $3.60/h at 1,000 tok/s is 3.6M tokens an hour for $3.60: exactly $1 per 1M.
        (3.6, 1, 1, 1000, 1.0, 1.0),
        # Reading $/h as $/s would give 3.6 / 1000 × 1e6 = $3,600; per 1K instead of 1M, $0.001.
        (2.0, 1, 1, 1000, 1.0, 2 / 3.6),
        # 8 GPUs × 2 replicas × $4 = $64/h over 10,000 tok/s (36M tok/h).
        (4.0, 8, 2, 10_000, 1.0, 64 / 36),
        # A quarter of the capacity used: four times the cost per token served.
        (3.6, 1, 1, 1000, 0.25, 4.0),
        # 1 tok/s for $3.60/h: $1 per 1K tokens is $1,000 per 1M.
        (3.6, 1, 1, 1, 1.0, 1000.0),
    ],
)
def test_self_hosted_cost_per_million_output_tokens(
    usd_per_gpu_hour, gpus, replicas, tokens_per_s, utilisation, expected
):
    got = self_hosted_usd_per_mtok_output(
        usd_per_gpu_hour=usd_per_gpu_hour,
        gpus_per_replica=gpus,
        replicas=replicas,
        goodput_output_tokens_per_s=tokens_per_s,
        utilisation=utilisation,
    )
    assert got == pytest.approx(expected, rel=1e-12)


def test_self_hosted_cost_refuses_zero_goodput_and_bad_utilisation():
    with pytest.raises(ValueError):
        self_hosted_usd_per_mtok_output(
            usd_per_gpu_hour=1, gpus_per_replica=1, replicas=1, goodput_output_tokens_per_s=0
        )
    with pytest.raises(ValueError):
        self_hosted_usd_per_mtok_output(
            usd_per_gpu_hour=1, gpus_per_replica=1, replicas=1, goodput_output_tokens_per_s=1, utilisation=1.5
        )


@pytest.mark.parametrize(
    ("usd_in", "usd_out", "tokens_in", "tokens_out", "per_request", "all_in_per_mtok_out", "blended"),
    [
        # gpt-4o-like: 1,000 in × $2.50/1M = $0.0025; 500 out × $10/1M = $0.005.
        (2.50, 10.00, 1000, 500, 0.0075, 15.0, 5.0),
        # A million of each at $0.15 / $0.60 per 1M: $0.75, not $750 (the per-1K slip).
        (0.15, 0.60, 1_000_000, 1_000_000, 0.75, 0.75, 0.375),
        # Output only: all-in equals the output price.
        (3.00, 15.00, 0, 200, 0.003, 15.0, 15.0),
    ],
)
def test_hosted_cost_splits_input_and_output(
    usd_in, usd_out, tokens_in, tokens_out, per_request, all_in_per_mtok_out, blended
):
    cost = hosted_cost(
        usd_per_mtok_input=usd_in,
        usd_per_mtok_output=usd_out,
        input_tokens_per_request=tokens_in,
        output_tokens_per_request=tokens_out,
    )
    assert cost.usd_per_request == pytest.approx(per_request)
    assert cost.input_usd_per_request + cost.output_usd_per_request == pytest.approx(per_request)
    assert cost.usd_per_mtok_output_all_in == pytest.approx(all_in_per_mtok_out)
    assert cost.usd_per_mtok_blended == pytest.approx(blended)


@pytest.mark.parametrize(
    ("demand_rps", "replica_rps", "expected"),
    [
        (10, 2.5, 4),  # exactly four, not five
        (0.3, 0.1, 3),  # 0.3 / 0.1 is 2.9999999999999996 in floats
        (0.7, 0.1, 7),  # ... and 6.999999999999999
        (10.01, 2.5, 5),
        (0, 1, 0),
    ],
)
def test_replicas_needed_is_the_ceiling_without_float_noise(demand_rps, replica_rps, expected):
    assert replicas_needed(demand_rps, replica_rps) == expected


def test_request_goodput_from_token_goodput():
    assert requests_per_s_from_tokens_per_s(output_tokens_per_s=1000, output_tokens_per_request=250) == 4


def test_autoscaler_waits_the_scale_down_delay_and_costs_the_lead():
    needed = [0, 0, 3, 0, 0, 0, 1]
    assert autoscaled_replicas(needed, min_replicas=1, scale_down_delay_minutes=2) == [1, 1, 3, 3, 3, 1, 1]
    assert autoscaled_replicas(needed, min_replicas=1, scale_down_delay_minutes=2, scale_up_lead_minutes=1) == [
        1,
        3,
        3,
        3,
        3,
        1,
        1,
    ]
    assert autoscaled_replicas(needed, min_replicas=0, scale_down_delay_minutes=0) == needed


SPEC = ReplicaSpec(usd_per_gpu_hour=1.0, gpus_per_replica=1, goodput_requests_per_s=1.0)


def _option(projection, key):
    return next(o for o in projection.options if o.key == key)


def test_constant_demand_projection():
    # 2 rps all day every day, a replica serves 1 rps at $1/h: 2 replicas × 730 h = $1,460.
    traffic = Traffic(requests_per_day=2 * 86_400, input_tokens_per_request=1000, output_tokens_per_request=100)
    p = project_monthly(
        spec=SPEC,
        traffic=traffic,
        shape="flat",
        spot=Spot(discount=0.6, headroom_replicas=1),
        hosted=[HostedModel("mini", 0.15, 0.60)],
    )
    assert p.requests_per_month == pytest.approx(2 * MINUTES_PER_MONTH * 60)
    assert p.peak_rps == pytest.approx(2) and p.average_rps == pytest.approx(2)
    always_on = _option(p, "always_on")
    assert always_on.usd_per_month == pytest.approx(1460)
    assert always_on.peak_replicas == 2 and always_on.utilisation == pytest.approx(1)
    # $1,460 for 525.6M output tokens.
    assert always_on.usd_per_mtok_output == pytest.approx(1460 / 525.6)
    assert _option(p, "autoscaled").usd_per_month == pytest.approx(1460)
    business = _option(p, "business_hours")
    assert business.meets_slo is False and "outside the schedule" in business.note
    # Spot: (2 + 1 spare) × 730 h × $0.40.
    assert _option(p, "spot").usd_per_month == pytest.approx(876)
    # Hosted: 1,000 × $0.15/1M + 100 × $0.60/1M = $0.00021 a request × 5,256,000 requests.
    hosted = _option(p, "hosted:mini")
    assert hosted.usd_per_month == pytest.approx(0.00021 * 5_256_000)
    assert hosted.meets_slo is None
    assert always_on.vs_hosted_usd == pytest.approx(1460 - 0.00021 * 5_256_000)
    assert p.cheapest.key == "spot"
    assert p.saving_vs_always_on_usd == pytest.approx(584)
    assert p.saving_vs_always_on_pct == pytest.approx(40)


# 432,000 requests a weekday between 08:00 and 20:00, the busiest minute at 4× the average.
DIURNAL = Traffic(
    requests_per_day=432_000,
    input_tokens_per_request=500,
    output_tokens_per_request=200,
    peak_to_average=4,
    active_hours_per_day=12,
    active_days_per_month=22,
    active_start_hour=8,
)


def test_diurnal_curve_keeps_the_daily_volume_and_the_peak_ratio():
    traffic = DIURNAL
    curve = traffic_demand_curve(traffic).rps
    assert len(curve) == MINUTES_PER_MONTH
    day = curve[:1440]  # day 0 is a Monday, active
    assert sum(day) * 60 == pytest.approx(432_000)
    assert max(day) == pytest.approx(40)  # 432,000 over 12 h is 10 rps on average; the peak is 4×
    assert all(v == 0 for v in day[: 8 * 60] + day[20 * 60 :])
    assert sum(curve) * 60 == pytest.approx(432_000 * 22)
    assert sum(curve[5 * 1440 : 7 * 1440]) == 0  # the weekend


def test_diurnal_projection_autoscaling_beats_business_hours_beats_always_on():
    traffic = DIURNAL
    spec = ReplicaSpec(usd_per_gpu_hour=1.0, gpus_per_replica=1, goodput_requests_per_s=5.0)
    schedule = Schedule(hours_per_day=12, days_per_month=22, start_hour=8)
    p = project_monthly(spec=spec, traffic=traffic, schedule=schedule)
    # Peak 40 rps ÷ 5 rps a replica = 8 replicas.
    assert _option(p, "always_on").usd_per_month == pytest.approx(8 * 730)
    business = _option(p, "business_hours")
    assert business.meets_slo is True
    assert business.usd_per_month == pytest.approx(8 * 12 * 22)
    # Capacity sized for a peak 4× the average is a quarter used.
    assert business.utilisation == pytest.approx(0.25)
    autoscaled = _option(p, "autoscaled")
    assert autoscaled.peak_replicas == 8
    # At least the one minimum replica all month, at most that plus 8 replicas through every active hour.
    assert 730 < autoscaled.replica_hours < 730 + 8 * 12 * 22
    assert autoscaled.usd_per_month < business.usd_per_month
    assert p.cheapest.key == "autoscaled"
    assert p.saving_vs_always_on_usd == pytest.approx(8 * 730 - p.cheapest.usd_per_month)


def test_business_hours_that_miss_an_hour_of_traffic_do_not_meet_the_slo():
    traffic = Traffic(
        requests_per_day=43_200,
        input_tokens_per_request=1,
        output_tokens_per_request=1,
        active_hours_per_day=12,
        active_days_per_month=22,
        active_start_hour=8,
    )
    missed = project_monthly(spec=SPEC, traffic=traffic, shape="flat", schedule=Schedule(start_hour=7))
    business = _option(missed, "business_hours")
    # 19:00–20:00 is outside a 07:00–19:00 schedule: 1 rps × 3,600 s × 22 days.
    assert business.meets_slo is False
    assert "79,200 requests/month" in business.note
    allowed = project_monthly(
        spec=SPEC, traffic=traffic, shape="flat", schedule=Schedule(start_hour=7), off_schedule_traffic_allowed=True
    )
    assert _option(allowed, "business_hours").meets_slo is True


def test_bursty_per_minute_demand_autoscaled_replica_hours():
    # One day, repeated: 1 rps, except 20 rps for five minutes from minute 600.
    day = [1.0] * 1440
    day[600:605] = [20.0] * 5
    curve = DemandCurve.per_minute(day)
    traffic = Traffic(requests_per_day=0, input_tokens_per_request=100, output_tokens_per_request=100)
    p = project_monthly(spec=SPEC, traffic=traffic, demand=curve, scale_down_delay_s=600)
    assert _option(p, "always_on").usd_per_month == pytest.approx(20 * 730)
    # 20 replicas for minutes 600–614 (the burst plus a 10-minute delay), 1 the other 1,425 minutes:
    # 1,725 replica-minutes a day. 730 h is 30 days and 600 minutes, and the partial day ends
    # before the burst: 30 × 1,725 + 600 = 52,350 replica-minutes = 872.5 replica-hours.
    assert _option(p, "autoscaled").replica_hours == pytest.approx(872.5)
    assert _option(p, "autoscaled").usd_per_month == pytest.approx(872.5)
    # Ready two minutes ahead: 17 minutes at 20 a day.
    led = project_monthly(spec=SPEC, traffic=traffic, demand=curve, scale_down_delay_s=600, scale_up_lead_s=120)
    assert _option(led, "autoscaled").replica_hours == pytest.approx((30 * (17 * 20 + 1423) + 600) / 60)
    assert p.cheapest.key == "autoscaled"
    assert p.saving_vs_always_on_usd == pytest.approx(20 * 730 - 872.5)


def test_per_hour_curve_is_spread_over_its_minutes():
    curve = DemandCurve.per_hour([0.0] * 9 + [3.0] + [0.0] * 14)
    minutes = curve.per_minute_for_month()
    assert len(minutes) == MINUTES_PER_MONTH
    assert minutes[9 * 60 : 10 * 60] == [3.0] * 60 and minutes[10 * 60] == 0
    assert minutes[1440 + 9 * 60] == 3.0


def test_spot_uses_the_spot_price_and_without_headroom_does_not_meet_the_slo():
    spec = ReplicaSpec(usd_per_gpu_hour=2.0, gpus_per_replica=4, goodput_requests_per_s=1.0, spot_usd_per_gpu_hour=0.5)
    traffic = Traffic(requests_per_day=86_400, input_tokens_per_request=1, output_tokens_per_request=1)
    p = project_monthly(spec=spec, traffic=traffic, shape="flat", spot=Spot(headroom_replicas=0))
    spot = _option(p, "spot")
    assert spot.usd_per_month == pytest.approx(1 * 4 * 0.5 * 730)
    assert spot.meets_slo is False
    assert p.cheapest.key == "always_on"
    assert p.saving_vs_always_on_usd == 0


def test_hosted_api_counts_as_an_slo_option_only_when_told():
    traffic = Traffic(requests_per_day=1000, input_tokens_per_request=100, output_tokens_per_request=100)
    hosted = [HostedModel("cheap", 0.1, 0.1)]
    assert project_monthly(spec=SPEC, traffic=traffic, hosted=hosted).cheapest.key != "hosted:cheap"
    trusted = project_monthly(spec=SPEC, traffic=traffic, hosted=hosted, hosted_meets_slo=True)
    assert trusted.cheapest.key == "hosted:cheap"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"peak_to_average": 0.5},
        {"active_hours_per_day": 0},
        {"active_hours_per_day": 12, "active_start_hour": 18},  # would wrap past midnight
        {"active_days_per_month": 40},
        {"requests_per_day": -1},
    ],
)
def test_traffic_refuses_impossible_descriptions(kwargs):
    base = {"requests_per_day": 1, "input_tokens_per_request": 1, "output_tokens_per_request": 1}
    with pytest.raises(ValueError):
        Traffic(**{**base, **kwargs})


@pytest.mark.parametrize(
    ("as_of", "today", "max_age_days", "stale"),
    [
        (date(2026, 1, 1), date(2026, 4, 1), 90, False),  # exactly 90 days old
        (date(2026, 1, 1), date(2026, 4, 2), 90, True),
        (date(2026, 1, 1), date(2026, 1, 1), 0, False),
        (date(2026, 1, 1), date(2026, 1, 2), 0, True),
    ],
)
def test_price_staleness(as_of, today, max_age_days, stale):
    assert price_is_stale(as_of, today=today, max_age_days=max_age_days) is stale


def test_stale_prices_lists_the_oldest_first():
    rows = stale_prices([*catalog.GPUS, *catalog.HOSTED_MODELS], today=date(2025, 8, 1), max_age_days=90)
    names = [r["name"] for r in rows]
    assert "gpt-4o" in names and "NVIDIA T4" in names
    assert "NVIDIA H100 80GB" not in names  # quoted 2025-06-01, 61 days before
    assert [r["age_days"] for r in rows] == sorted((r["age_days"] for r in rows), reverse=True)


def test_catalog_entries_carry_an_honest_source_and_a_date():
    for g in catalog.GPUS:
        assert "verify" in g.source and g.as_of.isoformat() in g.source
        assert g.usd_per_gpu_hour > 0 and g.hbm_gb > 0 and g.hbm_bandwidth_gb_per_s > 0
        assert g.spot_usd_per_gpu_hour is None or g.spot_usd_per_gpu_hour < g.usd_per_gpu_hour
    for m in catalog.HOSTED_MODELS:
        assert "verify" in m.source and m.usd_per_mtok_output >= m.usd_per_mtok_input > 0
    assert catalog.gpu("h100 80gb").hbm_gb == 80
    assert catalog.hosted_model("gpt-4o-mini").usd_per_mtok_output == 0.60
