"""Plotly figures (plain dicts) for the run and plan pages, built from stored run data."""

from __future__ import annotations

SERVER_SERIES = (
    ("vllm:num_requests_waiting", "waiting"), ("vllm:num_requests_running", "running"),
    ("tgi_queue_size", "TGI queue"), ("tgi_batch_current_size", "TGI batch"),
    ("llamacpp:requests_deferred", "llama.cpp deferred"), ("llamacpp:requests_processing", "llama.cpp processing"),
    ("jetstream_prefill_backlog_size", "JetStream backlog"),
)  # fmt: skip
REPLICA_SERIES = (
    ("kube_deployment_status_replicas_available", "replicas available"),
    ("kube_horizontalpodautoscaler_status_desired_replicas", "replicas desired"),
)
USAGE_SERIES = (
    ("vllm:kv_cache_usage_perc", "KV cache usage"), ("vllm:gpu_cache_usage_perc", "GPU cache usage"),
    ("jetstream_slots_used_percentage", "JetStream slots used"),
)  # fmt: skip
LAYOUT = {"margin": {"l": 60, "r": 60, "t": 40, "b": 40}, "height": 340, "legend": {"orientation": "h", "y": -0.2}}


def _line(x, y, name: str, **extra) -> dict:
    return {"x": x, "y": y, "name": name, "type": "scatter", "mode": "lines+markers", **extra}


def _layout(title: str, **extra) -> dict:
    return {**LAYOUT, "title": {"text": title, "font": {"size": 14}}, **extra}


def latency_over_time(tl: dict) -> dict:
    t = tl["t"]
    data = [
        {"x": t, "y": tl["ttft_p50_ms"], "name": "TTFT p50", "type": "scatter", "mode": "lines"},
        {"x": t, "y": tl["ttft_p95_ms"], "name": "TTFT p95", "type": "scatter", "mode": "lines"},
        {"x": t, "y": tl["e2e_p95_ms"], "name": "E2E p95", "type": "scatter", "mode": "lines"},
        {"x": t, "y": tl["offered_rps"], "name": "offered req/s", "type": "scatter", "mode": "lines",
         "yaxis": "y2", "line": {"dash": "dot"}},
        {"x": t, "y": tl["completed_rps"], "name": "completed req/s", "type": "scatter", "mode": "lines",
         "yaxis": "y2", "line": {"dash": "dash"}},
    ]  # fmt: skip
    layout = _layout(
        f"Latency over time against offered load ({tl['bucket_s']:g} s buckets, by send time)",
        xaxis={"title": "seconds from start"},
        yaxis={"title": "ms", "rangemode": "tozero"},
        yaxis2={"title": "req/s", "overlaying": "y", "side": "right", "rangemode": "tozero"},
    )
    return {"data": data, "layout": layout}


def throughput_per_stage(summary: dict) -> dict:
    stages = summary["stages"]
    names = [s["stage"] for s in stages]
    data = [
        {"x": names, "y": [s["request_throughput"] for s in stages], "name": "throughput (req/s)", "type": "bar"},
        {"x": names, "y": [s["goodput"] for s in stages], "name": "goodput (req/s)", "type": "bar"},
        {"x": names, "y": [s["output_token_throughput"] for s in stages], "name": "output tokens/s", "type": "scatter",
         "mode": "markers+lines", "yaxis": "y2"},
    ]  # fmt: skip
    tokens_axis = {"title": "tokens/s", "overlaying": "y", "side": "right", "rangemode": "tozero"}
    layout = _layout("Throughput and goodput per stage", barmode="group", yaxis={"title": "req/s"}, yaxis2=tokens_axis)
    return {"data": data, "layout": layout}


def errors_breakdown(summary: dict) -> dict | None:
    errors = summary["overall"]["errors"]
    if not errors:
        return None
    return {
        "data": [{"x": list(errors), "y": list(errors.values()), "type": "bar", "name": "requests"}],
        "layout": _layout("Errors by class", yaxis={"title": "requests"}),
    }


def server_metrics(sm: dict | None) -> dict | None:
    if not sm or not sm.get("series"):
        return None
    series = sm["series"]
    data = []
    for key, label in SERVER_SERIES + REPLICA_SERIES:
        if key in series:
            points = series[key]
            dash = "dot" if key in dict(REPLICA_SERIES) else "solid"
            data.append({"x": [p[0] for p in points], "y": [p[1] for p in points], "name": label, "type": "scatter",
                         "mode": "lines", "line": {"shape": "hv", "dash": dash}})  # fmt: skip
    for key, label in USAGE_SERIES:
        if key in series:
            points = series[key]
            data.append({"x": [p[0] for p in points], "y": [p[1] * 100 for p in points], "name": f"{label} %",
                         "type": "scatter", "mode": "lines", "yaxis": "y2"})  # fmt: skip
    if not data:
        return None
    layout = _layout(
        f"Server metrics ({sm['scrapes']} scrapes every {sm['interval_s']:g} s, {len(sm['failures'])} failed)",
        xaxis={"title": "seconds from start"}, yaxis={"title": "requests / replicas", "rangemode": "tozero"},
        yaxis2={"title": "%", "overlaying": "y", "side": "right", "range": [0, 100]},
    )  # fmt: skip
    return {"data": data, "layout": layout}


def sweep_chart(summary: dict) -> dict | None:
    sweep = summary.get("sweep")
    if not sweep or not sweep["steps"]:
        return None
    steps = sorted(sweep["steps"], key=lambda s: s["offered_rate"])
    rates = [s["offered_rate"] for s in steps]
    data = [
        _line(rates, [s["ttft_p95_ms"] for s in steps], "TTFT p95"),
        _line(rates, [s["e2e_p99_ms"] for s in steps], "E2E p99"),
    ]  # fmt: skip
    shapes = []
    slo = summary.get("slo", {})
    if slo.get("ttft_p95_ms"):
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": slo["ttft_p95_ms"],
                       "y1": slo["ttft_p95_ms"], "line": {"color": "#b42318", "dash": "dash"}})  # fmt: skip
        data.append({"x": [rates[0]], "y": [slo["ttft_p95_ms"]], "name": "TTFT SLO", "mode": "lines",
                     "line": {"color": "#b42318", "dash": "dash"}, "type": "scatter"})  # fmt: skip
    point = sweep.get("operating_point")
    if point:
        data.append({"x": [point["offered_rate"]], "y": [point["ttft_p95_ms"]], "name": "operating point",
                     "type": "scatter", "mode": "markers", "marker": {"size": 14, "symbol": "star"}})  # fmt: skip
    layout = _layout("Sweep: latency against offered rate", xaxis={"title": "offered req/s"},
                     yaxis={"title": "ms", "rangemode": "tozero"}, shapes=shapes)  # fmt: skip
    return {"data": data, "layout": layout}


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
    ):
        if fig:
            figures[name] = fig
    return figures


def trend(runs: list) -> dict | None:
    """Headline figures of a plan's last runs (oldest first)."""
    points = [r for r in runs if r.summary and r.summary.get("overall")]
    if len(points) < 2:
        return None
    x = [f"#{r.pk}" for r in points]
    o = [r.summary["overall"] for r in points]
    data = [
        _line(x, [v["ttft_ms"].get("p95") for v in o], "TTFT p95 (ms)"),
        _line(x, [v["e2e_ms"].get("p99") for v in o], "E2E p99 (ms)"),
        {"x": x, "y": [v["output_token_throughput"] for v in o], "name": "output tokens/s", "type": "scatter",
         "mode": "lines+markers", "yaxis": "y2"},
    ]  # fmt: skip
    layout = _layout("Trend over the last runs", yaxis={"title": "ms", "rangemode": "tozero"},
                     yaxis2={"title": "tokens/s", "overlaying": "y", "side": "right", "rangemode": "tozero"},
                     height=280)  # fmt: skip
    return {"data": data, "layout": layout}


def autoscaling_chart(analysis: dict) -> dict | None:
    """Offered / completed rate, rolling p95 TTFT against the SLO, queue, KV cache, desired vs
    available replicas, with the step and the KPIs (decide, ready, recover) marked."""
    tl = analysis.get("timeline") or {}
    t = tl.get("t")
    if not t:
        return None
    line = {"type": "scatter", "mode": "lines"}
    data = [
        {**line, "x": t, "y": tl["offered_rps"], "name": "offered req/s", "yaxis": "y2", "line": {"dash": "dot"}},
        {**line, "x": t, "y": tl["completed_rps"], "name": "completed req/s", "yaxis": "y2"},
        {**line, "x": t, "y": tl["ttft_p95_ms"], "name": "rolling p95 TTFT (ms)"},
    ]  # fmt: skip
    if tl.get("canary_ttft_p95_ms"):
        data.append({**line, "x": t, "y": tl["canary_ttft_p95_ms"], "name": "canary p95 TTFT (ms)",
                     "line": {"dash": "dashdot"}})  # fmt: skip
    for key, name in (
        ("waiting", "waiting queue"),
        ("desired", "replicas desired"),
        ("available", "replicas available"),
    ):
        if tl.get(key):
            data.append({**line, "x": t, "y": tl[key], "name": name, "yaxis": "y3", "line": {"shape": "hv"}})
    if tl.get("kv_cache"):
        data.append({**line, "x": t, "y": [None if v is None else v * 100 for v in tl["kv_cache"]],
                     "name": "KV cache %", "yaxis": "y3", "line": {"dash": "dash"}})  # fmt: skip
    marks = (analysis.get("kpis") or {}).get("marks") or {}
    shapes = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": analysis.get("slo_ttft_p95_ms"),
               "y1": analysis.get("slo_ttft_p95_ms"), "line": {"color": "#cf222e", "dash": "dash"}}]  # fmt: skip
    annotations = []
    for key, label in (("step_up", "step up"), ("decide", "decide"), ("ready", "ready"), ("recover", "recovered"),
                       ("step_down", "step down")):  # fmt: skip
        if marks.get(key) is not None:
            shapes.append({"type": "line", "yref": "paper", "y0": 0, "y1": 1, "x0": marks[key], "x1": marks[key],
                           "line": {"color": "#57606a", "dash": "dot", "width": 1}})  # fmt: skip
            annotations.append({"x": marks[key], "yref": "paper", "y": 1.02, "text": label, "showarrow": False,
                                "font": {"size": 10}})  # fmt: skip
    layout = _layout("Autoscaling response (SLO dashed red)", height=420, shapes=shapes, annotations=annotations,
                     xaxis={"title": "seconds from start", "domain": [0, 0.86]},
                     yaxis={"title": "p95 TTFT ms", "rangemode": "tozero"},
                     yaxis2={"title": "req/s", "overlaying": "y", "side": "right", "rangemode": "tozero"},
                     yaxis3={"title": "queue / replicas / %", "overlaying": "y", "side": "right", "position": 0.95,
                             "anchor": "free", "rangemode": "tozero"})  # fmt: skip
    return {"data": data, "layout": layout}
