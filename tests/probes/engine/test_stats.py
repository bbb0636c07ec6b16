"""Metric definitions (DESIGN.md "Probe semantics") on hand-built records with known timings."""

import math

import pytest

from apps.probes.engine import stats
from apps.probes.engine.records import (
    CONNECT,
    ERROR_CLASSES,
    HTTP_5XX,
    HTTP_429,
    MALFORMED,
    OK,
    TIMEOUT,
    TOKENS_COUNTED,
    TOKENS_USAGE,
    Records,
)
from apps.probes.engine.stats import SLO, Window, distribution, percentile, slo_checks, summarize, summarize_window

NAN = math.nan
WINDOW = Window(0, "main", 0.0, 10.0)
NO_SLO = SLO()


def add(
    rec: Records,
    *,
    intended: float = 0.0,
    sent: float | None = None,
    first: float = NAN,
    last: float = NAN,
    n_out: int = 0,
    error: int = OK,
    source: int = TOKENS_USAGE,
    stage: int = 0,
    n_in: int = 10,
) -> None:
    sent = intended if sent is None else sent
    events = n_out if error == OK else 0
    rec.append(intended, sent, first, last, n_in, n_out, events, error, source, stage, len(rec))


def window_summary(rec: Records, window: Window = WINDOW, slo: SLO = NO_SLO) -> dict:
    return summarize_window(rec, window, slo, None)


# --- per-request latencies -----------------------------------------------------------------------


def test_ttft_e2e_tpot_ntpot_and_schedule_lag_follow_the_definitions():
    rec = Records()
    add(rec, intended=0.875, sent=1.0, first=1.25, last=2.25, n_out=11)
    s = window_summary(rec)
    assert s["ttft_ms"]["p50"] == pytest.approx(250.0)  # first - sent
    assert s["e2e_ms"]["p50"] == pytest.approx(1250.0)  # last - sent
    assert s["tpot_ms"]["p50"] == pytest.approx(100.0)  # (1250 - 250) / (11 - 1)
    assert s["ntpot_ms"]["p50"] == pytest.approx(1250.0 / 11, abs=1e-3)  # E2E / N_out
    assert s["schedule_lag_ms"]["p50"] == pytest.approx(125.0)  # sent - intended


def test_a_single_value_distribution_has_that_value_at_every_percentile():
    rec = Records()
    add(rec, intended=1.0, first=1.5, last=3.0, n_out=4)
    ttft = window_summary(rec)["ttft_ms"]
    assert ttft == {"n": 1, "p50": 500.0, "p90": 500.0, "p95": 500.0, "p99": 500.0, "mean": 500.0, "max": 500.0}


def test_latency_distributions_over_several_requests_use_linear_interpolation():
    rec = Records()
    for i, ttft in enumerate((0.1, 0.2, 0.3, 0.4)):
        add(rec, intended=float(i), first=i + ttft, last=i + 1.0, n_out=5)
    ttft = window_summary(rec)["ttft_ms"]
    assert ttft["n"] == 4
    assert ttft["p50"] == pytest.approx(250.0)  # between 200 and 300
    assert ttft["p90"] == pytest.approx(370.0)  # pos 2.7: 300 + 0.7 * 100
    assert ttft["mean"] == pytest.approx(250.0)
    assert ttft["max"] == pytest.approx(400.0)


def test_a_request_with_a_single_output_token_has_no_tpot_but_has_ntpot():
    rec = Records()
    add(rec, intended=0.0, first=0.5, last=0.5, n_out=1)
    s = window_summary(rec)
    assert s["tpot_ms"] == {"n": 0}
    assert s["ntpot_ms"]["p50"] == pytest.approx(500.0)
    assert s["ttft_ms"]["n"] == 1
    assert s["e2e_ms"]["n"] == 1


def test_a_successful_request_without_output_tokens_has_neither_tpot_nor_ntpot():
    rec = Records()
    add(rec, intended=0.0, first=NAN, last=NAN, n_out=0)
    s = window_summary(rec)
    assert s["tpot_ms"] == {"n": 0}
    assert s["ntpot_ms"] == {"n": 0}
    assert s["ttft_ms"] == {"n": 0}  # NaN latencies are dropped, not reported as numbers
    assert s["requests"] == 1


def test_tpot_and_ntpot_differ_as_defined_when_ttft_is_long():
    rec = Records()
    add(rec, intended=0.0, first=2.0, last=3.0, n_out=5)
    s = window_summary(rec)
    assert s["tpot_ms"]["p50"] == pytest.approx(250.0)  # (3000 - 2000) / 4
    assert s["ntpot_ms"]["p50"] == pytest.approx(600.0)  # 3000 / 5


# --- errors --------------------------------------------------------------------------------------


def test_errors_are_excluded_from_latencies_but_counted_by_class_and_in_the_error_rate():
    rec = Records()
    add(rec, intended=0.0, first=0.25, last=1.0, n_out=10)
    add(rec, intended=1.0, error=TIMEOUT)
    add(rec, intended=2.0, error=HTTP_429)
    add(rec, intended=3.0, error=HTTP_429)
    add(rec, intended=4.0, error=MALFORMED, first=4.25, last=4.5, n_out=3)
    s = window_summary(rec)
    assert s["requests"] == 5
    assert s["ttft_ms"]["n"] == 1
    assert s["e2e_ms"]["n"] == 1
    assert s["tpot_ms"]["n"] == 1
    assert s["errors"] == {"timeout": 1, "429": 2, "malformed": 1}
    assert s["error_rate"] == pytest.approx(4 / 5)
    assert s["completed_in_window"] == 1  # a malformed stream is not a completed request


def test_error_classes_are_reported_by_their_design_names():
    rec = Records()
    for cls in range(1, len(ERROR_CLASSES)):
        add(rec, intended=float(cls), error=cls)
    s = window_summary(rec)
    assert s["errors"] == {name: 1 for name in ERROR_CLASSES[1:]}
    assert "ok" not in s["errors"]
    assert s["error_rate"] == 1.0
    assert s["ttft_ms"] == {"n": 0}


def test_errors_still_contribute_their_schedule_lag():
    rec = Records()
    add(rec, intended=1.0, sent=1.25, error=CONNECT)
    assert window_summary(rec)["schedule_lag_ms"]["p50"] == pytest.approx(250.0)


def test_an_empty_window_has_zero_error_rate_and_no_attainment():
    s = window_summary(Records())
    assert s["requests"] == 0
    assert s["error_rate"] == 0.0
    assert s["slo_attainment"] is None
    assert s["ttft_ms"] == {"n": 0}


# --- throughput, warm-up, goodput ---------------------------------------------------------------


def test_throughput_counts_only_requests_whose_last_token_falls_in_the_window():
    rec = Records()
    for last, n_out in ((2.0, 10), (5.0, 20), (9.5, 30), (10.0, 40), (12.0, 50)):
        add(rec, intended=1.0, first=1.5, last=last, n_out=n_out)
    add(rec, intended=3.0, error=HTTP_5XX)
    s = window_summary(rec)
    assert s["completed_in_window"] == 3  # the window is [0, 10): 10.0 and 12.0 are outside
    assert s["request_throughput"] == pytest.approx(3 / 10)
    assert s["output_token_throughput"] == pytest.approx((10 + 20 + 30) / 10)
    assert s["window_s"] == 10.0


def test_throughput_is_divided_by_the_window_length():
    rec = Records()
    for i in range(8):
        add(rec, intended=float(i), first=i + 0.5, last=i + 1.0, n_out=100)
    s = window_summary(rec, Window(0, "w", 0.0, 4.0))
    assert s["completed_in_window"] == 3  # lasts at 1, 2, 3 (4.0 is outside)
    assert s["request_throughput"] == pytest.approx(0.75)
    assert s["output_token_throughput"] == pytest.approx(75.0)


def test_a_window_starting_later_excludes_warm_up_requests():
    rec = Records()
    add(rec, intended=1.0, first=1.5, last=3.0, n_out=10)  # warm-up, finished in warm-up
    add(rec, intended=2.0, error=TIMEOUT)  # warm-up error
    add(rec, intended=6.0, first=6.25, last=8.0, n_out=20)  # measured
    s = window_summary(rec, Window(0, "main", 5.0, 15.0))
    assert s["requests"] == 1
    assert s["errors"] == {}
    assert s["error_rate"] == 0.0
    assert s["ttft_ms"]["n"] == 1
    assert s["ttft_ms"]["p50"] == pytest.approx(250.0)
    assert s["completed_in_window"] == 1
    assert s["output_token_throughput"] == pytest.approx(20 / 10)


def test_a_warm_up_request_completing_inside_the_window_counts_for_throughput_only():
    rec = Records()
    add(rec, intended=4.0, first=4.5, last=6.0, n_out=10)  # sent in warm-up, completes in the window
    s = window_summary(rec, Window(0, "main", 5.0, 15.0))
    assert s["requests"] == 0
    assert s["ttft_ms"] == {"n": 0}
    assert s["completed_in_window"] == 1


def test_a_window_only_sees_its_own_stage():
    rec = Records()
    add(rec, intended=1.0, first=1.5, last=2.0, n_out=5, stage=0)
    add(rec, intended=1.0, first=1.25, last=2.0, n_out=5, stage=1)
    s0 = summarize_window(rec, Window(0, "a", 0.0, 10.0), SLO(), None)
    s1 = summarize_window(rec, Window(1, "b", 0.0, 10.0), SLO(), None)
    overall = summarize_window(rec, Window(-1, "all", 0.0, 10.0), SLO(), None)
    assert (s0["requests"], s1["requests"], overall["requests"]) == (1, 1, 2)
    assert s0["ttft_ms"]["p50"] == pytest.approx(500.0)
    assert s1["ttft_ms"]["p50"] == pytest.approx(250.0)


def goodput_records() -> Records:
    rec = Records()
    add(rec, intended=0.0, first=0.25, last=1.25, n_out=21)  # ttft 250, tpot 50, e2e 1250: meets all
    add(rec, intended=1.0, first=1.5, last=2.0, n_out=5)  # ttft 500: misses ttft
    add(rec, intended=2.0, first=2.25, last=4.0, n_out=11)  # tpot 175: misses tpot
    add(rec, intended=3.0, first=3.25, last=6.0, n_out=1001)  # e2e 3000: misses e2e
    add(rec, intended=4.0, first=4.25, last=4.25, n_out=1)  # no tpot: meets all
    add(rec, intended=5.0, error=TIMEOUT)  # an error never meets an SLO
    return rec


GOODPUT_SLO = SLO(ttft_p95_ms=300, tpot_p95_ms=50, e2e_p99_ms=2000)


def test_goodput_counts_only_completed_requests_meeting_every_per_request_slo():
    s = window_summary(goodput_records(), slo=GOODPUT_SLO)
    assert s["completed_in_window"] == 5
    assert s["request_throughput"] == pytest.approx(0.5)
    assert s["goodput"] == pytest.approx(2 / 10)


def test_slo_attainment_counts_errors_as_misses():
    s = window_summary(goodput_records(), slo=GOODPUT_SLO)
    assert s["requests"] == 6
    assert s["slo_attainment"] == pytest.approx(2 / 6, abs=1e-5)


def test_without_slos_attainment_is_the_share_of_successful_requests():
    rec = Records()
    for i in range(3):
        add(rec, intended=float(i), first=i + 0.5, last=i + 1.0, n_out=3)
    add(rec, intended=4.0, error=HTTP_5XX)
    s = window_summary(rec)
    assert s["slo_attainment"] == pytest.approx(0.75)
    assert s["goodput"] == pytest.approx(s["request_throughput"])


def test_a_request_slo_limit_is_inclusive():
    assert SLO(ttft_p95_ms=250, tpot_p95_ms=50, e2e_p99_ms=1250).request_ok(250.0, 50.0, 1250.0)
    assert not SLO(ttft_p95_ms=250).request_ok(250.001, 1.0, 1.0)
    assert not SLO(e2e_p99_ms=1000).request_ok(1.0, 1.0, 1000.5)
    assert not SLO(tpot_p95_ms=10).request_ok(1.0, 11.0, 1.0)


def test_a_request_without_a_ttft_misses_a_ttft_slo_but_a_missing_tpot_is_not_a_miss():
    assert not SLO(ttft_p95_ms=500).request_ok(math.nan, 1.0, 1.0)
    assert SLO(tpot_p95_ms=50).request_ok(100.0, math.nan, 100.0)


# --- percentiles ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1, 2, 3, 4], 50, 2.5),  # pos 1.5
        ([1, 2, 3, 4], 90, 3.7),  # pos 2.7
        ([1, 2, 3, 4], 25, 1.75),  # pos 0.75
        ([1, 2, 3, 4], 0, 1.0),
        ([1, 2, 3, 4], 100, 4.0),
        ([10], 99, 10.0),
        ([1, 3, 7, 15, 31], 95, 27.8),  # pos 3.8: 15 + 0.8 * 16
        ([1, 3, 7, 15, 31], 50, 7.0),  # pos 2 exactly
        ([0, 10], 99, 9.9),  # pos 0.99
        ([5, 5, 5, 100], 99, 97.15),  # pos 2.97: 5 + 0.97 * 95
        (list(range(11)), 90, 9.0),  # pos 9
        (list(range(101)), 99.9, 99.9),  # pos 99.9
    ],
)
def test_percentile_matches_linear_interpolation_between_closest_ranks(values, q, expected):
    assert percentile([float(v) for v in values], q) == pytest.approx(expected)


def test_percentile_of_nothing_is_nan():
    assert math.isnan(percentile([], 50))


def test_distribution_ignores_nan_values():
    assert distribution([1.0, NAN, 3.0]) == {
        "n": 2,
        "p50": 2.0,
        "p90": 2.8,
        "p95": 2.9,
        "p99": 2.98,
        "mean": 2.0,
        "max": 3.0,
    }


def test_distribution_sorts_its_input():
    assert distribution([4.0, 1.0, 3.0, 2.0]) == distribution([1.0, 2.0, 3.0, 4.0])


def test_p99_9_appears_only_from_a_thousand_values():
    below = distribution([float(v) for v in range(999)])
    at = distribution([float(v) for v in range(1000)])
    assert "p99.9" not in below
    assert below["n"] == 999
    assert at["n"] == 1000
    assert at["p99.9"] == pytest.approx(998.001)  # pos 999 * 0.999
    assert at["p99"] == pytest.approx(989.01)  # pos 999 * 0.99


def test_p99_9_of_latencies_appears_in_a_summary_of_a_thousand_requests():
    small, large = Records(), Records()
    for i in range(1000):
        add(large, intended=i / 200, first=i / 200 + 0.25, last=i / 200 + 0.5, n_out=2)
        if i < 999:
            add(small, intended=i / 200, first=i / 200 + 0.25, last=i / 200 + 0.5, n_out=2)
    assert "p99.9" in window_summary(large)["ttft_ms"]
    assert "p99.9" not in window_summary(small)["ttft_ms"]


# --- token counts, saturation, run-level checks ---------------------------------------------------


def test_token_counts_estimated_counts_successful_requests_with_counted_tokens():
    rec = Records()
    add(rec, intended=0.0, first=0.5, last=1.0, n_out=5, source=TOKENS_COUNTED)
    add(rec, intended=1.0, first=1.5, last=2.0, n_out=5, source=TOKENS_COUNTED)
    add(rec, intended=2.0, first=2.5, last=3.0, n_out=5, source=TOKENS_USAGE)
    add(rec, intended=3.0, error=TIMEOUT, source=TOKENS_COUNTED)
    assert window_summary(rec)["token_counts_estimated"] == 2
    assert summarize(rec, [WINDOW], SLO())["token_counts_estimated"] is True


def test_a_run_whose_tokens_all_come_from_usage_is_not_flagged_as_estimated():
    rec = Records()
    add(rec, intended=0.0, first=0.5, last=1.0, n_out=5, source=TOKENS_USAGE)
    assert summarize(rec, [WINDOW], SLO())["token_counts_estimated"] is False


def records_with_lag(lag_s: float, n: int = 100) -> Records:
    rec = Records()
    for i in range(n):
        intended = i / 16
        add(rec, intended=intended, sent=intended + lag_s, first=intended + lag_s + 0.125, last=intended + 1, n_out=4)
    return rec


def test_a_high_p99_schedule_lag_marks_the_client_saturated():
    result = summarize(records_with_lag(0.010), [WINDOW], SLO())
    assert result["overall"]["schedule_lag_ms"]["p99"] == pytest.approx(10.0)
    assert result["client_saturated"] is True
    assert result["latencies_trustworthy"] is False


def test_a_low_schedule_lag_leaves_the_client_unsaturated():
    result = summarize(records_with_lag(0.001), [WINDOW], SLO())
    assert result["client_saturated"] is False
    assert result["latencies_trustworthy"] is True
    assert result["saturation_threshold_ms"] == 5.0


def test_a_high_event_loop_lag_marks_the_client_saturated_even_with_no_schedule_lag():
    result = summarize(records_with_lag(0.0), [WINDOW], SLO(), loop_lag_ms=[1.0] * 95 + [20.0] * 5)
    assert result["event_loop_lag_ms"]["n"] == 100
    assert result["client_saturated"] is True


def test_saturation_needs_lag_strictly_above_the_threshold():
    lag_s = 1 / 128  # 7.8125 ms, exact in binary
    assert (
        summarize(records_with_lag(lag_s), [WINDOW], SLO(), saturation_threshold_ms=7.8125)["client_saturated"] is False
    )
    assert summarize(records_with_lag(lag_s), [WINDOW], SLO(), saturation_threshold_ms=7.8)["client_saturated"] is True
    assert summarize(records_with_lag(0.010), [WINDOW], SLO(), saturation_threshold_ms=50)["client_saturated"] is False


def test_slo_checks_mark_a_missing_measurement_as_a_miss():
    rec = Records()
    for i in range(5):
        add(rec, intended=float(i), error=TIMEOUT)
    slo = SLO(ttft_p95_ms=500, tpot_p95_ms=50, e2e_p99_ms=4000)
    result = summarize(rec, [WINDOW], slo)
    assert [(c["slo"], c["actual"], c["ok"]) for c in result["slo_checks"]] == [
        ("ttft_p95_ms", None, False),
        ("tpot_p95_ms", None, False),
        ("e2e_p99_ms", None, False),
    ]
    assert result["slo_met"] is False


def test_slo_checks_compare_each_figure_with_its_target():
    summary = {
        "ttft_ms": {"n": 10, "p95": 400.0},
        "tpot_ms": {"n": 10, "p95": 60.0},
        "e2e_ms": {"n": 10, "p99": 4000.0},
        "error_rate": 0.02,
        "output_token_throughput": 100.0,
    }
    slo = SLO(ttft_p95_ms=500, tpot_p95_ms=50, e2e_p99_ms=4000, error_rate=0.01, min_output_tps=100)
    checks = {c["slo"]: (c["actual"], c["target"], c["ok"]) for c in slo_checks(summary, slo)}
    assert checks == {
        "ttft_p95_ms": (400.0, 500, True),
        "tpot_p95_ms": (60.0, 50, False),
        "e2e_p99_ms": (4000.0, 4000, True),
        "error_rate": (0.02, 0.01, False),
        "min_output_tps": (100.0, 100, True),
    }


def test_a_run_without_slos_has_no_verdict():
    rec = Records()
    add(rec, intended=0.0, first=0.5, last=1.0, n_out=5)
    result = summarize(rec, [WINDOW], SLO())
    assert result["slo_checks"] == []
    assert result["slo_met"] is None
    assert result["slo"] == {}


def test_a_run_meeting_every_slo_is_met():
    rec = Records()
    for i in range(20):
        add(rec, intended=i / 2, first=i / 2 + 0.25, last=i / 2 + 1.25, n_out=101)  # 20 x 101 tokens in 10 s
    slo = SLO(ttft_p95_ms=300, tpot_p95_ms=20, e2e_p99_ms=2000, error_rate=0.0, min_output_tps=150)
    result = summarize(rec, [WINDOW], slo)
    assert all(c["ok"] for c in result["slo_checks"]), result["slo_checks"]
    assert result["slo_met"] is True


def test_overall_throughput_over_several_stages_is_divided_by_the_stage_windows_not_the_gaps():
    rec = Records()
    for i in range(10):
        add(rec, intended=float(i), first=i + 0.25, last=i + 0.5, n_out=10, stage=0)
        add(rec, intended=20.0 + i, first=20 + i + 0.25, last=20 + i + 0.5, n_out=30, stage=1)
    windows = [Window(0, "a", 0.0, 10.0), Window(1, "b", 20.0, 30.0)]
    result = summarize(rec, windows, SLO())
    assert [s["request_throughput"] for s in result["stages"]] == [1.0, 1.0]
    assert [s["output_token_throughput"] for s in result["stages"]] == [10.0, 30.0]
    assert result["overall"]["window_s"] == 20.0
    assert result["overall"]["request_throughput"] == pytest.approx(20 / 20)
    assert result["overall"]["output_token_throughput"] == pytest.approx(400 / 20)
    assert result["overall"]["requests"] == 20


# --- SLO.parse -----------------------------------------------------------------------------------


def test_slo_parse_accepts_the_documented_syntax():
    slo = SLO.parse("ttft_p95=500ms,tpot_p95=0.05s,e2e_p99=4s,error_rate=1%,min_output_tps=100")
    assert slo.ttft_p95_ms == pytest.approx(500.0)
    assert slo.tpot_p95_ms == pytest.approx(50.0)
    assert slo.e2e_p99_ms == pytest.approx(4000.0)
    assert slo.error_rate == pytest.approx(0.01)
    assert slo.min_output_tps == pytest.approx(100.0)
    assert not slo.empty


def test_slo_parse_tolerates_spaces_and_accepts_a_plain_fraction():
    slo = SLO.parse(" ttft_p95 = 250 ms , error_rate=0.02 ,")
    assert slo == SLO(ttft_p95_ms=250.0, error_rate=0.02)


def test_slo_parse_of_an_empty_string_is_an_empty_slo():
    assert SLO.parse("").empty
    assert SLO.parse("").to_dict() == {}


def test_slo_parse_rejects_a_duration_without_a_unit():
    with pytest.raises(ValueError, match=r"ttft_p95: '500' needs a unit, ms or s"):
        SLO.parse("ttft_p95=500")


def test_slo_parse_rejects_an_unknown_name_and_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown SLO 'itl_p95'; known: ttft_p95, tpot_p95, e2e_p99"):
        SLO.parse("itl_p95=10ms")


def test_slo_parse_rejects_an_error_rate_above_one_without_a_percent_sign():
    with pytest.raises(ValueError, match=r"error_rate is a fraction \(0.01\) or a percentage \(1%\)"):
        SLO.parse("error_rate=5")


def test_slo_parse_rejects_a_part_without_a_value():
    with pytest.raises(ValueError, match=r"SLO 'ttft_p95': expected name=value"):
        SLO.parse("ttft_p95")
    with pytest.raises(ValueError, match="expected name=value"):
        SLO.parse("ttft_p95=")


def test_slo_to_dict_keeps_only_the_targets_that_are_set():
    assert SLO(ttft_p95_ms=500.0).to_dict() == {"ttft_p95_ms": 500.0}


def test_stats_module_exposes_the_design_percentiles():
    assert stats.PERCENTILES == (50, 90, 95, 99)


def test_an_empty_window_misses_the_error_rate_slo_instead_of_passing_it():
    summary = {"requests": 0, "error_rate": 0.0, "ttft_ms": {"n": 0}, "tpot_ms": {"n": 0}, "e2e_ms": {"n": 0}}
    checks = slo_checks(summary, SLO(error_rate=0.01))
    assert checks == [{"slo": "error_rate", "target": 0.01, "actual": None, "ok": False}]


@pytest.mark.parametrize(
    "text, words",
    [
        ("error_rate=150%", "at most 100%"),
        ("error_rate=-1%", ">= 0"),
        ("min_output_tps=fast", "not a number"),
        ("min_output_tps=nan", "finite"),
    ],
)
def test_slo_parse_refuses_impossible_values_with_context(text, words):
    with pytest.raises(ValueError, match=words):
        SLO.parse(text)
