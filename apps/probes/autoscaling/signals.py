"""Which scraped metric should drive scaling: every gauge ranked by how early and how tightly it
tracks the latency breach of a step-load run (`rank_signals`), on the timeline's grid.
"""

from __future__ import annotations

import math
from bisect import bisect_left

from apps.probes.autoscaling.kpis import ADDITIVE, INF, NAN, _clean, breach_episodes
from apps.probes.engine.stats import percentile


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):  # ties share their average rank
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(xs: list[float], ys: list[float]) -> float:
    """Rank correlation; NaN when either side is constant or there are fewer than 3 pairs."""
    if len(xs) < 3:
        return NAN
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return NAN
    return sxy / math.sqrt(sxx * syy)


def rank_signals(
    tl: dict,
    *,
    step_up: float,
    slo_ttft_p95_ms: float,
    target_fraction: float = 0.7,
    lead_reference_s: float = 30.0,
    fp_margin_s: float | None = None,
) -> list[dict]:
    """Rank every scraped gauge by how early and how tightly it tracks the latency breach.

    Per signal (additive counts divided by available replicas when known: what an HPA
    AverageValue target sees), on the timeline's grid:
    - tightness = Spearman correlation with the rolling p95 TTFT over the run;
    - at_breach = the cut that best separates breached grid points (p95 > SLO) from healthy
      ones: "signal ≥ cut" maximising Youden's J = hit rate − false-alarm rate (`separation`);
      a signal that does not separate them (J ≤ 0) gets no threshold;
    - baseline = its median before the step; threshold = baseline +
      target_fraction·(at_breach − baseline): a target below the breach level, to scale before it;
    - lead_s = start of the first breach after the step − when the signal reached the threshold
      in the stretch leading into it (negative: only after the breach began; None: never);
    - false_positive_rate = share of healthy grid points (away from every breach by more than
      `fp_margin_s` before and one step after) with the signal at or above the threshold.
    score = 0.4·max(tightness, 0) + 0.2·max(separation, 0) + 0.2·min(max(lead, 0)/lead_reference_s, 1)
    + 0.2·(1 − false_positive_rate); a signal without a threshold scores on its correlation only.
    """
    t, p95, dt = tl["t"], tl["ttft_p95_ms"], tl["dt"]
    margin = fp_margin_s if fp_margin_s is not None else lead_reference_s
    all_episodes = breach_episodes(tl, slo_ttft_p95_ms)
    episodes = [e for e in all_episodes if e[1] > step_up]
    breach = max(episodes[0][0], step_up) if episodes else None
    available = tl["available"]
    ranked = []
    for name, raw in tl["signals"].items():
        per_replica = name in ADDITIVE and available is not None
        values = [
            (v / a if per_replica and a else v) if v is not None else None
            for v, a in zip(raw, available or [None] * len(raw), strict=True)
        ]
        pairs = [(v, p) for v, p in zip(values, p95, strict=True) if v is not None and p is not None]
        # an infinite p95 (failures) ranks above every finite one: fine for a rank correlation
        tight = spearman([a for a, _ in pairs], [b if b != INF else 1e18 for _, b in pairs])
        pre = sorted(v for x, v in zip(t, values, strict=True) if v is not None and x <= step_up)
        baseline = percentile(pre, 50) if pre else 0.0
        at_breach = threshold = lead = fp = None
        separation = NAN
        if breach is not None:
            at_breach, separation = best_cut([(v, p > slo_ttft_p95_ms) for v, p in pairs])
            if at_breach is not None and at_breach > baseline:
                threshold = baseline + target_fraction * (at_breach - baseline)
                if name in ADDITIVE:
                    threshold = max(threshold, 0.5)
                kb = min(bisect_left(t, breach - 1e-9), len(t) - 1)  # the grid point at the breach start
                lead = _lead(t, values, threshold, kb, breach)
        if threshold is not None:
            healthy = above = 0
            for x, v, p in zip(t, values, p95, strict=True):
                if v is None or p is None or p > slo_ttft_p95_ms:
                    continue
                if any(a - margin <= x <= b + dt for a, b in all_episodes):
                    continue
                healthy += 1
                above += v >= threshold
            fp = above / healthy if healthy else 0.0
        score = 0.4 * max(tight if tight == tight else 0.0, 0.0)
        if threshold is not None:
            score += 0.2 * max(separation, 0.0) + 0.2 * (1 - fp)
            score += 0.2 * min(max(lead or 0.0, 0.0) / lead_reference_s, 1.0) if lead_reference_s > 0 else 0.0
        ranked.append(
            {
                "signal": name,
                "per_replica": per_replica,
                "baseline": _clean(baseline, 4),
                "at_breach": _clean(at_breach, 4),
                "threshold": _clean(threshold, 4),
                "lead_s": _clean(lead),
                "separation": _clean(separation),
                "tightness": _clean(tight),
                "false_positive_rate": _clean(fp),
                "score": round(score, 4),
            }
        )
    ranked.sort(key=lambda r: (-r["score"], r["signal"]))
    return ranked


def best_cut(points: list[tuple[float, bool]]) -> tuple[float | None, float]:
    """(cut, J): the value c for which "signal ≥ c" best flags the breached points (Youden's J,
    hit rate − false-alarm rate); among equal J the highest cut. (None, NaN) without both kinds."""
    positives = sum(1 for _, bad in points if bad)
    negatives = len(points) - positives
    if not positives or not negatives:
        return None, NAN
    best, best_j = None, -INF
    hits = alarms = 0
    ordered = sorted(points, key=lambda p: -p[0])
    for i, (v, bad) in enumerate(ordered):
        hits += bad
        alarms += not bad
        if i + 1 < len(ordered) and ordered[i + 1][0] == v:
            continue  # a cut takes every point with this value
        j = hits / positives - alarms / negatives
        if j > best_j + 1e-12:
            best, best_j = v, j
    return (best, best_j) if best_j > 0 else (None, best_j)


def _lead(t: list[float], values: list, threshold: float, kb: int, breach: float) -> float | None:
    """Seconds the signal had been at or above `threshold` when the breach began (negative: it
    got there only after). A held value at grid time t was scraped at or before t, so the
    crossing is dated at the latest moment it can have happened."""
    if values[kb] is not None and values[kb] >= threshold:
        j = kb
        while j > 0 and values[j - 1] is not None and values[j - 1] >= threshold:
            j -= 1
        return breach - t[j]
    for j in range(kb + 1, len(t)):
        if values[j] is not None and values[j] >= threshold:
            return breach - t[j]
    return None
