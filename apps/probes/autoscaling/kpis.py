"""The timeline and the KPIs of a step-load run: T_decide, T_ready, T_recover, peak latency,
SLO-violation seconds, backlog, flaps and over-provisioning (`autoscaling_kpis`), and the
run's verdict for the go/no-go (`recovery_verdict`).

Inputs are per-request arrays (or the engine's `Records`) and the scraped gauge series
(`{name: [(t, value), ...]}`, times in seconds from the run start, as MetricsScraper stores
them; JSON round-trips turn the tuples into lists, which works the same).

Everything is put on one time grid of `dt`-second bins. A grid point t stands for the bin
ending at t; rolling figures at t cover (t - window, t]. Latency is keyed by *send* time: the
rolling p95 at t is what requests sent in the last `window` seconds experienced, which lines
up with the queue they met when they were sent (keying by first-token time would make the
latency look late against every gauge). Requests that failed count as misses (infinite TTFT),
as SLO attainment does (DESIGN.md).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import dataclass

from apps.probes.engine.records import OK, Records
from apps.probes.engine.stats import percentile

INF = math.inf
NAN = math.nan

DESIRED = ("kube_horizontalpodautoscaler_status_desired_replicas", "simulator_replicas_desired")
AVAILABLE = ("kube_deployment_status_replicas_available", "simulator_replicas_available")
WAITING = (
    "vllm:num_requests_waiting",
    "tgi_queue_size",
    "jetstream_prefill_backlog_size",
    "llamacpp:requests_deferred",
)
RUNNING = ("vllm:num_requests_running", "tgi_batch_current_size", "llamacpp:requests_processing")
KV_CACHE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
# Counts add up across replicas (the HPA sees them per replica: AverageValue); the rest are
# fractions or percentages already averaged over the fleet (Value).
ADDITIVE = frozenset(WAITING + RUNNING)
REPLICA_SERIES = frozenset(DESIRED + AVAILABLE)


@dataclass(frozen=True)
class RequestArrays:
    """One entry per request; times in seconds from the run start, NaN when it did not happen."""

    intended: Sequence[float]  # scheduled send time: what was offered, when
    sent: Sequence[float]
    ttft_ms: Sequence[float]
    done: Sequence[float]  # last token time
    ok: Sequence[bool]

    def __len__(self) -> int:
        return len(self.intended)


def request_arrays(records: Records) -> RequestArrays:
    """The columns the analysis needs, from the engine's records."""
    ttft = [(f - s) * 1000 for f, s in zip(records.first, records.sent, strict=True)]
    return RequestArrays(records.intended, records.sent, ttft, records.last, [e == OK for e in records.error])


# --- small helpers ---------------------------------------------------------------------------------


def _first(series: dict, names: Sequence[str]) -> tuple[str | None, list]:
    for name in names:
        if series.get(name):
            return name, series[name]
    return None, []


def _hold(points: list, grid: list[float]) -> list[float | None]:
    """Sample-and-hold onto the grid: the last scraped value at or before each grid time."""
    out: list[float | None] = []
    j, n, current = 0, len(points), None
    for t in grid:
        while j < n and points[j][0] <= t + 1e-9:
            current = float(points[j][1])
            j += 1
        out.append(current)
    return out


def _rolling_sum(counts: list[int], w: int) -> list[int]:
    out, acc = [], 0
    for i, c in enumerate(counts):
        acc += c
        if i >= w:
            acc -= counts[i - w]
        out.append(acc)
    return out


def _percentile(sorted_values: list[float], q: float) -> float:
    """stats.percentile, except that a failure (inf) next to the rank gives inf, not NaN (inf·0)."""
    n = len(sorted_values)
    pos = (n - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    if sorted_values[hi] == INF:
        return INF if pos > lo or sorted_values[lo] == INF else sorted_values[lo]
    return percentile(sorted_values, q)


def _clean(x: float | None, digits: int = 3) -> float | None:
    if x is None or x != x or x in (INF, -INF):
        return None
    return round(x, digits)


def direction_changes(values: list[float | None]) -> int:
    """How often a stepwise series reverses direction (1→3→2→3 reverses twice)."""
    last = None
    direction = 0
    changes = 0
    for v in values:
        if v is None:
            continue
        if last is not None and v != last:
            d = 1 if v > last else -1
            if direction and d != direction:
                changes += 1
            direction = d
        last = v
    return changes


def count_flaps(points: list, boundaries: Sequence[float]) -> int:
    """Direction reversals of a replica series, counted within each load phase separately.

    A step-load run expects flat, then up, then down: the one reversal at the step down is the
    load's, not a flap. Phases are split at `boundaries` (step up, step down); any reversal
    inside a phase (up-down-up while the load is held, down-up after the step down) is a flap.
    """
    edges = [-INF, *sorted(boundaries), INF]
    total = 0
    for lo, hi in zip(edges, edges[1:], strict=False):
        # A phase starts from the value in force at its start, so a change right at the
        # boundary is compared with the phase before.
        before = [v for t, v in points if t < lo]
        inside = [v for t, v in points if lo <= t < hi]
        total += direction_changes(([before[-1]] if before else []) + inside)
    return total


# --- the timeline ----------------------------------------------------------------------------------


def timeline(requests: RequestArrays, series: dict, *, dt: float = 1.0, window: float = 10.0) -> dict:
    """Everything the chart draws, on one time axis (`t`, bin ends, seconds from start).

    Rates are rolling over `window` (req/s); `ttft_p95_ms`/`ttft_p99_ms` are rolling over the
    requests *sent* in the window (None where none were sent); `backlog` is requests offered
    minus requests completed (ok), at each t; gauges are held from their last scrape (None
    before the first). `signals` holds every non-replica gauge for the ranking.
    """
    if dt <= 0 or window < dt:
        raise ValueError("need dt > 0 and window >= dt")
    n_req = len(requests)
    end = 0.0
    for col in (requests.intended, requests.done):
        for v in col:
            if v == v and v > end:
                end = v
    for points in series.values():
        if points and points[-1][0] > end:
            end = points[-1][0]
    n = max(1, math.ceil(end / dt - 1e-9))
    grid = [round((k + 1) * dt, 9) for k in range(n)]
    w = max(1, round(window / dt))

    offered = [0] * n
    completed = [0] * n
    by_bin: list[list[float]] = [[] for _ in range(n)]
    for i in range(n_req):
        a = requests.intended[i]
        if a == a:
            offered[min(int(a / dt), n - 1)] += 1
        ok = requests.ok[i]
        d = requests.done[i]
        if ok and d == d:
            completed[min(int(d / dt), n - 1)] += 1
        s = requests.sent[i]
        if s != s:
            s = a
        if s == s:
            ttft = requests.ttft_ms[i] if ok else INF
            if ttft == ttft:
                by_bin[min(int(s / dt), n - 1)].append(ttft)

    p95: list[float | None] = []
    p99: list[float | None] = []
    window_values: list[float] = []
    for k in range(n):
        for v in by_bin[k]:
            insort(window_values, v)
        if k >= w:
            for v in by_bin[k - w]:
                del window_values[bisect_left(window_values, v)]
        if window_values:
            p95.append(_percentile(window_values, 95))
            p99.append(_percentile(window_values, 99))
        else:
            p95.append(None)
            p99.append(None)

    span = [min(k + 1, w) * dt for k in range(n)]  # the first bins' windows are shorter
    offered_rps = [c / s for c, s in zip(_rolling_sum(offered, w), span, strict=True)]
    completed_rps = [c / s for c, s in zip(_rolling_sum(completed, w), span, strict=True)]
    backlog, acc = [], 0
    for o, c in zip(offered, completed, strict=True):
        acc += o - c
        backlog.append(acc)

    desired_name, desired = _first(series, DESIRED)
    available_name, available = _first(series, AVAILABLE)
    waiting_name, waiting = _first(series, WAITING)
    running_name, running = _first(series, RUNNING)
    kv_name, kv = _first(series, KV_CACHE)
    signals = {name: _hold(points, grid) for name, points in sorted(series.items()) if name not in REPLICA_SERIES}
    return {
        "dt": dt,
        "window_s": window,
        "t": grid,
        "offered_rps": offered_rps,
        "completed_rps": completed_rps,
        "ttft_p95_ms": p95,
        "ttft_p99_ms": p99,
        "backlog": backlog,
        "waiting": _hold(waiting, grid) if waiting else None,
        "running": _hold(running, grid) if running else None,
        "kv_cache": _hold(kv, grid) if kv else None,
        "desired": _hold(desired, grid) if desired else None,
        "available": _hold(available, grid) if available else None,
        "names": {
            "waiting": waiting_name,
            "running": running_name,
            "kv_cache": kv_name,
            "desired": desired_name,
            "available": available_name,
        },
        "signals": signals,
    }


def timeline_json(tl: dict, digits: int = 3) -> dict:
    """The timeline for storage and the chart: floats rounded, and a rolling percentile made of
    failures (inf) written as None with its time listed in `ttft_failed_t`."""

    def col(values):
        if values is None:
            return None
        return [None if v is None or v != v or v == INF else round(v, digits) for v in values]

    out = {k: v for k, v in tl.items() if k not in ("signals",)}
    for key in (
        "offered_rps",
        "completed_rps",
        "ttft_p95_ms",
        "ttft_p99_ms",
        "waiting",
        "running",
        "kv_cache",
        "canary_ttft_p95_ms",
    ):
        out[key] = col(tl.get(key))
    out["signals"] = {name: col(values) for name, values in tl["signals"].items()}
    out["ttft_failed_t"] = [t for t, p in zip(tl["t"], tl["ttft_p95_ms"], strict=True) if p == INF]
    return out


# --- KPIs ------------------------------------------------------------------------------------------


def _value_at(points: list, t: float) -> float | None:
    value = None
    for pt, v in points:
        if pt > t + 1e-9:
            break
        value = float(v)
    return value


def _first_rise(points: list, step_up: float) -> tuple[float | None, float | None]:
    """(time, value) of the first scrape at or after `step_up` above the value in force at the step."""
    base = _value_at(points, step_up)
    if base is None:
        base = float(points[0][1]) if points else None
    for t, v in points:
        if t >= step_up and base is not None and v > base:
            return t, base
    return None, base


def breach_episodes(tl: dict, slo_ms: float) -> list[tuple[float, float]]:
    """(start, end) of each stretch where the rolling p95 TTFT is above the SLO (bin ends)."""
    out = []
    start = None
    t_prev = 0.0
    for t, p in zip(tl["t"], tl["ttft_p95_ms"], strict=True):
        bad = p is not None and p > slo_ms
        if bad and start is None:
            start = t - tl["dt"]
        elif not bad and start is not None and p is not None:
            out.append((start, t_prev))
            start = None
        t_prev = t
    if start is not None:
        out.append((start, t_prev))
    return out


def capacity_rises(tl: dict, *, after: float = 0.0, rise: float = 0.25, flat: float = 0.15) -> list[dict]:
    """Capacity changes inferred from the completed-rate ceiling (for runs without replica gauges).

    A ceiling is a window in which the rolling completed rate is flat (max ≤ min·(1+flat)) while
    clearly below the offered rate (< 85 %): the server is saturated, so that rate is its
    capacity. A rise is the first later point where the completed rate exceeds that ceiling by
    `rise`; the next ceiling is looked for after it. The rolling window delays a detected rise
    by up to ~window·rise/(new−old) seconds after the real one.
    """
    t, comp, off = tl["t"], tl["completed_rps"], tl["offered_rps"]
    w = max(1, round(tl["window_s"] / tl["dt"]))
    out = []
    ceiling = None
    for k in range(len(t)):
        if t[k] < after:
            continue
        if ceiling is not None and comp[k] > ceiling * (1 + rise):
            out.append({"t": t[k], "ceiling_rps": round(ceiling, 3)})
            ceiling = None
            continue
        lo = k - w + 1
        if ceiling is None and lo >= 0 and t[lo] >= after:
            stretch = comp[lo : k + 1]
            low, high = min(stretch), max(stretch)
            offered = sum(off[lo : k + 1]) / w
            if low > 0 and high <= low * (1 + flat) and sum(stretch) / w < 0.85 * offered:
                ceiling = sum(stretch) / w
    return out


def backlog_area(requests: RequestArrays, t0: float, t1: float) -> float:
    """∫ (offered − completed) dt over [t0, t1], in request·s: each completed request adds the part
    of its [intended, done] span inside the interval (Little's law, exact). Failed requests are
    left out: the records do not say when a failure left the system."""
    area = 0.0
    for a, d, ok in zip(requests.intended, requests.done, requests.ok, strict=True):
        if not ok or a != a or d != d:
            continue
        lo, hi = max(a, t0), min(d, t1)
        if hi > lo:
            area += hi - lo
    return area


def autoscaling_kpis(
    requests: RequestArrays,
    series: dict,
    *,
    step_up: float,
    step_down: float | None,
    slo_ttft_p95_ms: float,
    window: float = 10.0,
    stay: float = 60.0,
    dt: float = 1.0,
    replica_capacity_rps: float | None = None,
    tl: dict | None = None,
) -> dict:
    """The autoscaling-response KPIs (DESIGN.md) of one step-load run (seconds from the step up unless said).

    - t_decide: step up → first desired-replicas scrape above its value at the step.
    - t_ready: step up → first available-replicas scrape above its value at the step;
      t_ready_full → available first reaching its highest value before the step down.
    - t_recover: step up → the first time after the first breach from which the rolling p95 TTFT
      stays ≤ SLO for `stay` seconds (bins without requests do not break it). 0 when the SLO was
      never breached after the step; None when it never recovers within the data.
    - ttft_p99_peak_ms: highest rolling p99 in [step up, recovery] (to the step down, or the
      end, when it did not recover).
    - slo_violation_s: seconds of the whole run with rolling p95 > SLO.
    - backlog_area_req_s: ∫ (offered − completed) dt from the step up to the step down (or end).
    - flaps: direction reversals of desired/available within a load phase (count_flaps).
    - overprovisioned_replica_minutes: ∫ max(0, available − needed) dt from the step down to the
      end, needed = ceil(offered rate after the step down / per-replica capacity); capacity is
      given or estimated as the median completed rate per available replica while requests
      waited (saturated), else the highest while any were served.
    Without replica gauges: replica_metrics False, a note, and t_ready inferred from the first
    rise of the completed-rate ceiling (capacity_rises).
    """
    tl = tl or timeline(requests, series, dt=dt, window=window)
    t, p95, p99 = tl["t"], tl["ttft_p95_ms"], tl["ttft_p99_ms"]
    end = t[-1]
    hold_end = step_down if step_down is not None else end
    notes: list[str] = []
    _, desired = _first(series, DESIRED)
    _, available = _first(series, AVAILABLE)
    replica_metrics = bool(desired or available)
    kpis: dict = {
        "step_up_s": step_up,
        "step_down_s": step_down,
        "slo_ttft_p95_ms": slo_ttft_p95_ms,
        "window_s": window,
        "stay_s": stay,
        "replica_metrics": replica_metrics,
    }

    # replicas: decide and ready
    t_decide = t_ready = t_ready_full = None
    if desired:
        at, base = _first_rise(desired, step_up)
        kpis["replicas_desired_at_step"] = base
        kpis["replicas_desired_max"] = max(v for _, v in desired)
        if at is not None:
            t_decide = at - step_up
    else:
        notes.append("No desired-replicas gauge: T_decide cannot be measured.")
    if available:
        at, base = _first_rise(available, step_up)
        kpis["replicas_available_at_step"] = base
        if at is not None:
            t_ready = at - step_up
        held = [(pt, v) for pt, v in available if step_up <= pt <= hold_end]
        if held:
            top = max(v for _, v in held)
            if base is None or top > base:
                t_ready_full = next(pt for pt, v in held if v == top) - step_up
    elif desired:
        notes.append("No available-replicas gauge: T_ready cannot be measured.")
    rises = []
    if not replica_metrics:
        notes.append(
            "No replica metrics were scraped: T_decide is unknown and T_ready is inferred from the "
            "completed-rate ceiling (the first time the saturated throughput rose after the step)."
        )
        rises = capacity_rises(tl, after=step_up)
        if rises:
            t_ready = rises[0]["t"] - step_up
    kpis.update(
        t_decide_s=_clean(t_decide),
        t_ready_s=_clean(t_ready),
        t_ready_full_s=_clean(t_ready_full),
        t_ready_inferred=not replica_metrics,
        capacity_rises=rises,
    )

    # recovery
    episodes = breach_episodes(tl, slo_ttft_p95_ms)
    after_step = [e for e in episodes if e[1] > step_up]
    t_recover = None
    recovered_at = None
    if not after_step:
        t_recover = 0.0
        recovered_at = step_up
    else:
        first_breach = max(after_step[0][0], step_up)
        k0 = next(k for k, x in enumerate(t) if x > first_breach)
        for k in range(k0, len(t)):
            if p95[k] is None or p95[k] > slo_ttft_p95_ms:
                continue
            start = t[k] - tl["dt"]
            if start + stay > end + 1e-9:
                break  # not enough data left to see it stay healthy
            j = k
            while j < len(t) and t[j] <= start + stay + 1e-9 and (p95[j] is None or p95[j] <= slo_ttft_p95_ms):
                j += 1
            if j == len(t) or t[j] > start + stay + 1e-9:  # healthy for the whole stay
                recovered_at = start
                t_recover = start - step_up
                break
        if t_recover is None:
            notes.append(f"The rolling p95 TTFT never stayed under the SLO for {stay:g} s after the breach.")
    kpis["breached"] = bool(after_step)
    kpis["t_recover_s"] = _clean(t_recover)
    kpis["recovered_before_step_down"] = (
        recovered_at is not None and (step_down is None or recovered_at <= step_down) if after_step else True
    )
    transient_end = recovered_at if after_step and recovered_at is not None else hold_end
    peak = [p for x, p in zip(t, p99, strict=True) if p is not None and step_up < x <= max(transient_end, step_up)]
    kpis["ttft_p99_peak_ms"] = _clean(max(peak)) if peak else None
    if peak and max(peak) == INF:
        notes.append("The peak p99 TTFT of the transient is a failed request (no first token): no finite figure.")
    kpis["slo_violation_s"] = round(sum(tl["dt"] for p in p95 if p is not None and p > slo_ttft_p95_ms), 3)
    kpis["breach_episodes"] = [[round(a, 3), round(b, 3)] for a, b in episodes]
    kpis["backlog_area_req_s"] = round(backlog_area(requests, step_up, hold_end), 3)
    kpis["backlog_peak"] = max(tl["backlog"]) if tl["backlog"] else 0

    # flaps
    bounds = [step_up] + ([step_down] if step_down is not None else [])
    kpis["flaps_desired"] = count_flaps(desired, bounds) if desired else None
    kpis["flaps_available"] = count_flaps(available, bounds) if available else None
    kpis["replica_flaps"] = max(x for x in (kpis["flaps_desired"], kpis["flaps_available"], 0) if x is not None)

    # over-provisioning after the step down
    kpis.update(_overprovisioning(tl, series, step_up, step_down, replica_capacity_rps, notes))
    kpis["notes"] = notes
    kpis["marks"] = {
        "step_up": step_up,
        "step_down": step_down,
        "decide": _clean(step_up + t_decide) if t_decide is not None else None,
        "ready": _clean(step_up + t_ready) if t_ready is not None else None,
        "recover": _clean(recovered_at) if after_step else None,
    }
    return kpis


def recovery_verdict(kpis: dict) -> tuple[bool, str]:
    """(passed, why) of an autoscaling run for the go/no-go. It breaches on purpose when the load
    steps up, so it passes when latency came back under the SLO, and stayed, while the step was
    still held: a recovery that only came with the step down shows the load going away, not the
    deployment catching up."""
    if kpis.get("t_recover_s") is None:
        return False, "latency did not recover after the step"
    if not kpis.get("recovered_before_step_down", True):
        return False, f"latency recovered only after the step down ({kpis['t_recover_s']:g} s after the step)"
    return True, f"latency recovered {kpis['t_recover_s']:g} s after the step"


def canary_series(canary: RequestArrays, n: int, *, dt: float, window: float) -> list[float | None]:
    """The canary's rolling p95 TTFT on the run's grid of `n` bins (None where none was sent)."""
    p95 = timeline(canary, {}, dt=dt, window=window)["ttft_p95_ms"][:n]
    return p95 + [None] * (n - len(p95))


def canary_kpis(canary: RequestArrays, tl: dict, *, step_up: float, step_down: float | None) -> dict:
    """What a tiny request waited for: its p95 TTFT before the step (the floor), its worst rolling
    p95 during the step (the queueing every user saw), and the canary requests that failed."""
    hold_end = step_down if step_down is not None else tl["t"][-1]
    before = sorted(
        f for f, a, ok in zip(canary.ttft_ms, canary.intended, canary.ok, strict=True) if ok and f == f and a < step_up
    )
    during = [
        p for x, p in zip(tl["t"], tl["canary_ttft_p95_ms"], strict=True) if p is not None and step_up < x <= hold_end
    ]
    peak = max(during) if during else None
    return {
        "canary_requests": len(canary),
        "canary_failed": sum(1 for ok in canary.ok if not ok),
        "canary_ttft_p95_base_ms": _clean(_percentile(before, 95)) if before else None,
        "canary_ttft_p95_peak_ms": None if peak is None or peak == INF else _clean(peak),
    }


def _overprovisioning(tl, series, step_up, step_down, capacity, notes) -> dict:
    _, available = _first(series, AVAILABLE)
    replicas = available or _first(series, DESIRED)[1]
    out = {
        "replica_capacity_rps": None,
        "replicas_needed_after_step_down": None,
        "overprovisioned_replica_minutes": None,
        "scaled_down_s": None,
    }
    if step_down is None or not replicas:
        return out
    t, comp = tl["t"], tl["completed_rps"]
    if capacity is None:
        held = _hold(replicas, t)
        waiting = tl["waiting"]
        candidates = [
            (c / r, bool(waiting and waiting[k]))
            for k, (x, c, r) in enumerate(zip(t, comp, held, strict=True))
            if step_up <= x <= step_down and r
        ]
        saturated = sorted(v for v, busy in candidates if busy)
        # While requests wait the completed rate is the capacity: the median resists bunched
        # completions; without waiting the rates understate it, so the highest is the best guess.
        if saturated:
            capacity = percentile(saturated, 50)
        else:
            capacity = max((v for v, _ in candidates), default=None)
        if capacity and not saturated:
            notes.append("Per-replica capacity estimated while nothing waited: needed replicas may be overstated.")
    if not capacity:
        return out
    w = max(1, round(tl["window_s"] / tl["dt"]))
    # The offered rate once a full window lies after the step down.
    post = [o for x, o in zip(t, tl["offered_rps"], strict=True) if x >= step_down + w * tl["dt"]]
    if not post:
        post = [o for x, o in zip(t, tl["offered_rps"], strict=True) if x > step_down]
    offered_after = sum(post) / len(post) if post else 0.0
    needed = max(1, math.ceil(offered_after / capacity - 1e-9))
    area = 0.0
    scaled_down = None
    pts = [(pt, float(v)) for pt, v in replicas]
    end = t[-1]
    for i, (pt, v) in enumerate(pts):
        nxt = pts[i + 1][0] if i + 1 < len(pts) else end
        lo, hi = max(pt, step_down), min(nxt, end)
        if hi > lo:
            area += max(0.0, v - needed) * (hi - lo)
        if scaled_down is None and pt >= step_down and v <= needed:
            scaled_down = pt - step_down
    if scaled_down is None and _value_at(pts, step_down) is not None and _value_at(pts, step_down) <= needed:
        scaled_down = 0.0
    if scaled_down is None:
        notes.append("Replicas had not come down to what the lower load needs by the end: the figure is a floor.")
    out.update(
        replica_capacity_rps=round(capacity, 3),
        offered_rps_after_step_down=round(offered_after, 3),
        replicas_needed_after_step_down=needed,
        overprovisioned_replica_minutes=round(area / 60, 4),
        scaled_down_s=_clean(scaled_down),
    )
    return out
