"""Human and machine outputs of a probe: the console summary, JSON and CSV."""

from __future__ import annotations

import csv
import json
import math
from typing import TextIO

from apps.probes.engine.records import ERROR_CLASSES, TOKENS_USAGE, Records
from apps.probes.engine.runner import ProbeResult, Progress
from apps.probes.engine.stats import format_error_details


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


COLUMNS = (
    ("stage", lambda st: st["stage"][:32]),
    ("req", lambda st: f"{st['requests']:,}"),
    ("req/s", lambda st: f"{st['request_throughput']:,.1f}"),
    ("tok/s", lambda st: f"{st['output_token_throughput']:,.0f}"),
    ("good/s", lambda st: f"{st['goodput']:,.1f}"),
    ("err%", lambda st: f"{st['error_rate'] * 100:.2f}"),
    ("TTFT p50", lambda st: _fmt(st["ttft_ms"], "p50")),
    ("p95", lambda st: _fmt(st["ttft_ms"], "p95")),
    ("p99", lambda st: _fmt(st["ttft_ms"], "p99")),
    ("TPOT p95", lambda st: _fmt(st["tpot_ms"], "p95")),
    ("ITL p95", lambda st: _fmt(st["itl_ms"], "p95")),
    ("E2E p99", lambda st: _fmt(st["e2e_ms"], "p99")),
    ("lag p99", lambda st: _fmt(st["schedule_lag_ms"], "p99")),
)


def table(rows: list[dict]) -> list[str]:
    """The figures as a table whose columns are as wide as their widest value, two spaces apart
    (fixed widths ran wide numbers together)."""
    cells = [[name for name, _ in COLUMNS]] + [[cell(st) for _, cell in COLUMNS] for st in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return [
        "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True)))
        for row in cells
    ]


def format_diagnosis(d: dict) -> str:
    """A failed preflight, for the console: what came back, what was sent, what to check."""
    lines = [f"error: {d['message']}"]
    if d.get("status"):
        lines.append(f"  status        {d['status']}  content-type {d.get('content_type') or '(none)'}")
        lines.append(f"  body          {d.get('body') or '(empty body)'}")
    lines.append(f"  hint          {d['hint']}")
    tried = "; ".join(
        f"{'+'.join(a['parts']) or 'no optional parts'}: {a['status'] or a['error_class']}"
        for a in d.get("attempts", [])
    )
    if tried:
        lines.append(f"  tried         {tried}")
    lines.append("  request as sent (credentials redacted):")
    lines.extend("    " + line for line in d["request"].splitlines())
    return "\n".join(lines)


def format_summary(result: ProbeResult) -> str:
    s = result.summary
    lines = [f"target {result.meta['target']}  model {result.meta['model']}  api {result.meta['api']}"]
    lines.extend(table([*s["stages"], s["overall"]]))
    lines.append("latencies in ms; TTFT/TPOT/ITL/E2E as defined in DESIGN.md (probe semantics)")
    if s["overall"]["errors"]:
        lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in s["overall"]["errors"].items()))
    lines.extend(f"  {line}" for line in format_error_details(s.get("error_details") or {}))
    cut = s.get("truncated") or {}
    if cut.get("count"):
        lines.append(
            f"cut off: {cut['count']} streams ended without a finish_reason (not counted as answers), "
            f"after {cut['output_tokens'].get('p50', 0):g} tokens (median)"
        )
    for dropped in result.meta.get("dropped_parts") or []:
        lines.append(f"note: sent without {dropped['part']}: the server refused it ({dropped['why']})")
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
        lines.append(
            "sweep: "
            + ", ".join(
                f"{st['offered_rate']:g}/s {'ok' if st['slo_ok'] and st['keeps_up'] else 'FAIL'}"
                for st in sweep["steps"]
            )
        )
        lines.append(f"highest rate meeting the SLOs: {sweep['max_rate_meeting_slo']} req/s")
    if result.server_metrics:
        sm = result.server_metrics
        lines.append(
            f"server metrics: {sm['scrapes']} scrapes, {len(sm['failures'])} failures, series: "
            + (", ".join(sorted(sm["series"])) or "none known")
        )
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
