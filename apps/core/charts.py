"""What every chart shares: the layout, axis titles in plotly.js 3's form, and escaping of the text.

Figures are plain dicts (Django's json_script writes them; static/js/app.js draws them). Every
builder returns `figure(data, layout)`, which escapes the text plotly draws. Plotly renders a small
HTML subset in names, titles, category labels, hover text and annotations (`<b>` comes out bold,
`<a href>` becomes a link element), so a plan named "<b>x</b>" would be drawn as markup. Escaping
the finished figure in one place means a builder cannot forget a user-given name; our own labels
use no markup, and a line break is written "\n" (plotly would otherwise turn it into a space).
"""

from __future__ import annotations

import html
import textwrap

# Horizontal legend at the bottom of the figure (container-referenced, so that plotly makes room
# for it below the x axis title instead of drawing it over the title); the margins grow to fit long
# tick labels (automargin) instead of clipping them.
LAYOUT = {
    "margin": {"l": 60, "r": 60, "t": 48, "b": 40},
    "height": 340,
    "legend": {"orientation": "h", "x": 0, "xanchor": "left", "yref": "container", "y": 0, "yanchor": "bottom"},
}
DASH_RED = {"color": "#cf222e", "dash": "dash"}
TITLE_WIDTH = 46  # characters per line of a chart's title: what a phone-width card shows

# Trace and layout keys whose strings plotly draws as (HTML-ish) text.
_TRACE_TEXT = ("name", "text", "hovertext", "customdata", "x", "y", "legendgrouptitle")
_AXIS_PREFIXES = ("xaxis", "yaxis")


def axis(title: str, **extra) -> dict:
    """An axis with its title (plotly.js 3 draws only the {"text": ...} form; a bare string is ignored)."""
    return {"title": {"text": title}, "automargin": True, **extra}


def layout(title: str, **extra) -> dict:
    """The shared layout under `title`, wrapped onto lines short enough for a phone-width chart (the
    top margin grows by a line for each)."""
    lines = textwrap.wrap(title, TITLE_WIDTH) or [title]
    margin = {**LAYOUT["margin"], **extra.pop("margin", {})}
    margin["t"] += 18 * (len(lines) - 1)
    return {**LAYOUT, "title": {"text": "\n".join(lines), "font": {"size": 14}}, "margin": margin, **extra}


def escape(value: str) -> str:
    """Plain text for plotly: '<', '>' and '&' as entities (plotly decodes these when drawing)."""
    return html.escape(value, quote=False).replace("\n", "<br>")


def _escaped(value):
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        return {**value, "text": escape(value["text"])}
    return value


def figure(data: list[dict], layout: dict) -> dict:
    """The figure with every text plotly draws escaped (see the module docstring)."""
    traces = [{k: _escaped(v) if k in _TRACE_TEXT else v for k, v in trace.items()} for trace in data]
    out = dict(layout)
    if "title" in out:
        out["title"] = _escaped(out["title"])
    for key, value in layout.items():
        if key.startswith(_AXIS_PREFIXES) and isinstance(value, dict):
            out[key] = {k: _escaped(v) if k in ("title", "ticktext", "categoryarray") else v for k, v in value.items()}
    if "annotations" in out:
        out["annotations"] = [{**a, "text": escape(a["text"])} for a in out["annotations"]]
    if "shapes" in out:
        out["shapes"] = [_shape(s) for s in out["shapes"]]
    # static/js/app.js escapes the text of figures without this mark (report snapshots stored
    # before figures were escaped here); escaping twice would show "&amp;lt;".
    out["meta"] = {"escaped": True}
    return {"data": traces, "layout": out}


def _shape(shape: dict) -> dict:
    shape = dict(shape)
    if isinstance(shape.get("name"), str):
        shape["name"] = escape(shape["name"])
    if isinstance(shape.get("label"), dict):
        shape["label"] = _escaped(shape["label"])
    return shape


def hline(
    y: float, label: str, *, yref: str = "y", line: dict | None = None, legend: bool = False, on_line: bool = True
) -> dict:
    """A horizontal line across the plot area only (xref "x domain": it never runs into the margins),
    labelled at its right end, or (`on_line=False`, with `legend`) only in the legend, where a busy
    chart's other lines cannot run through its label."""
    shape = {
        "type": "line",
        "xref": "x domain",
        "x0": 0,
        "x1": 1,
        "yref": yref,
        "y0": y,
        "y1": y,
        "line": line or DASH_RED,
    }
    if on_line:
        shape["label"] = {"text": label, "textposition": "end", "yanchor": "bottom", "font": {"size": 11}}
    if legend:
        shape.update(showlegend=True, name=label)
    return shape


def vline(x: float, label: str, *, line: dict | None = None, legend: bool = False) -> dict:
    """A vertical line from the bottom to the top of the plot area, labelled at its top."""
    shape = {
        "type": "line",
        "yref": "y domain",
        "y0": 0,
        "y1": 1,
        "xref": "x",
        "x0": x,
        "x1": x,
        "line": line or DASH_RED,
        # Its label reads leftwards from the line's top: a line near the right edge keeps it in view.
        "label": {
            "text": label,
            "textposition": "end",
            "textangle": 0,
            "xanchor": "right",
            "yanchor": "bottom",
            "font": {"size": 11},
        },
    }
    if legend:
        shape.update(showlegend=True, name=label)
    return shape
