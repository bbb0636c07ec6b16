"""The offered-load figure of a plan (a plain Plotly dict), drawn from `plans.offered_load`.

static/js/plan_form.js draws the form's live preview with the same traces and axis titles.
"""

from __future__ import annotations

RATE_AXIS = "Offered rate (requests/s)"
CONCURRENCY_AXIS = "Concurrency (requests in flight)"
TIME_AXIS = "Time from start (s)"


def offered_load_traces(load: dict) -> list[dict]:
    """A rate trace for open-loop stages and a concurrency trace for closed-loop ones, each a
    line with a gap (None) where the other kind of stage runs."""
    rate_x, rate_y, conc_x, conc_y = [], [], [], []
    for seg in load["segments"]:
        if seg["rate"] is not None:
            rate_x += [seg["start"], seg["end"]]
            rate_y += [seg["rate"], seg["rate_end"]]
            conc_x.append(None)
            conc_y.append(None)
        else:
            conc_x += [seg["start"], seg["end"]]
            conc_y += [seg["concurrency"], seg["concurrency"]]
            rate_x.append(None)
            rate_y.append(None)
    traces = []
    if any(y is not None for y in rate_y):
        traces.append(
            {
                "x": rate_x,
                "y": rate_y,
                "name": "offered rate (requests/s)",
                "type": "scatter",
                "mode": "lines",
                "line": {"shape": "linear"},
            }
        )
    if any(y is not None for y in conc_y):
        trace = {
            "x": conc_x,
            "y": conc_y,
            "name": "concurrency (requests in flight)",
            "type": "scatter",
            "mode": "lines",
            "line": {"dash": "dot"},
        }
        if traces:
            trace["yaxis"] = "y2"
        traces.append(trace)
    return traces


def _headroom(trace: dict) -> list[float]:
    """From 0 to a little above the top, so a flat line does not sit on the plot's edge."""
    top = max((y for y in trace["y"] if y is not None), default=0)
    return [0, top * 1.15 if top > 0 else 1]


def offered_load_figure(load: dict, title: str = "Offered load") -> dict:
    traces = offered_load_traces(load)
    closed_only = len(traces) == 1 and traces[0]["name"].startswith("concurrency")
    layout = {
        "title": {"text": title, "font": {"size": 14}},
        "height": 300,
        "margin": {"l": 70, "r": 70, "t": 40, "b": 50},
        "showlegend": len(traces) > 1,
        "legend": {"orientation": "h", "y": -0.3},
        "xaxis": {"title": {"text": TIME_AXIS}, "rangemode": "tozero"},
        "yaxis": {"title": {"text": CONCURRENCY_AXIS if closed_only else RATE_AXIS}, "range": _headroom(traces[0])},
    }
    if len(traces) > 1:
        layout["yaxis2"] = {
            "title": {"text": CONCURRENCY_AXIS},
            "overlaying": "y",
            "side": "right",
            "range": _headroom(traces[1]),
        }
    return {"data": traces, "layout": layout}
