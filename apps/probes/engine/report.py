"""Human and machine outputs of a probe: the console summary, JSON and CSV."""

from __future__ import annotations

import csv
import json
import math
from typing import TextIO

from apps.probes.engine.records import ERROR_CLASSES, TOKENS_USAGE, Records
from apps.probes.engine.runner import ProbeResult, Progress


def progress_line(p: Progress, total_seconds: float | None) -> str:
    width = 24
    if total_seconds:
        frac = min(p.elapsed / total_seconds, 1.0)
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        head = f"[{bar}] {frac * 100:3.0f}% {p.elapsed:6.1f}s/{total_seconds:.0f}s"
    else:
        head = f"{p.elapsed:6.1f}s"
    ttft = "-" if p.ttft_p95_ms_recent != p.ttft_p95_ms_recent else f"{p.ttft_p95_ms_recent:.0f}ms"
    return (
        f"{head} {p.stage:<22} sent {p.sent:>7} done {p.completed:>7} err {p.errors:>5} "
        f"in-flight {p.in_flight:>5} ttft p95 {ttft}"
    )


def _fmt(d: dict, key: str) -> str:
    v = d.get(key)
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.1f}"


def format_summary(result: ProbeResult) -> str:
    s = result.summary
    lines = [f"target {result.meta['target']}  model {result.meta['model']}  api {result.meta['api']}"]
    header = f"{'stage':<24}{'req':>8}{'req/s':>9}{'tok/s':>10}{'good/s':>9}{'err%':>7}"
    header += f"{'TTFT p50':>10}{'p95':>8}{'p99':>8}{'TPOT p95':>10}{'ITL p95':>9}{'E2E p99':>10}{'lag p99':>9}"
    lines.append(header)
    for st in [*s["stages"], s["overall"]]:
        lines.append(
            f"{st['stage'][:23]:<24}{st['requests']:>8}{st['request_throughput']:>9.1f}"
            f"{st['output_token_throughput']:>10.0f}{st['goodput']:>9.1f}{st['error_rate'] * 100:>7.2f}"
            f"{_fmt(st['ttft_ms'], 'p50'):>10}{_fmt(st['ttft_ms'], 'p95'):>8}{_fmt(st['ttft_ms'], 'p99'):>8}"
            f"{_fmt(st['tpot_ms'], 'p95'):>10}{_fmt(st['itl_ms'], 'p95'):>9}{_fmt(st['e2e_ms'], 'p99'):>10}"
            f"{_fmt(st['schedule_lag_ms'], 'p99'):>9}"
        )
    lines.append("latencies in ms; TTFT/TPOT/ITL/E2E as defined in DESIGN.md (probe semantics)")
    if s["overall"]["errors"]:
        lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in s["overall"]["errors"].items()))
    if s["token_counts_estimated"]:
        lines.append("NOTE token counts estimated: the server sent no usage; output tokens = token events")
    if s["client_saturated"]:
        lines.append(
            f"WARNING client saturated: p99 schedule/loop lag above {s['saturation_threshold_ms']} ms; "
            "latencies are not trustworthy (lower the load per process or add processes)"
        )
    if s.get("cancelled"):
        lines.append("run cancelled: figures cover what was measured until then")
    sweep = s.get("sweep")
    if sweep:
        lines.append("sweep: " + ", ".join(
            f"{st['offered_rate']:g}/s {'ok' if st['slo_ok'] and st['keeps_up'] else 'FAIL'}" for st in sweep["steps"]
        ))  # fmt: skip
        lines.append(f"highest rate meeting the SLOs: {sweep['max_rate_meeting_slo']} req/s")
    if result.server_metrics:
        sm = result.server_metrics
        lines.append(f"server metrics: {sm['scrapes']} scrapes, {len(sm['failures'])} failures, series: "
                     + (", ".join(sorted(sm["series"])) or "none known"))  # fmt: skip
    for check in s["slo_checks"]:
        mark = "ok  " if check["ok"] else "MISS"
        lines.append(f"SLO {mark} {check['slo']}: {check['actual']} (target {check['target']})")
    return "\n".join(lines)


def request_rows(records: Records):
    for i in range(len(records)):
        row = records.row(i)
        row["error"] = ERROR_CLASSES[row["error"]]
        row["token_source"] = "usage" if row["token_source"] == TOKENS_USAGE else "counted"
        for key in ("intended", "sent", "first", "last"):
            v = row[key]
            row[key] = None if v != v else round(v, 6)
        yield row


def write_json(result: ProbeResult, out: TextIO) -> None:
    json.dump(
        {
            "meta": result.meta,
            "summary": result.summary,
            "server_metrics": result.server_metrics,
            "requests": list(request_rows(result.records)),
        },
        out,
        allow_nan=False,
        default=str,
    )


def write_csv(records: Records, out: TextIO) -> None:
    writer = None
    for row in request_rows(records):
        if writer is None:
            writer = csv.DictWriter(out, fieldnames=list(row))
            writer.writeheader()
        writer.writerow(row)
