"""Load profiles: stage validation, precomputed arrival schedules, and sharding across processes."""

import math
import statistics

import pytest

from apps.probes.engine.profiles import (
    CONCURRENT,
    CONSTANT,
    POISSON,
    SYNCHRONOUS,
    Stage,
    arrival_times,
    shard,
    shard_concurrency,
)

# --- validation ----------------------------------------------------------------------------------


def test_an_unknown_kind_is_rejected_with_the_known_kinds():
    with pytest.raises(ValueError, match=r"unknown profile 'burst'; expected one of synchronous, concurrent"):
        Stage("burst", 10)


@pytest.mark.parametrize("kind", [CONSTANT, POISSON])
@pytest.mark.parametrize("rate", [None, 0, -5])
def test_an_open_loop_stage_without_a_positive_rate_is_rejected(kind, rate):
    with pytest.raises(ValueError, match=f"a {kind} stage needs a positive rate"):
        Stage(kind, 10, rate=rate)


@pytest.mark.parametrize("duration", [0, -1, None])
def test_a_non_positive_duration_is_rejected(duration):
    with pytest.raises(ValueError, match="a stage needs a positive duration"):
        Stage(SYNCHRONOUS, duration)


@pytest.mark.parametrize("concurrency", [None, 0])
def test_a_concurrent_stage_without_concurrency_is_rejected(concurrency):
    with pytest.raises(ValueError, match="a concurrent stage needs concurrency >= 1"):
        Stage(CONCURRENT, 10, concurrency=concurrency)


def test_a_negative_concurrency_cap_on_an_open_loop_stage_is_rejected():
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        Stage(CONSTANT, 10, rate=5, concurrency=0)


def test_a_negative_ramp_end_rate_is_rejected():
    with pytest.raises(ValueError, match="rate_end must not be negative"):
        Stage(CONSTANT, 10, rate=5, rate_end=-1)


def test_valid_stages_have_readable_labels_and_worker_counts():
    assert Stage(SYNCHRONOUS, 5).label == "synchronous"
    assert Stage(SYNCHRONOUS, 5).workers == 1
    assert Stage(CONCURRENT, 5, concurrency=8).label == "concurrent 8"
    assert Stage(CONCURRENT, 5, concurrency=8).workers == 8
    assert Stage(POISSON, 5, rate=2.5).label == "poisson 2.5/s"
    assert Stage(CONSTANT, 5, rate=10, rate_end=30).label == "constant 10→30/s"
    assert Stage(CONSTANT, 5, rate=10, name="spike").label == "spike"


def test_stage_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match=r"unknown stage field\(s\): bogus, rps"):
        Stage.from_dict({"kind": CONSTANT, "duration": 10, "rate": 5, "rps": 5, "bogus": 1})


def test_stage_from_dict_round_trips_to_dict():
    stage = Stage(POISSON, 30, rate=5, rate_end=10, concurrency=64, name="ramp")
    assert Stage.from_dict(stage.to_dict()) == stage
    assert Stage(SYNCHRONOUS, 5).to_dict() == {"kind": SYNCHRONOUS, "duration": 5}


def test_stage_from_dict_still_validates():
    with pytest.raises(ValueError, match="positive rate"):
        Stage.from_dict({"kind": POISSON, "duration": 10})


def test_closed_loop_stages_have_no_arrival_schedule():
    with pytest.raises(ValueError, match="only open-loop stages"):
        arrival_times(Stage(CONCURRENT, 10, concurrency=2), seed=0)


# --- constant rate -------------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "duration"), [(4, 25), (0.5, 10), (8, 1), (1, 3)])
def test_a_constant_rate_gives_rate_times_duration_evenly_spaced_arrivals(rate, duration):
    times = arrival_times(Stage(CONSTANT, duration, rate=rate), seed=0)
    assert len(times) == rate * duration
    assert times[0] == 0.0
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(gap == pytest.approx(1 / rate) for gap in gaps)
    assert times[-1] < duration


@pytest.mark.parametrize(("rate", "duration"), [(10, 1), (3, 7), (200, 100)])
def test_a_constant_rate_that_is_not_a_power_of_two_also_gives_exactly_rate_times_duration_arrivals(rate, duration):
    times = arrival_times(Stage(CONSTANT, duration, rate=rate), seed=0)
    assert len(times) == rate * duration


def test_arrival_times_are_offset_by_start():
    base = arrival_times(Stage(CONSTANT, 2, rate=4), seed=0)
    shifted = arrival_times(Stage(CONSTANT, 2, rate=4), seed=0, start=100.0)
    assert shifted == [100.0 + t for t in base]


def test_a_constant_schedule_does_not_depend_on_the_seed():
    stage = Stage(CONSTANT, 10, rate=4)
    assert arrival_times(stage, seed=1) == arrival_times(stage, seed=2)


# --- Poisson -------------------------------------------------------------------------------------

POISSON_STAGE = Stage(POISSON, 100, rate=200)


@pytest.fixture(scope="module")
def poisson_times():
    return arrival_times(POISSON_STAGE, seed=42)


def test_a_seeded_poisson_schedule_is_reproducible(poisson_times):
    assert arrival_times(POISSON_STAGE, seed=42) == poisson_times


def test_a_different_seed_gives_a_different_poisson_schedule(poisson_times):
    assert arrival_times(POISSON_STAGE, seed=43) != poisson_times


def test_poisson_arrivals_are_increasing_and_inside_the_stage(poisson_times):
    assert all(a < b for a, b in zip(poisson_times, poisson_times[1:], strict=False))
    assert 0.0 < poisson_times[0]
    assert poisson_times[-1] < 100.0


def test_the_poisson_count_is_within_four_sigma_of_rate_times_duration(poisson_times):
    expected = 200 * 100
    assert abs(len(poisson_times) - expected) <= 4 * math.sqrt(expected)


def test_the_poisson_mean_inter_arrival_is_within_five_percent_of_one_over_rate(poisson_times):
    gaps = [b - a for a, b in zip(poisson_times, poisson_times[1:], strict=False)]
    assert statistics.fmean(gaps) == pytest.approx(1 / 200, rel=0.05)


def test_poisson_inter_arrivals_have_a_coefficient_of_variation_near_one(poisson_times):
    gaps = [b - a for a, b in zip(poisson_times, poisson_times[1:], strict=False)]
    cv = statistics.pstdev(gaps) / statistics.fmean(gaps)
    assert 0.9 <= cv <= 1.1


@pytest.mark.parametrize("seed", range(5))
def test_the_poisson_count_is_right_for_several_seeds(seed):
    n = len(arrival_times(Stage(POISSON, 50, rate=40), seed=seed))
    assert abs(n - 2000) <= 4 * math.sqrt(2000)


# --- ramps ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [CONSTANT, POISSON])
def test_a_ramp_from_10_to_30_over_100_seconds_has_about_2000_arrivals_growing_over_time(kind):
    times = arrival_times(Stage(kind, 100, rate=10, rate_end=30), seed=3)
    assert abs(len(times) - 2000) <= 4 * math.sqrt(2000)  # ∫ rate dt = (10 + 30) / 2 * 100
    first_half = sum(1 for t in times if t < 50)
    second_half = len(times) - first_half
    assert second_half > first_half
    assert first_half == pytest.approx(750, abs=4 * math.sqrt(750))  # 10*50 + 20*50²/200
    assert second_half == pytest.approx(1250, abs=4 * math.sqrt(1250))


def test_a_constant_ramp_integrates_the_rate_closely():
    times = arrival_times(Stage(CONSTANT, 100, rate=10, rate_end=30), seed=0)
    assert len(times) == pytest.approx(2000, abs=2)


def test_a_ramp_down_to_zero_ends_without_hanging():
    times = arrival_times(Stage(CONSTANT, 10, rate=10, rate_end=0), seed=0)
    assert len(times) == pytest.approx(50, abs=3)
    assert times[-1] < 10


# --- sharding ------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_shards_are_disjoint_and_their_union_is_the_whole(count):
    items = arrival_times(Stage(POISSON, 10, rate=20), seed=9)
    parts = [shard(items, i, count) for i in range(count)]
    seen = [t for part in parts for t in part]
    assert len(seen) == len(items)
    assert sorted(seen) == items
    assert len(set(seen)) == len(set(items))
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1


def test_each_shard_spans_the_whole_stage():
    items = arrival_times(Stage(CONSTANT, 10, rate=4), seed=0)
    for i in range(4):
        part = shard(items, i, 4)
        assert part[0] < 1.0
        assert part[-1] >= 9.0


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_shard_concurrency_sums_to_the_total(count):
    for concurrency in range(0, 40):
        parts = [shard_concurrency(concurrency, i, count) for i in range(count)]
        assert sum(parts) == concurrency
        assert max(parts) - min(parts) <= 1


@pytest.mark.parametrize("field", ["rate", "duration"])
@pytest.mark.parametrize("bad", [float("inf"), float("nan")], ids=["inf", "nan"])
def test_a_stage_with_an_infinite_or_nan_number_is_refused(field, bad):
    values = {"kind": "constant", "duration": 10, "rate": 5}
    with pytest.raises(ValueError, match="finite"):
        Stage(**{**values, field: bad})
