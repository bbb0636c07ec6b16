"""Plotly figures (plain dicts) for the run and plan pages, built from stored run data."""

from __future__ import annotations

from apps.core.charts import LAYOUT, axis, figure, hline, layout

SERVER_SERIES = (
    ("vllm:num_requests_waiting", "waiting"),
    ("vllm:num_requests_running", "running"),
    ("tgi_queue_size", "TGI queue"),
    ("tgi_batch_current_size", "TGI batch"),
    ("llamacpp:requests_deferred", "llama.cpp deferred"),
    ("llamacpp:requests_processing", "llama.cpp processing"),
    ("jetstream_prefill_backlog_size", "JetStream backlog"),
)
REPLICA_SERIES = (
    ("kube_deployment_status_replicas_available", "replicas available"),
    ("kube_horizontalpodautoscaler_status_desired_replicas", "replicas desired"),
)
USAGE_SERIES = (
    ("vllm:kv_cache_usage_perc", "KV cache usage"),
    ("vllm:gpu_cache_usage_perc", "GPU cache usage"),
    ("jetstream_slots_used_percentage", "JetStream slots used"),
)


def _line(x, y, name: str, **extra) -> dict:
    return {"x": x, "y": y, "name": name, "type": "scatter", "mode": "lines+markers", **extra}


def latency_over_time(tl: dict) -> dict:
    t = tl["t"]
    data = [
        {"x": t, "y": tl["ttft_p50_ms"], "name": "TTFT p50", "type": "scatter", "mode": "lines"},
        {"x": t, "y": tl["ttft_p95_ms"], "name": "TTFT p95", "type": "scatter", "mode": "lines"},
        {"x": t, "y": tl["e2e_p95_ms"], "name": "E2E p95", "type": "scatter", "mode": "lines"},
        {
            "x": t,
            "y": tl["offered_rps"],
            "name": "offered req/s",
            "type": "scatter",
            "mode": "lines",
            "yaxis": "y2",
            "line": {"dash": "dot"},
        },
        {
            "x": t,
            "y": tl["completed_rps"],
            "name": "completed req/s",
            "type": "scatter",
            "mode": "lines",
            "yaxis": "y2",
            "line": {"dash": "dash"},
        },
    ]
    return figure(
        data,
        layout(
            f"Latency over time against offered load ({tl['bucket_s']:g} s buckets, by send time)",
            xaxis=axis("time from start (s)"),
            yaxis=axis("latency (ms)", rangemode="tozero"),
            yaxis2=axis("rate (req/s)", overlaying="y", side="right", rangemode="tozero"),
        ),
    )


def throughput_per_stage(summary: dict) -> dict:
    stages = summary["stages"]
    names = [s["stage"] for s in stages]
    data = [
        {"x": names, "y": [s["request_throughput"] for s in stages], "name": "throughput (req/s)", "type": "bar"},
        {"x": names, "y": [s["goodput"] for s in stages], "name": "goodput (req/s)", "type": "bar"},
        {
            "x": names,
            "y": [s["output_token_throughput"] for s in stages],
            "name": "output tokens/s",
            "type": "scatter",
            "mode": "markers+lines",
            "yaxis": "y2",
        },
    ]
    return figure(
        data,
        layout(
            "Throughput and goodput per stage",
            barmode="group",
            xaxis=axis("stage"),
            yaxis=axis("requests per second (req/s)", rangemode="tozero"),
            yaxis2=axis("output tokens per second (tokens/s)", overlaying="y", side="right", rangemode="tozero"),
        ),
    )


def errors_breakdown(summary: dict) -> dict | None:
    errors = summary["overall"]["errors"]
    if not errors:
        return None
    data = [{"x": list(errors), "y": list(errors.values()), "type": "bar", "name": "failed requests"}]
    return figure(data, layout("Errors by class", xaxis=axis("error class"), yaxis=axis("failed requests (count)")))


def server_metrics(sm: dict | None) -> dict | None:
    if not sm or not sm.get("series"):
        return None
    series = sm["series"]
    data = []
    for key, label in SERVER_SERIES + REPLICA_SERIES:
        if key in series:
            points = series[key]
            dash = "dot" if key in dict(REPLICA_SERIES) else "solid"
            data.append(
                {
                    "x": [p[0] for p in points],
                    "y": [p[1] for p in points],
                    "name": label,
                    "type": "scatter",
                    "mode": "lines",
                    "line": {"shape": "hv", "dash": dash},
                }
            )
    for key, label in USAGE_SERIES:
        if key in series:
            points = series[key]
            data.append(
                {
                    "x": [p[0] for p in points],
                    "y": [p[1] * 100 for p in points],
                    "name": f"{label} %",
                    "type": "scatter",
                    "mode": "lines",
                    "yaxis": "y2",
                }
            )
    if not data:
        return None
    return figure(
        data,
        layout(
            f"Server metrics ({sm['scrapes']} scrapes every {sm['interval_s']:g} s, {len(sm['failures'])} failed)",
            xaxis=axis("time from start (s)"),
            yaxis=axis("requests / replicas (count)", rangemode="tozero"),
            yaxis2=axis("cache / slots used (%)", overlaying="y", side="right", range=[0, 100]),
        ),
    )


def sweep_chart(summary: dict) -> dict | None:
    sweep = summary.get("sweep")
    if not sweep or not sweep["steps"]:
        return None
    steps = sorted(sweep["steps"], key=lambda s: s["offered_rate"])
    rates = [s["offered_rate"] for s in steps]
    data = [
        _line(rates, [s["ttft_p95_ms"] for s in steps], "TTFT p95"),
        _line(rates, [s["e2e_p99_ms"] for s in steps], "E2E p99"),
    ]
    shapes = []
    slo = summary.get("slo", {})
    if slo.get("ttft_p95_ms"):
        shapes.append(hline(slo["ttft_p95_ms"], f"TTFT p95 SLO {slo['ttft_p95_ms']:g} ms", legend=True))
    point = sweep.get("operating_point")
    if point:
        data.append(
            {
                "x": [point["offered_rate"]],
                "y": [point["ttft_p95_ms"]],
                "name": "operating point",
                "type": "scatter",
                "mode": "markers",
                "marker": {"size": 14, "symbol": "star"},
            }
        )
    return figure(
        data,
        layout(
            "Sweep: latency against offered rate",
            xaxis=axis("offered rate (req/s)"),
            yaxis=axis("latency (ms)", rangemode="tozero"),
            shapes=shapes,
        ),
    )


def run_figures(run) -> dict[str, dict]:
    if not run.summary:
        return {}
    figures = {"throughput": throughput_per_stage(run.summary)}
    if run.timeline:
        figures = {"latency": latency_over_time(run.timeline), **figures}
    for name, fig in (
        ("autoscaling", autoscaling_chart(run.summary.get("autoscaling") or {})),
        ("errors", errors_breakdown(run.summary)),
        ("server", server_metrics(run.server_metrics)),
        ("sweep", sweep_chart(run.summary)),
        ("tenant-latency", tenant_latency_chart(run.summary.get("tenants") or {})),
        ("fairness", fairness_chart(run.summary.get("tenants") or {})),
    ):
        if fig:
            figures[name] = fig
    return figures


def trend(runs: list, *, title: str = "Trend over the last runs") -> dict | None:
    """Headline figures of a plan's last runs (oldest first)."""
    # A run that measured no request (a failed preflight) has no figures: drawn as 0 it would read
    # as a collapse of throughput.
    points = [r for r in runs if r.summary and r.summary.get("overall") and r.summary["overall"].get("requests") != 0]
    if len(points) < 2:
        return None
    x = [f"#{r.pk}" for r in points]
    o = [r.summary["overall"] for r in points]
    data = [
        _line(x, [v["ttft_ms"].get("p95") for v in o], "TTFT p95 (ms)"),
        _line(x, [v["e2e_ms"].get("p99") for v in o], "E2E p99 (ms)"),
        {
            "x": x,
            "y": [v["output_token_throughput"] for v in o],
            "name": "output tokens/s",
            "type": "scatter",
            "mode": "lines+markers",
            "yaxis": "y2",
        },
    ]
    return figure(
        data,
        layout(
            title,
            height=300,
            xaxis=axis("run", type="category"),
            yaxis=axis("latency (ms)", rangemode="tozero"),
            yaxis2=axis("output tokens per second (tokens/s)", overlaying="y", side="right", rangemode="tozero"),
        ),
    )


MARKS = (
    ("step_up", "step up"),
    ("decide", "decide"),
    ("ready", "ready"),
    ("recover", "recovered"),
    ("step_down", "step down"),
)


def mark_rows(xs: list[float], span: float, *, gap: float = 0.12) -> list[int]:
    """A row for each mark label (xs ascending), so that two labels closer than `gap` of the x span
    never share a row: "step up" and "decide" are often a second apart and would overlap."""
    last: list[float] = []
    rows = []
    for x in xs:
        row = next((i for i, seen in enumerate(last) if x - seen >= gap * span), len(last))
        if row == len(last):
            last.append(x)
        last[row] = x
        rows.append(row)
    return rows


def autoscaling_chart(analysis: dict) -> dict | None:
    """Two panels over one time axis. Top: rolling p95 TTFT against the SLO, and offered / completed
    rate. Bottom: queue and replicas (and KV cache % on its right). The step and the KPIs (decide,
    ready, recover) are marked across both."""
    tl = analysis.get("timeline") or {}
    t = tl.get("t")
    if not t:
        return None
    line = {"type": "scatter", "mode": "lines"}
    data = [
        {**line, "x": t, "y": tl["offered_rps"], "name": "offered req/s", "yaxis": "y2", "line": {"dash": "dot"}},
        {**line, "x": t, "y": tl["completed_rps"], "name": "completed req/s", "yaxis": "y2"},
        {**line, "x": t, "y": tl["ttft_p95_ms"], "name": "rolling p95 TTFT (ms)"},
    ]
    if tl.get("canary_ttft_p95_ms"):
        data.append(
            {**line, "x": t, "y": tl["canary_ttft_p95_ms"], "name": "canary p95 TTFT (ms)", "line": {"dash": "dashdot"}}
        )
    for key, name in (
        ("waiting", "waiting queue"),
        ("desired", "replicas desired"),
        ("available", "replicas available"),
    ):
        if tl.get(key):
            data.append({**line, "x": t, "y": tl[key], "name": name, "yaxis": "y3", "line": {"shape": "hv"}})
    if tl.get("kv_cache"):
        data.append(
            {
                **line,
                "x": t,
                "y": [None if v is None else v * 100 for v in tl["kv_cache"]],
                "name": "KV cache %",
                "yaxis": "y4",
                "line": {"dash": "dash"},
            }
        )
    shapes, annotations = [], []
    slo = analysis.get("slo_ttft_p95_ms")
    if slo is not None:
        # In the legend: at the line's right end the rate line and the marks would run through it.
        shapes.append(hline(slo, f"TTFT p95 SLO {slo:g} ms", legend=True, on_line=False))
    marks = (analysis.get("kpis") or {}).get("marks") or {}
    present = sorted(((marks[key], label) for key, label in MARKS if marks.get(key) is not None))
    span = (max(t) - min(t)) or 1
    for (x, label), row in zip(present, mark_rows([x for x, _ in present], span), strict=True):
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "x0": x,
                "x1": x,
                "line": {"color": "#57606a", "dash": "dot", "width": 1},
            }
        )
        annotations.append(
            {
                "x": x,
                "xref": "x",
                "yref": "paper",
                "y": 1,
                "yanchor": "bottom",
                "yshift": 2 + 14 * row,
                "text": label,
                "showarrow": False,
                "font": {"size": 10},
            }
        )
    rows = max(mark_rows([x for x, _ in present], span), default=0) + 1
    bottom = bool(tl.get("waiting") or tl.get("desired") or tl.get("available") or tl.get("kv_cache"))
    top_domain = [0.42, 1] if bottom else [0, 1]
    axes = {
        "xaxis": axis("time from start (s)", anchor="y3" if bottom else "y"),
        "yaxis": axis("p95 TTFT (ms)", rangemode="tozero", domain=top_domain),
        "yaxis2": axis("rate (req/s)", overlaying="y", side="right", rangemode="tozero"),
    }
    if bottom:
        axes["yaxis3"] = axis("queue / replicas (count)", domain=[0, 0.32], anchor="x", rangemode="tozero")
        if tl.get("kv_cache"):
            axes["yaxis4"] = axis("KV cache (%)", overlaying="y3", side="right", range=[0, 100])
    margin = {"t": LAYOUT["margin"]["t"] + 8 + 14 * rows}  # room for the rows of mark labels
    return figure(
        data,
        layout(
            "Autoscaling response",
            height=480,
            shapes=shapes,
            annotations=annotations,
            margin=margin,
            **axes,
        ),
    )


def _burst_band(analysis: dict) -> dict:
    burst = analysis["burst"]
    return {
        "type": "rect",
        "xref": "x",
        "yref": "y domain",
        "x0": burst["at_s"],
        "x1": burst["at_s"] + burst["over_s"],
        "y0": 0,
        "y1": 1,
        "fillcolor": "rgba(220, 53, 69, 0.08)",
        "line": {"width": 0},
        "label": {"text": f"{analysis['noisy']} bursts", "textposition": "top center", "font": {"size": 11}},
    }


def tenant_latency_chart(analysis: dict) -> dict | None:
    """Each tenant's p95 TTFT over time, the noisy one dashed, with its burst shaded."""
    series = analysis.get("series")
    if not series:
        return None
    data = []
    for name, tl in series.items():
        noisy = name == analysis["noisy"]
        label = f"{name} (noisy)" if noisy else name
        data.append(_line(tl["t"], tl["ttft_p95_ms"], label, connectgaps=True, line={"dash": "dash"} if noisy else {}))
    width = next(iter(series.values()))["bucket_s"]
    return figure(
        data,
        layout(
            f"Each tenant's TTFT p95 over time ({width:g} s buckets, by send time)",
            xaxis=axis("time from start (s)"),
            yaxis=axis("TTFT p95 (ms)", rangemode="tozero"),
            shapes=[_burst_band(analysis)],
        ),
    )


def fairness_chart(analysis: dict) -> dict | None:
    """The quiet tenants' p95 TTFT during and after the burst, as a multiple of their own baseline
    (before it), against the plan's allowance."""
    quiet = analysis.get("quiet")
    if not quiet:
        return None
    names = [q["name"] for q in quiet]
    data = [
        {"x": names, "y": [q["ttft_ratio_during"] for q in quiet], "name": "during the burst", "type": "bar"},
        {"x": names, "y": [q["ttft_ratio_after"] for q in quiet], "name": "after the burst", "type": "bar"},
    ]
    allowed = 1 + analysis["isolation"]["ttft_increase_pct"] / 100
    top = max([allowed] + [r for q in quiet for r in (q["ttft_ratio_during"], q["ttft_ratio_after"]) if r is not None])
    jain = analysis.get("jain_index")
    title = "Quiet tenants' TTFT p95 against their own baseline"
    if jain is not None:
        title += f" (Jain's fairness index {jain:.2f})"
    return figure(
        data,
        layout(
            title,
            barmode="group",
            xaxis=axis("quiet tenant"),
            # Headroom above the allowance, so that its label is drawn inside the plot.
            yaxis=axis("TTFT p95 ÷ baseline before the burst (×)", range=[0, round(top * 1.2, 3)]),
            shapes=[
                hline(1.0, "baseline (1×)", line={"color": "#6c757d", "width": 1, "dash": "dot"}),
                hline(allowed, f"allowed ({allowed:g}×)"),
            ],
        ),
    )
