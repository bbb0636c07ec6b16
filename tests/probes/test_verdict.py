"""One run, one verdict (apps/probes/verdict.py): pure, every branch named."""

import pytest

from apps.probes.verdict import AUTOSCALING, MET, MISSED, NO_SLO, NOT_EVIDENCE, STEADY, run_kind, run_verdict


def summary(**kw):
    base = {
        "overall": {"requests": 120, "schedule_lag_ms": {"p99": 1.2}},
        "slo_checks": [{"slo": "ttft_p95_ms", "target": 800, "actual": 640, "ok": True}],
        "slo_met": True,
        "client_saturated": False,
        "saturation_threshold_ms": 5.0,
        "event_loop_lag_ms": {"p99": 0.8},
    }
    return {**base, **kw}


MISS = [
    {"slo": "ttft_p95_ms", "target": 800, "actual": 950, "ok": False},
    {"slo": "error_rate", "target": 0.01, "actual": 0.0, "ok": True},
]
RECOVERED = {"kpis": {"t_recover_s": 43.0, "recovered_before_step_down": True}}
LATE = {"kpis": {"t_recover_s": 95.0, "recovered_before_step_down": False}}
NEVER = {"kpis": {"t_recover_s": None}}

CASES = [
    # (label, status, summary, requests, outcome, words in the label)
    ("steady run met every SLO", "succeeded", summary(), None, MET, "all SLOs met"),
    ("steady run missed one", "succeeded", summary(slo_checks=MISS, slo_met=False), None, MISSED, "missed: TTFT p95"),
    ("no SLO set", "succeeded", summary(slo_checks=[], slo_met=None), None, NO_SLO, "no SLO"),
    (
        "autoscaling run that recovered, though its run-wide SLO missed",
        "succeeded",
        summary(slo_checks=MISS, slo_met=False, autoscaling=RECOVERED),
        None,
        MET,
        "recovered 43 s after the step",
    ),
    (
        "autoscaling run that recovered only after the step down",
        "succeeded",
        summary(autoscaling=LATE),
        None,
        MISSED,
        "only after the step down",
    ),
    ("autoscaling run that never recovered", "succeeded", summary(autoscaling=NEVER), None, MISSED, "did not recover"),
    ("cancelled run", "cancelled", summary(cancelled=True), 18, NOT_EVIDENCE, "cancelled after 18 requests"),
    ("failed run with partial results", "failed", summary(), 40, NOT_EVIDENCE, "partial results kept"),
    ("still running", "running", None, None, NOT_EVIDENCE, "still running"),
    ("succeeded without a request", "succeeded", summary(overall={"requests": 0}), None, NOT_EVIDENCE, "no request"),
    (
        "client saturated, though every SLO met",
        "succeeded",
        summary(client_saturated=True),
        None,
        NOT_EVIDENCE,
        "client saturated",
    ),
    (
        "client-saturated autoscaling run",
        "succeeded",
        summary(client_saturated=True, autoscaling=RECOVERED),
        None,
        NOT_EVIDENCE,
        "client saturated",
    ),
]


@pytest.mark.parametrize("label,status,data,requests,outcome,words", CASES, ids=[c[0] for c in CASES])
def test_the_verdict_table(label, status, data, requests, outcome, words):
    verdict = run_verdict(status, data, requests=requests)
    assert verdict.outcome == outcome
    assert words in verdict.label
    assert verdict.evidence == (outcome != NOT_EVIDENCE)
    assert verdict.as_dict()["evidence"] == verdict.evidence


def test_a_cancelled_run_never_says_its_slos_were_met():
    verdict = run_verdict("cancelled", summary(cancelled=True), requests=18)
    assert verdict.slo_met is None and "met" not in verdict.label and not verdict.evidence


def test_a_saturated_run_names_its_lag_and_what_to_do():
    lagging = summary(client_saturated=True, event_loop_lag_ms={"p99": 12.4})
    remedy = run_verdict("succeeded", lagging, shards=1).remedy
    assert "event loop lagged p99 12.4 ms, over the 5 ms threshold" in remedy
    assert "lower the plan's concurrency or rate" in remedy
    assert "raise its parallelism (this run used 1 shard)" in remedy
    assert run_verdict("succeeded", summary()).remedy == ""


def test_the_kind_of_a_run_comes_from_its_analysis_or_its_profile():
    assert run_kind(None, summary(autoscaling=RECOVERED)) == AUTOSCALING
    assert run_kind({"profile": {"autoscaling": {"base_rate": 1}}}, None) == AUTOSCALING
    assert run_kind({"profile": '{"autoscaling": {"base_rate": 1}}'}, None) == AUTOSCALING
    assert run_kind({"profile": {"stages": []}}, summary()) == STEADY
