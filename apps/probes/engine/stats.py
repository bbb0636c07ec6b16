"""Figures from records, exactly as DESIGN.md "Probe semantics" defines them.

Percentiles use linear interpolation between closest ranks (numpy's default). Latencies are
taken over successful requests whose *intended* send falls in the measurement window;
throughput and goodput count requests that *completed* in the window, divided by its length.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

from apps.probes.engine.records import ERROR_CLASSES, OK, TOKENS_COUNTED, TRUNCATED, LogHistogram, Records

PERCENTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class SLO:
    """Run-level targets; the latency ones double as per-request limits for goodput."""

    ttft_p95_ms: float | None = None
    tpot_p95_ms: float | None = None
    e2e_p99_ms: float | None = None
    error_rate: float | None = None  # a fraction: 0.01 = 1 %
    min_output_tps: float | None = None

    def request_ok(self, ttft_ms: float, tpot_ms: float, e2e_ms: float) -> bool:
        if self.ttft_p95_ms is not None and not ttft_ms <= self.ttft_p95_ms:
            return False
        if self.tpot_p95_ms is not None and tpot_ms == tpot_ms and tpot_ms > self.tpot_p95_ms:
            return False
        return self.e2e_p99_ms is None or e2e_ms <= self.e2e_p99_ms

    @property
    def empty(self) -> bool:
        return all(v is None for v in asdict(self).values())

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def parse(cls, text: str) -> SLO:
        """`ttft_p95=500ms,tpot_p95=50ms,e2e_p99=4s,error_rate=1%,min_output_tps=100`."""
        fields = {}
        names = {"ttft_p95": "ttft_p95_ms", "tpot_p95": "tpot_p95_ms", "e2e_p99": "e2e_p99_ms"}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, raw = part.partition("=")
            key, raw = key.strip(), raw.strip()
            if not sep or not raw:
                raise ValueError(f"SLO {part!r}: expected name=value")
            if key in names:
                fields[names[key]] = _duration_ms(raw, key)
            elif key == "error_rate":
                fields["error_rate"] = _fraction(raw)
            elif key == "min_output_tps":
                fields["min_output_tps"] = _number(raw, key)
            else:
                raise ValueError(f"unknown SLO {key!r}; known: ttft_p95, tpot_p95, e2e_p99, error_rate, min_output_tps")
        return cls(**fields)


def _number(raw: str, key: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"SLO {key}: {raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"SLO {key}: must be a finite number >= 0")
    return value


def _duration_ms(raw: str, key: str) -> float:
    m = re.fullmatch(r"([0-9.]+)\s*(ms|s)", raw)
    if not m:
        raise ValueError(f"SLO {key}: {raw!r} needs a unit, ms or s (e.g. 500ms)")
    return float(m[1]) * (1000 if m[2] == "s" else 1)


def _fraction(raw: str) -> float:
    value = _number(raw[:-1], "error_rate") / 100 if raw.endswith("%") else _number(raw, "error_rate")
    if value > 1:
        raise ValueError("error_rate is a fraction (0.01) or a percentage (1%), at most 100%")
    return value


def percentile(sorted_values: list[float], q: float) -> float:
    n = len(sorted_values)
    if n == 0:
        return math.nan
    pos = (n - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def distribution(values: list[float]) -> dict:
    values = sorted(v for v in values if v == v)
    n = len(values)
    out = {"n": n}
    if n == 0:
        return out
    for q in PERCENTILES:
        out[f"p{q}"] = round(percentile(values, q), 3)
    if n >= 1000:
        out["p99.9"] = round(percentile(values, 99.9), 3)
    out["mean"] = round(sum(values) / n, 3)
    out["max"] = round(values[-1], 3)
    return out


def histogram_distribution(hist: LogHistogram, scale: float = 1000.0) -> dict:
    n = hist.total
    out = {"n": n}
    if n == 0:
        return out
    for q in PERCENTILES:
        out[f"p{q}"] = round(hist.percentile(q) * scale, 3)
    if n >= 1000:
        out["p99.9"] = round(hist.percentile(99.9) * scale, 3)
    return out


@dataclass(frozen=True)
class Window:
    stage: int
    label: str
    start: float  # seconds from the run origin
    end: float

    @property
    def length(self) -> float:
        return max(self.end - self.start, 0.0)


def planned_spans(durations_and_labels: list[tuple[float, str]]) -> list[tuple[float, float, str]]:
    """(start, end, label) of stages run back to back from 0."""
    spans, t = [], 0.0
    for duration, label in durations_and_labels:
        spans.append((t, t + duration, label))
        t += duration
    return spans


def stage_windows(spans: list[tuple[float, float, str]], warmup: float, cooldown: float) -> list[Window]:
    """Measurement windows of stages that ran over `spans`: warm-up is cut from the run's start,
    cool-down from its end."""
    if not spans:
        return []
    windows = [Window(i, label, start, end) for i, (start, end, label) in enumerate(spans)]
    run_start, run_end = spans[0][0] + warmup, spans[-1][1] - cooldown
    return [
        Window(w.stage, w.label, max(w.start, run_start), max(min(w.end, run_end), max(w.start, run_start)))
        for w in windows
    ]


def summarize_window(records: Records, window: Window, slo: SLO, itl: LogHistogram | None) -> dict:
    """All figures of one stage (or the whole run when window.stage == -1)."""
    ttft, e2e, tpot, ntpot, lag = [], [], [], [], []
    errors = [0] * len(ERROR_CLASSES)
    attained = considered = 0
    completed = good_completed = out_tokens_completed = 0
    estimated = 0
    start, end, stage = window.start, window.end, window.stage
    r_stage, r_int, r_sent, r_first, r_last = records.stage, records.intended, records.sent, records.first, records.last
    r_out, r_err, r_src = records.output_tokens, records.error, records.token_source
    for i in range(len(records)):
        if stage >= 0 and r_stage[i] != stage:
            continue
        err = r_err[i]
        sent, first, last, n_out = r_sent[i], r_first[i], r_last[i], r_out[i]
        in_window = start <= r_int[i] < end
        req_ok = False
        if err == OK:
            t_ms = (first - sent) * 1000
            e_ms = (last - sent) * 1000
            p_ms = (e_ms - t_ms) / (n_out - 1) if n_out > 1 else math.nan
            req_ok = slo.request_ok(t_ms, p_ms, e_ms)
            if in_window:
                ttft.append(t_ms)
                e2e.append(e_ms)
                if n_out > 1:
                    tpot.append(p_ms)
                if n_out:
                    ntpot.append(e_ms / n_out)
                if r_src[i] == TOKENS_COUNTED:
                    estimated += 1
            if start <= last < end:
                completed += 1
                out_tokens_completed += n_out
                good_completed += req_ok
        if in_window:
            considered += 1
            attained += req_ok
            errors[err] += 1
            if sent == sent:
                lag.append((sent - r_int[i]) * 1000)
    length = window.length or math.nan
    n_errors = sum(errors) - errors[OK]
    return {
        "stage": window.label,
        "window_s": round(window.length, 3),
        "requests": considered,
        "completed_in_window": completed,
        "errors": {ERROR_CLASSES[c]: n for c, n in enumerate(errors) if n and c != OK},
        "error_rate": round(n_errors / considered, 5) if considered else 0.0,
        "request_throughput": round(completed / length, 3) if length == length else 0.0,
        "output_token_throughput": round(out_tokens_completed / length, 2) if length == length else 0.0,
        "goodput": round(good_completed / length, 3) if length == length else 0.0,
        "slo_attainment": round(attained / considered, 5) if considered else None,
        "token_counts_estimated": estimated,
        "ttft_ms": distribution(ttft),
        "tpot_ms": distribution(tpot),
        "itl_ms": histogram_distribution(itl) if itl is not None else {"n": 0},
        "ntpot_ms": distribution(ntpot),
        "e2e_ms": distribution(e2e),
        "schedule_lag_ms": distribution(lag),
    }


def slo_checks(summary: dict, slo: SLO) -> list[dict]:
    """The run-level verdict: one line per target, with the measured figure."""
    checks = []

    def add(name, actual, target, ok_if_le=True):
        # No measurement (nothing succeeded) is a miss, not a pass.
        ok = actual is not None and (actual <= target if ok_if_le else actual >= target)
        checks.append({"slo": name, "target": target, "actual": actual, "ok": bool(ok)})

    if slo.ttft_p95_ms is not None:
        add("ttft_p95_ms", summary["ttft_ms"].get("p95"), slo.ttft_p95_ms)
    if slo.tpot_p95_ms is not None:
        add("tpot_p95_ms", summary["tpot_ms"].get("p95"), slo.tpot_p95_ms)
    if slo.e2e_p99_ms is not None:
        add("e2e_p99_ms", summary["e2e_ms"].get("p99"), slo.e2e_p99_ms)
    if slo.error_rate is not None:
        # No request in the window is no evidence of a low error rate.
        add("error_rate", None if summary.get("requests") == 0 else summary["error_rate"], slo.error_rate)
    if slo.min_output_tps is not None:
        add("min_output_tps", summary["output_token_throughput"], slo.min_output_tps, ok_if_le=False)
    return checks


def error_details(records: Records) -> dict:
    """Per error class over the whole run: how many, by HTTP status, and up to 3 distinct sample
    bodies (redacted when recorded), so "400 x 338" comes with what the server said."""
    counts: dict[int, dict[int, int]] = {}
    for err, status in zip(records.error, records.status, strict=True):
        if err != OK:
            by_status = counts.setdefault(err, {})
            by_status[status] = by_status.get(status, 0) + 1
    return {
        ERROR_CLASSES[err]: {
            "count": sum(by_status.values()),
            "statuses": {str(code): n for code, n in sorted(by_status.items()) if code},
            "samples": records.samples.get(err, []),
        }
        for err, by_status in sorted(counts.items())
    }


def truncation(records: Records) -> dict:
    """Cut-off streams: how many, and how many tokens had arrived when each was cut."""
    tokens = [n for err, n in zip(records.error, records.output_tokens, strict=True) if err == TRUNCATED]
    return {"count": len(tokens), "output_tokens": distribution(tokens)}


def format_error_details(details: dict) -> list[str]:
    """One line per class and status: `4xx: 400 x 338: {"detail": ...}`."""
    lines = []
    for name, d in details.items():
        statuses = ", ".join(f"{code} x {n}" for code, n in d["statuses"].items()) or f"x {d['count']}"
        sample = d["samples"][0]["body"] if d["samples"] else ""
        lines.append(f"{name}: {statuses}" + (f": {sample}" if sample else ""))
    return lines


def summarize(
    records: Records,
    windows: list[Window],
    slo: SLO,
    *,
    loop_lag_ms: list[float] | None = None,
    saturation_threshold_ms: float = 5.0,
) -> dict:
    """Per-stage and overall figures, the SLO verdict and the client-saturation check."""
    stages = [summarize_window(records, w, slo, records.itl.get(w.stage)) for w in windows]
    all_itl = LogHistogram()
    for hist in records.itl.values():
        all_itl.merge(hist)
    overall_window = Window(-1, "overall", min(w.start for w in windows), max(w.end for w in windows))
    overall = summarize_window(records, overall_window, slo, all_itl)
    if len(windows) > 1:
        # Throughput over the union of the stage windows, not the gaps between them.
        length = sum(w.length for w in windows) or math.nan
        overall["window_s"] = round(sum(w.length for w in windows), 3)
        overall["request_throughput"] = round(sum(s["completed_in_window"] for s in stages) / length, 3)
        overall["output_token_throughput"] = round(
            sum(s["output_token_throughput"] * w.length for s, w in zip(stages, windows, strict=True)) / length, 2
        )
        overall["goodput"] = round(
            sum(s["goodput"] * w.length for s, w in zip(stages, windows, strict=True)) / length, 3
        )
    lag_p99 = overall["schedule_lag_ms"].get("p99", 0.0)
    loop = distribution(loop_lag_ms or [])
    worst = max(lag_p99, loop.get("p99", 0.0))
    saturated = worst > saturation_threshold_ms
    checks = slo_checks(overall, slo)
    return {
        "overall": overall,
        "stages": stages,
        "slo": slo.to_dict(),
        "slo_checks": checks,
        "slo_met": all(c["ok"] for c in checks) if checks else None,
        "event_loop_lag_ms": loop,
        "client_saturated": saturated,
        "saturation_threshold_ms": saturation_threshold_ms,
        "latencies_trustworthy": not saturated,
        "token_counts_estimated": overall["token_counts_estimated"] > 0,
        "error_details": error_details(records),
        "truncated": truncation(records),
    }


def summarize_canary(canary: Records, windows: list[Window], slo: SLO) -> dict:
    """The canary's figures over the whole run, warm-up and cool-down included: it measures what a
    tiny request waits for at every moment, so no part of the run is excluded."""
    end = max([w.end for w in windows] + [max(canary.intended, default=0.0) + 1e-6])
    stage = canary.stage[0] if len(canary) else 0
    return summarize_window(canary, Window(stage, "canary", 0.0, end), slo, canary.itl.get(stage))
