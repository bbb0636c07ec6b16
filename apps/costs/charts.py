"""The cost page's chart: each option's monthly cost, the budget line, the cheapest highlighted."""

from apps.probes.charts import _layout


def options_chart(cost: dict) -> dict | None:
    options = cost.get("options") or []
    if not options:
        return None
    colour = {True: "#1a7f37", False: "#cf222e", None: "#8c959f"}
    data = [{"x": [o["label"] for o in options], "y": [round(o["usd_per_month"], 2) for o in options], "type": "bar",
             "name": "$ / month", "marker": {"color": ["#0969da" if o["key"] == cost.get("cheapest")
                                                      else colour[o["meets_slo"]] for o in options]}}]  # fmt: skip
    layout = _layout("Monthly cost per option (blue: cheapest that meets the SLOs; red: misses them; grey: "
                     "not measured)", yaxis={"title": "$ / month", "rangemode": "tozero"}, height=360)  # fmt: skip
    if cost.get("budget_usd") is not None:
        layout["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": cost["budget_usd"],
                             "y1": cost["budget_usd"], "line": {"dash": "dash", "color": "#9a6700"}}]  # fmt: skip
    return {"data": data, "layout": layout}
