"""The cost page's chart: readable labels, a legend entry for every colour, the budget labelled."""

from apps.costs import charts

COST = {
    "cheapest": "autoscaled",
    "budget_usd": 4000,
    "options": [
        {"key": "always_on", "label": "Always-on, 3 replica(s) × 730 h", "usd_per_month": 1752.0, "meets_slo": True},
        {
            "key": "autoscaled",
            "label": "Autoscaled, min 1, scale-down after 600 s",
            "usd_per_month": 900.4,
            "meets_slo": True,
        },
        {
            "key": "business_hours",
            "label": "Business hours, 3 replica(s) × 14 h × 22 days",
            "usd_per_month": 422.40000000000003,
            "meets_slo": False,
        },
        {"key": "hosted:gpt-4o-mini", "label": "Hosted API gpt-4o-mini", "usd_per_month": 310.0, "meets_slo": None},
    ],
}


def test_each_colour_is_its_own_trace_so_the_legend_names_every_colour_green_included():
    fig = charts.options_chart(COST)
    names = [t["name"] for t in fig["data"]]
    assert names == ["cheapest that meets the SLOs", "meets the SLOs", "misses the SLOs", "SLOs not measured"]
    green = fig["data"][1]
    assert green["marker"]["color"] == "#1a7f37" and green["customdata"] == ["Always-on, 3 replica(s) × 730 h"]
    # Money as money: cents, never float noise.
    assert fig["data"][2]["x"] == [422.4]


def test_options_are_rows_labelled_short_in_the_cost_models_order_with_the_full_label_in_the_hover():
    fig = charts.options_chart(COST)
    rows = fig["layout"]["yaxis"]
    assert all(trace["orientation"] == "h" for trace in fig["data"])
    assert rows["categoryarray"] == ["Always-on", "Autoscaled", "Business hours", "Hosted API<br>gpt-4o-mini"]
    assert all(len(line) <= 18 for label in rows["categoryarray"] for line in label.split("<br>"))
    assert rows["categoryorder"] == "array" and rows["autorange"] == "reversed" and rows["automargin"] is True
    assert "%{customdata}" in fig["data"][0]["hovertemplate"]
    twins = [{**o, "label": f"Same, {n}"} for n, o in enumerate(COST["options"][:2])]
    assert charts.options_chart({**COST, "options": twins})["layout"]["yaxis"]["categoryarray"] == [
        "Same, 0",
        "Same, 1",
    ]
    # Taller with more options, so that each row keeps room for its label.
    assert charts.options_chart({**COST, "options": COST["options"][:2]})["layout"]["height"] < fig["layout"]["height"]


def test_the_budget_line_is_labelled_and_listed_in_the_legend_and_stays_in_the_plot_area():
    [budget] = charts.options_chart(COST)["layout"]["shapes"]
    assert budget["label"]["text"] == "budget $4,000 / month" and budget["showlegend"] is True
    assert budget["yref"] == "y domain" and budget["x0"] == budget["x1"] == 4000
    assert (
        "shapes" not in charts.options_chart({**COST, "budget_usd": None})["layout"]
        or not (charts.options_chart({**COST, "budget_usd": None})["layout"]["shapes"])
    )


def test_every_axis_of_the_cost_charts_is_titled_with_its_unit():
    cost = charts.options_chart(COST)["layout"]
    hourly = charts.hourly_requests([3, 5, 8])["layout"]
    assert cost["xaxis"]["title"]["text"] == "cost per month (USD)"
    assert hourly["xaxis"]["title"]["text"].endswith("(h)") and hourly["yaxis"]["title"]["text"].endswith("(count)")
    assert charts.hourly_requests([]) is None
