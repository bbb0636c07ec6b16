"""The cost pages' charts: each option's monthly cost against the budget, and a usage log's hours."""

from __future__ import annotations

import math
import textwrap

from apps.core.charts import axis, figure, layout, vline

# One trace per colour, so that every colour has its legend entry (a single trace with per-bar
# colours shows one entry and leaves the reader to guess what green means).
KINDS = (
    ("cheapest", "cheapest that meets the SLOs", "#0969da"),
    ("meets", "meets the SLOs", "#1a7f37"),
    ("misses", "misses the SLOs", "#cf222e"),
    ("unmeasured", "SLOs not measured", "#8c959f"),
)
# Options are rows (horizontal bars): their labels, however many and however long, stack down the
# left instead of colliding under the bars, at phone width too.
LABEL_WIDTH = 18  # characters per line of an option's label
ROW_PX = 46


def _kind(option: dict, cheapest: str | None) -> str:
    if option["key"] == cheapest:
        return "cheapest"
    return {True: "meets", False: "misses", None: "unmeasured"}[option["meets_slo"]]


def tick_labels(labels: list[str]) -> list[str]:
    """Each option's label as its row reads it: the words before the first comma ("Business hours"),
    wrapped onto short lines; the whole label where that would not tell two options apart. The
    full label is in the hover."""
    heads = [label.split(", ")[0] for label in labels]
    chosen = heads if len(set(heads)) == len(heads) else labels
    return ["\n".join(textwrap.wrap(label, LABEL_WIDTH, break_long_words=False)) or label for label in chosen]


def options_chart(cost: dict) -> dict | None:
    options = cost.get("options") or []
    if not options:
        return None
    ticks = tick_labels([o["label"] for o in options])
    data = []
    for kind, name, colour in KINDS:
        chosen = [(t, o) for t, o in zip(ticks, options, strict=True) if _kind(o, cost.get("cheapest")) == kind]
        if not chosen:
            continue
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": name,
                "marker": {"color": colour},
                "y": [t for t, _ in chosen],
                "x": [round(o["usd_per_month"], 2) for _, o in chosen],
                "customdata": [o["label"] for _, o in chosen],
                "hovertemplate": "%{customdata}<br>$%{x:,.2f} per month<extra></extra>",
            }
        )
    shapes = []
    if cost.get("budget_usd") is not None:
        label = f"budget ${cost['budget_usd']:,.0f} / month"
        shapes.append(vline(cost["budget_usd"], label, line={"dash": "dash", "color": "#9a6700"}, legend=True))
    # Each option is in one trace only: "overlay" keeps its bar full height and centred on its label;
    # the options read top to bottom in the cost model's order.
    return figure(
        data,
        layout(
            "Monthly cost per option",
            height=160 + ROW_PX * len(options),
            barmode="overlay",
            shapes=shapes,
            yaxis=axis("option", categoryorder="array", categoryarray=ticks, autorange="reversed"),
            xaxis=axis("cost per month (USD)", rangemode="tozero", tickprefix="$", separatethousands=True),
        ),
    )


def hourly_requests(hourly: list[int]) -> dict | None:
    """A usage log's requests in each hour from its first minute."""
    if not hourly:
        return None
    data = [{"x": list(range(len(hourly))), "y": hourly, "type": "bar", "name": "requests per hour"}]
    return figure(
        data,
        layout(
            "Requests per hour (from the first minute of the log)",
            height=300,
            # Whole hours only: a log of one hour drew one bar over an axis from -0.4 to 0.4 h.
            xaxis=axis(
                "hour from the start of the log (h)",
                tick0=0,
                dtick=max(1, math.ceil(len(hourly) / 12)),
                range=[-0.5, max(len(hourly), 2) - 0.5],
            ),
            yaxis=axis("requests per hour (count)", rangemode="tozero"),
        ),
    )
