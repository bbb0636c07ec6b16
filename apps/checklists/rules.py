"""Automatic checklist items: a rule over a probe run's summary or the cost projection.

Pure Python. A rule is {"metric": name, "op": "<=" | "<" | ">=" | ">", "value": number | "budget"}
plus, for probe metrics, the kind of run it reads: {"run": "steady" | "autoscaling" | "tenants"}.
Without "run", latency, error-rate and generation-speed metrics read the newest steady run (any
plan that is neither an autoscaling nor a noisy-neighbour one: constant, stages, sweep...),
scaling metrics the newest autoscaling run and tenant isolation the newest noisy-neighbour run,
so finishing an autoscaling run, which breaches its SLO on purpose, never judges a latency item.
Evaluating a rule gives pass / fail / pending, the figure that decided it, and a link to the run
it read.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass

OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
STEADY, AUTOSCALING, TENANTS = "steady", "autoscaling", "tenants"
RUN_KINDS = (STEADY, AUTOSCALING, TENANTS)
# Where each metric lives in a probe summary (DESIGN.md probe semantics) or the cost projection.
PROBE_METRICS = {
    "ttft_p95_ms": ("overall", "ttft_ms", "p95"),
    "tpot_p95_ms": ("overall", "tpot_ms", "p95"),
    "e2e_p99_ms": ("overall", "e2e_ms", "p99"),
    "error_rate": ("overall", "error_rate"),
    "output_token_throughput": ("overall", "output_token_throughput"),
    "slo_attainment": ("overall", "slo_attainment"),
    # Scaling metrics: only an autoscaling run measures them (apps/probes/autoscaling/kpis.py).
    "recovery_s": ("autoscaling", "kpis", "t_recover_s"),
    "scale_decision_s": ("autoscaling", "kpis", "t_decide_s"),
    "slo_violation_s": ("autoscaling", "kpis", "slo_violation_s"),
    # 1 when the quiet tenants kept their latency and errors through a noisy neighbour's burst, 0 when
    # not: only a noisy-neighbour run measures it (apps/probes/engine/tenants.py).
    "tenants_isolated": ("tenants", "isolated"),
}
SCALING_METRICS = {"recovery_s", "scale_decision_s", "slo_violation_s"}
TENANT_METRICS = {"tenants_isolated"}
# The kind of run that alone measures a metric.
MEASURED_BY = {**dict.fromkeys(SCALING_METRICS, AUTOSCALING), **dict.fromkeys(TENANT_METRICS, TENANTS)}
COST_METRICS = {"projected_monthly_usd", "cost_per_1m_output_tokens_usd"}


@dataclass(frozen=True)
class ProbeEvidence:
    """The newest finished run of one kind: its summary when it is evidence, else why not."""

    summary: dict | None = None
    url: str = ""
    not_evidence: str = ""  # e.g. "client saturated: latencies are not evidence"


@dataclass(frozen=True)
class Outcome:
    status: str  # "pass" | "fail" | "pending"
    figure: float | None
    explanation: str
    url: str = ""  # the run the rule read, when it read one


def run_kind_of(rule: dict) -> str | None:
    """The kind of run a probe rule reads (its own "run", else the metric's); None for cost rules."""
    if rule["metric"] not in PROBE_METRICS:
        return None
    return rule.get("run") or MEASURED_BY.get(rule["metric"], STEADY)


def validate(rule: dict) -> None:
    if not isinstance(rule, dict) or not {"metric", "op", "value"} <= set(rule) <= {"metric", "op", "value", "run"}:
        raise ValueError('a rule is {"metric", "op", "value"} and, for a probe metric, optionally "run"')
    if rule["metric"] not in PROBE_METRICS and rule["metric"] not in COST_METRICS:
        known = ", ".join(sorted(PROBE_METRICS) + sorted(COST_METRICS))
        raise ValueError(f"unknown metric {rule['metric']!r}; known: {known}")
    if rule["op"] not in OPS:
        raise ValueError(f"op must be one of {', '.join(OPS)}")
    if rule["value"] != "budget" and not isinstance(rule["value"], int | float):
        raise ValueError('value must be a number or "budget"')
    if "run" in rule:
        if rule["metric"] not in PROBE_METRICS:
            raise ValueError('only a probe metric reads a run: drop "run"')
        if rule["run"] not in RUN_KINDS:
            raise ValueError(f"run must be one of {', '.join(RUN_KINDS)}")
        only = MEASURED_BY.get(rule["metric"])
        if only and rule["run"] != only:
            raise ValueError(f"{rule['metric']} is measured by {only} runs only")


def _dig(data: dict | None, path: tuple):
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def evaluate(
    rule: dict, *, probes: Mapping[str, ProbeEvidence | None] | None, cost: dict | None, budget: float | None
) -> Outcome:
    """Pass or fail with the deciding figure; pending while the evidence does not exist yet.

    `probes` holds the newest finished run of each kind. A run that is not evidence (cancelled,
    client-saturated...) leaves the item pending, with the reason, rather than passing it.
    """
    validate(rule)
    metric, op, target = rule["metric"], rule["op"], rule["value"]
    if target == "budget":
        if budget is None:
            return Outcome("pending", None, "the project has no budget")
        target = budget
    url = ""
    if metric in PROBE_METRICS:
        kind = run_kind_of(rule)
        evidence = (probes or {}).get(kind)
        if evidence is None:
            return Outcome("pending", None, f"no {kind} probe result yet")
        url = evidence.url
        if evidence.not_evidence or not evidence.summary:
            why = evidence.not_evidence or "it has no results"
            return Outcome("pending", None, f"the latest {kind} probe is not evidence: {why}", url)
        if evidence.summary.get("client_saturated"):
            return Outcome(
                "pending", None, f"the latest {kind} probe was client-saturated: its latencies are not evidence", url
            )
        figure = _dig(evidence.summary, PROBE_METRICS[metric])
    else:
        figure = (cost or {}).get(metric)
    if figure is None and metric == "recovery_s" and _dig(evidence.summary, ("autoscaling", "kpis")):
        return Outcome("fail", None, "recovery_s: latency did not recover after the step", url)
    if figure is None:
        return Outcome("pending", None, f"{metric} was not measured", url)
    ok = OPS[op](figure, target)
    return Outcome("pass" if ok else "fail", figure, f"{metric} = {figure:g} (must be {op} {target:g})", url)
