"""Plotly figures (plain dicts) of a report and of the dashboard trend."""

from __future__ import annotations

from apps.core.charts import axis, figure, hline, layout

OUTCOME_LEVEL = {"NO-GO": 0, "CONDITIONAL": 1, "GO": 2}


# How a plan's bar reads, by its latest run's verdict: only a judged run is green or red; a run
# that proves nothing (cancelled, client-saturated...) is grey, not a miss.
ATTAINMENT_KINDS = (
    ("met", "SLO met", "#1a7f37"),
    ("missed", "SLO missed", "#cf222e"),
    ("not_evidence", "not evidence (re-run)", "#8c959f"),
    ("no_slo", "no SLO set", "#57606a"),
)


def _attainment_kind(probe: dict) -> str:
    verdict = probe.get("verdict") or {}
    # Reports stored before runs had a verdict carry only slo_met and the saturation flag.
    if verdict.get("outcome") == "not_evidence" or (not verdict and probe.get("client_saturated")):
        return "not_evidence"
    return {True: "met", False: "missed"}.get(probe.get("slo_met"), "no_slo")


def slo_attainment(probes: list[dict]) -> dict | None:
    """Share of requests meeting the SLO, per plan (latest run), one legend entry per verdict."""
    points = [p for p in probes if p["headline"].get("slo_attainment") is not None]
    if not points:
        return None
    data = []
    for kind, name, colour in ATTAINMENT_KINDS:
        group = [p for p in points if _attainment_kind(p) == kind]
        if group:
            data.append(
                {
                    "x": [p["plan"] for p in group],
                    "y": [round(100 * p["headline"]["slo_attainment"], 2) for p in group],
                    "type": "bar",
                    "name": name,
                    "marker": {"color": colour},
                    "showlegend": True,
                }
            )
    # One trace per verdict: overlay keeps each plan's bar full width and the plans in their order.
    return figure(
        data,
        layout(
            "SLO attainment per probe plan (latest run)",
            height=300,
            barmode="overlay",
            xaxis=axis("probe plan", categoryorder="array", categoryarray=[p["plan"] for p in points]),
            yaxis=axis("requests meeting the SLO (%)", range=[0, 100]),
        ),
    )


def cost_vs_budget(cost: dict | None) -> dict | None:
    if not cost or cost.get("projected_monthly_usd") is None:
        return None
    budget = cost.get("budget_usd")
    over = budget is not None and cost["projected_monthly_usd"] > budget
    data = [
        {
            "x": ["projected"],
            "y": [round(cost["projected_monthly_usd"], 2)],
            "type": "bar",
            "name": "over the budget" if over else "projected cost",
            "marker": {"color": "#cf222e" if over else "#1a7f37"},
        }
    ]
    shapes = []
    if budget is not None:
        shapes.append(
            hline(budget, f"budget ${budget:,.0f} / month", line={"dash": "dash", "color": "#9a6700"}, legend=True)
        )
    title = "Monthly cost: projection vs budget"
    if cost.get("cost_per_1m_output_tokens_usd") is not None:
        title += f" (${cost['cost_per_1m_output_tokens_usd']:,.2f} per 1M output tokens)"
    return figure(
        data,
        layout(
            title,
            height=300,
            shapes=shapes,
            xaxis=axis("projection"),
            yaxis=axis("cost per month (USD)", rangemode="tozero", tickprefix="$", separatethousands=True),
        ),
    )


def decision_trend(reports: list) -> dict | None:
    """Outcome and category scores over a project's reports (oldest first)."""
    if len(reports) < 2:
        return None
    x = [f"#{r.number}" for r in reports]
    data = [
        {
            "x": x,
            "y": [OUTCOME_LEVEL[r.outcome] for r in reports],
            "name": "decision",
            "type": "scatter",
            "mode": "lines+markers",
            "line": {"shape": "hv"},
            "yaxis": "y2",
        }
    ]
    categories = sorted({c["category"] for r in reports for c in r.snapshot.get("categories", [])})
    for category in categories:
        scores = []
        for r in reports:
            found = next((c for c in r.snapshot.get("categories", []) if c["category"] == category), None)
            scores.append(found["score"].get("score") if found else None)
        data.append({"x": x, "y": scores, "name": category, "type": "scatter", "mode": "lines+markers"})
    return figure(
        data,
        layout(
            "Readiness over past reports",
            height=300,
            xaxis=axis("report", type="category"),
            yaxis=axis("category score (%)", range=[0, 105]),
            yaxis2=axis(
                "decision",
                overlaying="y",
                side="right",
                range=[-0.2, 2.2],
                tickvals=[0, 1, 2],
                ticktext=["NO-GO", "COND.", "GO"],
            ),
        ),
    )
