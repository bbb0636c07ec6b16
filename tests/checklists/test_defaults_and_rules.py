"""The shipped checklist templates and the automatic-item rules (pure; no database)."""

import pytest

from apps.checklists import defaults, rules

OWASP_IDS = [f"LLM{n:02d}" for n in range(1, 11)]


def all_items():
    return [i for t in defaults.TEMPLATES.values() for i in t["items"]]


@pytest.mark.parametrize("name", list(defaults.TEMPLATES))
def test_each_category_ships_eight_to_twelve_items(name):
    assert 8 <= len(defaults.TEMPLATES[name]["items"]) <= 12


def test_item_keys_are_unique_across_the_categories():
    keys = [i["key"] for i in all_items()]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("item", all_items(), ids=lambda item: item["key"])
def test_every_item_is_complete_and_its_rule_is_valid(item):
    assert item["title"] and len(item["guidance"]) > 40 and item["references"]
    assert item["severity"] in ("blocker", "major", "minor")
    assert item["function"] in ("security", "legal", "finance", "engineering", "product")
    assert item["evidence_kind"] in ("manual", "automatic", "external")
    assert (item["rule"] is not None) == (item["evidence_kind"] == "automatic")
    if item["rule"]:
        rules.validate(item["rule"])


def test_the_security_template_maps_every_owasp_llm_top_10_risk():
    refs = " ".join(r for i in defaults.SECURITY for r in i["references"])
    assert all(f"{risk} " in refs for risk in OWASP_IDS)


SUMMARY = {
    "client_saturated": False,
    "overall": {"ttft_ms": {"p95": 640.0}, "tpot_ms": {"p95": 55.0}, "e2e_ms": {"p99": 4000.0}, "error_rate": 0.004},
}
AUTOSCALING_SUMMARY = {
    "client_saturated": False,
    "overall": {"ttft_ms": {"p95": 5200.0}, "tpot_ms": {"p95": 90.0}, "e2e_ms": {"p99": 9000.0}, "error_rate": 0.0},
    "autoscaling": {"kpis": {"t_recover_s": 43.0, "t_decide_s": 12.0, "slo_violation_s": 40.0}},
}


def steady(summary=SUMMARY, url="/o/acme/runs/1/"):
    return {"steady": rules.ProbeEvidence(summary=summary, url=url), "autoscaling": None}


@pytest.mark.parametrize(
    "rule,status,figure",
    [
        ({"metric": "ttft_p95_ms", "op": "<=", "value": 800}, "pass", 640.0),
        ({"metric": "ttft_p95_ms", "op": "<=", "value": 640}, "pass", 640.0),  # the boundary passes
        ({"metric": "ttft_p95_ms", "op": "<", "value": 640}, "fail", 640.0),
        ({"metric": "tpot_p95_ms", "op": "<=", "value": 50}, "fail", 55.0),
        ({"metric": "error_rate", "op": "<", "value": 0.01}, "pass", 0.004),
        ({"metric": "e2e_p99_ms", "op": "<=", "value": 3000}, "fail", 4000.0),
    ],
)
def test_a_probe_rule_passes_or_fails_with_the_figure_that_decided_it(rule, status, figure):
    outcome = rules.evaluate(rule, probes=steady(), cost=None, budget=None)
    assert (outcome.status, outcome.figure) == (status, figure)
    assert rule["metric"] in outcome.explanation
    assert outcome.url == "/o/acme/runs/1/"


def test_missing_or_untrustworthy_evidence_is_pending_not_pass():
    rule = {"metric": "ttft_p95_ms", "op": "<=", "value": 800}
    assert rules.evaluate(rule, probes=None, cost=None, budget=None).status == "pending"
    saturated = {**SUMMARY, "client_saturated": True}
    assert rules.evaluate(rule, probes=steady(saturated), cost=None, budget=None).status == "pending"
    not_evidence = {"steady": rules.ProbeEvidence(url="/r/2/", not_evidence="cancelled after 18 requests")}
    outcome = rules.evaluate(rule, probes=not_evidence, cost=None, budget=None)
    assert (outcome.status, outcome.url) == ("pending", "/r/2/") and "cancelled after 18" in outcome.explanation
    no_tpot = {"client_saturated": False, "overall": {"tpot_ms": {"n": 0}}}
    assert (
        rules.evaluate(
            {"metric": "tpot_p95_ms", "op": "<=", "value": 50}, probes=steady(no_tpot), cost=None, budget=None
        ).status
        == "pending"
    )


def test_a_latency_rule_reads_the_steady_run_even_when_an_autoscaling_run_is_newer():
    rule = {"metric": "ttft_p95_ms", "op": "<=", "value": 800}
    probes = {
        "steady": rules.ProbeEvidence(summary=SUMMARY, url="/runs/1/"),
        "autoscaling": rules.ProbeEvidence(summary=AUTOSCALING_SUMMARY, url="/runs/2/"),
    }
    outcome = rules.evaluate(rule, probes=probes, cost=None, budget=None)
    assert (outcome.status, outcome.figure, outcome.url) == ("pass", 640.0, "/runs/1/")
    only_autoscaling = {"steady": None, "autoscaling": probes["autoscaling"]}
    assert rules.evaluate(rule, probes=only_autoscaling, cost=None, budget=None).status == "pending"


def test_a_scaling_rule_reads_the_autoscaling_run_and_a_rule_may_name_its_run():
    probes = {
        "steady": rules.ProbeEvidence(summary=SUMMARY, url="/runs/1/"),
        "autoscaling": rules.ProbeEvidence(summary=AUTOSCALING_SUMMARY, url="/runs/2/"),
    }
    recovery = rules.evaluate({"metric": "recovery_s", "op": "<=", "value": 60}, probes=probes, cost=None, budget=None)
    assert (recovery.status, recovery.figure, recovery.url) == ("pass", 43.0, "/runs/2/")
    errors = {"metric": "error_rate", "op": "<", "value": 0.01, "run": "autoscaling"}
    assert rules.evaluate(errors, probes=probes, cost=None, budget=None).url == "/runs/2/"
    never = {**AUTOSCALING_SUMMARY, "autoscaling": {"kpis": {"t_recover_s": None}}}
    probes["autoscaling"] = rules.ProbeEvidence(summary=never, url="/runs/3/")
    assert (
        rules.evaluate({"metric": "recovery_s", "op": "<=", "value": 60}, probes=probes, cost=None, budget=None).status
        == "fail"
    )


def test_the_budget_rule_compares_the_projection_with_the_project_budget():
    rule = {"metric": "projected_monthly_usd", "op": "<=", "value": "budget"}
    cost = {"projected_monthly_usd": 4000.0}
    assert rules.evaluate(rule, probes=None, cost=cost, budget=4000).status == "pass"
    assert rules.evaluate(rule, probes=None, cost=cost, budget=3999.99).status == "fail"
    assert rules.evaluate(rule, probes=None, cost=cost, budget=None).status == "pending"
    assert rules.evaluate(rule, probes=None, cost=None, budget=4000).status == "pending"


@pytest.mark.parametrize(
    "rule,words",
    [
        ({"metric": "vibes", "op": "<", "value": 1}, "unknown metric"),
        ({"metric": "error_rate", "op": "=~", "value": 1}, "op must be"),
        ({"metric": "error_rate", "op": "<", "value": "low"}, "number"),
        ({"metric": "error_rate", "op": "<"}, "a rule is"),
        ({"metric": "error_rate", "op": "<", "value": 0.01, "run": "burst"}, "run must be one of"),
        ({"metric": "recovery_s", "op": "<=", "value": 60, "run": "steady"}, "autoscaling runs only"),
        ({"metric": "projected_monthly_usd", "op": "<=", "value": "budget", "run": "steady"}, "only a probe metric"),
    ],
)
def test_a_malformed_rule_is_refused_with_a_clear_message(rule, words):
    with pytest.raises(ValueError, match=words):
        rules.validate(rule)
