"""The run and plan figures: every axis titled with its unit, the autoscaling chart readable."""

import pytest

from apps.probes import charts
from apps.probes.autoscaling.policy import recommend_policy

T = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
TIMELINE = {
    "t": T,
    "bucket_s": 1,
    "ttft_p50_ms": [100] * 10,
    "ttft_p95_ms": [200] * 10,
    "e2e_p95_ms": [900] * 10,
    "offered_rps": [4] * 10,
    "completed_rps": [4] * 10,
}
STAGE = {"stage": "steady 4/s", "request_throughput": 4.0, "goodput": 3.9, "output_token_throughput": 250.0}
SUMMARY = {
    "stages": [STAGE],
    "overall": {"errors": {"timeout": 2}},
    "slo": {"ttft_p95_ms": 500},
    "sweep": {
        "steps": [{"offered_rate": r, "ttft_p95_ms": 100 * r, "e2e_p99_ms": 300 * r} for r in (1, 2, 4)],
        "operating_point": {"offered_rate": 2, "ttft_p95_ms": 200},
    },
}
SERVER = {
    "series": {"vllm:num_requests_waiting": [[0, 1], [1, 2]], "vllm:kv_cache_usage_perc": [[0, 0.2], [1, 0.5]]},
    "scrapes": 2,
    "interval_s": 1,
    "failures": [],
}
AUTOSCALING = {
    "slo_ttft_p95_ms": 500,
    "timeline": {
        "t": list(range(100)),
        "offered_rps": [3] * 100,
        "completed_rps": [3] * 100,
        "ttft_p95_ms": [200] * 100,
        "waiting": [0] * 100,
        "desired": [1] * 100,
        "available": [1] * 100,
        "kv_cache": [0.1] * 100,
    },
    # step up and decide a second apart (their labels used to overlap), ready well after
    "kpis": {"marks": {"step_up": 30, "decide": 31, "ready": 52, "recover": 53.5, "step_down": 90}},
}


def axes(fig):
    return {k: v for k, v in fig["layout"].items() if k.startswith(("xaxis", "yaxis"))}


FIGURES = {
    "latency": lambda: charts.latency_over_time(TIMELINE),
    "throughput": lambda: charts.throughput_per_stage(SUMMARY),
    "errors": lambda: charts.errors_breakdown(SUMMARY),
    "server": lambda: charts.server_metrics(SERVER),
    "sweep": lambda: charts.sweep_chart(SUMMARY),
    "autoscaling": lambda: charts.autoscaling_chart(AUTOSCALING),
}
CATEGORY_AXES = {("throughput", "xaxis"), ("errors", "xaxis")}


@pytest.mark.parametrize("name", FIGURES)
def test_every_axis_of_a_run_figure_has_a_title_and_every_value_axis_its_unit(name):
    fig = FIGURES[name]()
    assert {"xaxis", "yaxis"} <= set(axes(fig))
    for key, ax in axes(fig).items():
        text = ax["title"]["text"]
        assert text, (name, key)
        if (name, key) not in CATEGORY_AXES:
            assert text.endswith(")") and "(" in text, (name, key, text)  # "latency (ms)"


def test_the_autoscaling_chart_has_no_free_floating_axis_and_its_slo_line_stays_in_the_plot_area():
    layout = charts.autoscaling_chart(AUTOSCALING)["layout"]
    assert all(ax.get("anchor") != "free" and "position" not in ax for ax in axes({"layout": layout}).values())
    # The queue panel sits below the latency panel, on its own domain, not over it.
    assert layout["yaxis3"]["domain"][1] < layout["yaxis"]["domain"][0]
    [slo] = [s for s in layout["shapes"] if s.get("name", "").startswith("TTFT p95 SLO")]
    assert slo["xref"] == "x domain" and (slo["x0"], slo["x1"]) == (0, 1) and slo["y0"] == 500
    # Named in the legend, not written on the line, where the rate line near the right edge crossed it.
    assert slo["name"] == "TTFT p95 SLO 500 ms" and slo["showlegend"] is True and "label" not in slo


def test_mark_labels_closer_than_the_gap_take_different_rows_and_far_ones_share_the_first():
    assert charts.mark_rows([30, 31, 52, 53.5, 90], 100) == [0, 1, 0, 1, 0]
    assert charts.mark_rows([10, 50, 90], 100) == [0, 0, 0]
    layout = charts.autoscaling_chart(AUTOSCALING)["layout"]
    shifts = {a["text"]: a["yshift"] for a in layout["annotations"]}
    assert shifts["step up"] != shifts["decide"] and shifts["ready"] != shifts["recovered"]


def test_a_missing_slo_draws_no_line_instead_of_one_at_none():
    layout = charts.autoscaling_chart({**AUTOSCALING, "slo_ttft_p95_ms": None})["layout"]
    assert all(s.get("y0") is not None for s in layout["shapes"])


class Run:
    def __init__(self, pk, p95):
        self.pk = pk
        self.summary = {"overall": {"ttft_ms": {"p95": p95}, "e2e_ms": {"p99": 2 * p95}, "output_token_throughput": 9}}


def test_a_plan_name_with_markup_reaches_the_trend_chart_as_text():
    fig = charts.trend([Run(1, 100), Run(2, 120)], title="<b>x</b><a href=//evil>y</a>: trend over the last runs")
    assert fig["layout"]["title"]["text"].startswith("&lt;b&gt;x&lt;/b&gt;&lt;a href=//evil&gt;")
    assert fig["layout"]["xaxis"]["type"] == "category"  # "#1", "#2" are runs, not numbers


def test_a_signal_without_a_lead_reads_a_dash_in_the_reasoning_never_none():
    ranking = [
        {
            "signal": "vllm:kv_cache_usage_perc",
            "per_replica": False,
            "score": 0.1,
            "lead_s": None,
            "tightness": 0.2,
            "separation": None,
            "false_positive_rate": 0.0,
            "threshold": None,
        }
    ]
    [line] = [r for r in recommend_policy({"t_ready_s": 5}, ranking)["reasoning"] if r.startswith("vllm:")]
    assert "lead — s" in line and "threshold —" in line and "None" not in line


def test_a_run_that_measured_no_request_is_left_out_of_the_trend():
    failed = Run(2, 0)
    failed.summary["overall"].update(requests=0, output_token_throughput=0)
    fig = charts.trend([Run(1, 100), failed, Run(3, 120)])
    assert fig["data"][0]["x"] == ["#1", "#3"]
