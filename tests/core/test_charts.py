"""What every chart shares: axis titles in the form plotly.js 3 draws, and user text escaped."""

from apps.core.charts import axis, escape, figure, hline, layout

MARKUP = "<b>x</b><a href=//evil>y</a>"
ESCAPED = "&lt;b&gt;x&lt;/b&gt;&lt;a href=//evil&gt;y&lt;/a&gt;"


def test_an_axis_title_is_an_object_with_its_text_because_plotly_3_ignores_a_bare_string():
    assert axis("latency (ms)", rangemode="tozero") == {
        "title": {"text": "latency (ms)"},
        "automargin": True,
        "rangemode": "tozero",
    }


def test_markup_in_any_text_plotly_draws_is_escaped_and_numbers_and_templates_are_left_alone():
    data = [
        {
            "type": "bar",
            "name": MARKUP,
            "x": [MARKUP, "plain"],
            "y": [1, 2],
            "customdata": [[MARKUP]],
            "hovertemplate": "%{x}<br>%{y}<extra></extra>",
            "text": MARKUP,
        }
    ]
    marks = {"annotations": [{"x": 1, "text": MARKUP}], "shapes": [hline(3, MARKUP, legend=True)]}
    fig = figure(data, layout(MARKUP, xaxis=axis(MARKUP, ticktext=[MARKUP]), yaxis2=axis("ms"), **marks))
    trace = fig["data"][0]
    assert trace["name"] == trace["text"] == ESCAPED and trace["x"] == [ESCAPED, "plain"]
    assert trace["customdata"] == [[ESCAPED]] and trace["y"] == [1, 2]
    assert trace["hovertemplate"] == "%{x}<br>%{y}<extra></extra>"  # ours: its markup is meant
    out = fig["layout"]
    assert out["title"]["text"] == out["xaxis"]["title"]["text"] == ESCAPED
    assert out["xaxis"]["ticktext"] == [ESCAPED] and out["yaxis2"]["title"]["text"] == "ms"
    assert out["annotations"][0]["text"] == ESCAPED
    assert out["shapes"][0]["label"]["text"] == out["shapes"][0]["name"] == ESCAPED
    assert out["meta"] == {"escaped": True}  # app.js escapes only figures without it (older reports)


def test_a_line_break_of_ours_becomes_plotlys_break_and_an_ampersand_stays_an_ampersand():
    assert escape("Hosted API\nR&D <model>") == "Hosted API<br>R&amp;D &lt;model&gt;"


def test_a_horizontal_line_spans_the_plot_area_only_and_carries_its_label():
    line = hline(500, "SLO 500 ms")
    assert line["xref"] == "x domain" and (line["x0"], line["x1"]) == (0, 1)
    assert line["label"]["text"] == "SLO 500 ms" and "showlegend" not in line
    assert hline(1, "budget", legend=True)["showlegend"] is True
