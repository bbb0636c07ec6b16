"""A report's figures: plan names escaped, the budget a labelled line, every axis titled."""

from apps.reports import charts

EVIL = "<b>x</b><a href=//evil>y</a>"


def test_a_plan_name_with_markup_reaches_the_attainment_chart_as_text():
    probes = [{"plan": EVIL, "headline": {"slo_attainment": 0.98}, "slo_met": True}]
    fig = charts.slo_attainment(probes)
    assert fig["data"][0]["x"] == ["&lt;b&gt;x&lt;/b&gt;&lt;a href=//evil&gt;y&lt;/a&gt;"]
    assert fig["layout"]["yaxis"]["title"]["text"] == "requests meeting the SLO (%)"


def test_cost_against_budget_draws_the_budget_as_a_labelled_line_and_rounds_to_cents():
    fig = charts.cost_vs_budget({"projected_monthly_usd": 422.40000000000003, "budget_usd": 400})
    assert fig["data"][0]["y"] == [422.4] and fig["data"][0]["name"] == "over the budget"
    [budget] = fig["layout"]["shapes"]
    assert budget["label"]["text"] == "budget $400 / month" and budget["xref"] == "x domain"
    assert fig["layout"]["yaxis"]["title"]["text"] == "cost per month (USD)"


class Report:
    def __init__(self, number, outcome, score):
        self.number, self.outcome = number, outcome
        self.snapshot = {"categories": [{"category": "security", "score": {"score": score}}]}


def test_the_decision_trend_titles_both_of_its_axes_and_the_report_axis_is_categorical():
    fig = charts.decision_trend([Report(1, "NO-GO", 40), Report(2, "GO", 100)])
    layout = fig["layout"]
    assert layout["yaxis"]["title"]["text"] == "category score (%)" and layout["yaxis2"]["title"]["text"] == "decision"
    assert layout["xaxis"]["type"] == "category" and layout["xaxis"]["title"]["text"] == "report"


def test_a_run_that_is_not_evidence_is_drawn_grey_with_its_own_legend_entry_not_as_a_miss():
    probes = [
        {"plan": "baseline", "headline": {"slo_attainment": 0.99}, "slo_met": True, "verdict": {"outcome": "met"}},
        {
            "plan": "cancelled",
            "headline": {"slo_attainment": 1.0},
            "slo_met": None,
            "verdict": {"outcome": "not_evidence"},
        },
        {"plan": "slow", "headline": {"slo_attainment": 0.4}, "slo_met": False, "verdict": {"outcome": "missed"}},
    ]
    fig = charts.slo_attainment(probes)
    by_name = {t["name"]: t for t in fig["data"]}
    assert by_name["not evidence (re-run)"]["x"] == ["cancelled"]
    assert by_name["not evidence (re-run)"]["marker"]["color"] == "#8c959f"
    assert by_name["SLO missed"]["x"] == ["slow"] and by_name["SLO met"]["x"] == ["baseline"]
    assert all(t["showlegend"] for t in fig["data"])
    assert fig["layout"]["xaxis"]["categoryarray"] == ["baseline", "cancelled", "slow"]
