"""Automatic checklist items: a rule over the latest probe summary or cost projection.

Pure Python. A rule is {"metric": name, "op": "<=" | "<" | ">=" | ">", "value": number | "budget"};
evaluating it gives pass / fail / pending and the figure that decided it, which the item shows.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
# Where each metric lives in a probe summary (DESIGN.md probe semantics) or the cost projection.
PROBE_METRICS = {
    "ttft_p95_ms": ("overall", "ttft_ms", "p95"),
    "tpot_p95_ms": ("overall", "tpot_ms", "p95"),
    "e2e_p99_ms": ("overall", "e2e_ms", "p99"),
    "error_rate": ("overall", "error_rate"),
    "output_token_throughput": ("overall", "output_token_throughput"),
    "slo_attainment": ("overall", "slo_attainment"),
}
COST_METRICS = {"projected_monthly_usd", "cost_per_1m_output_tokens_usd"}


@dataclass(frozen=True)
class Outcome:
    status: str  # "pass" | "fail" | "pending"
    figure: float | None
    explanation: str


def validate(rule: dict) -> None:
    if not isinstance(rule, dict) or set(rule) != {"metric", "op", "value"}:
        raise ValueError('a rule is {"metric", "op", "value"}')
    if rule["metric"] not in PROBE_METRICS and rule["metric"] not in COST_METRICS:
        known = ", ".join(sorted(PROBE_METRICS) + sorted(COST_METRICS))
        raise ValueError(f"unknown metric {rule['metric']!r}; known: {known}")
    if rule["op"] not in OPS:
        raise ValueError(f"op must be one of {', '.join(OPS)}")
    if rule["value"] != "budget" and not isinstance(rule["value"], int | float):
        raise ValueError('value must be a number or "budget"')


def _dig(data: dict | None, path: tuple):
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def evaluate(rule: dict, *, probe_summary: dict | None, cost: dict | None, budget: float | None) -> Outcome:
    """Pass or fail with the deciding figure; pending while the evidence does not exist yet.

    A probe whose client was saturated is not evidence about the server: pending, not pass.
    """
    validate(rule)
    metric, op, target = rule["metric"], rule["op"], rule["value"]
    if target == "budget":
        if budget is None:
            return Outcome("pending", None, "the project has no budget")
        target = budget
    if metric in PROBE_METRICS:
        if not probe_summary:
            return Outcome("pending", None, "no probe result yet")
        if probe_summary.get("client_saturated"):
            return Outcome("pending", None, "the latest probe was client-saturated: its latencies are not evidence")
        figure = _dig(probe_summary, PROBE_METRICS[metric])
    else:
        figure = (cost or {}).get(metric)
    if figure is None:
        return Outcome("pending", None, f"{metric} was not measured")
    ok = OPS[op](figure, target)
    return Outcome("pass" if ok else "fail", figure, f"{metric} = {figure:g} (must be {op} {target:g})")
