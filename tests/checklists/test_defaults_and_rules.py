"""The shipped checklist templates and the automatic-item rules (pure; no database)."""

import pytest

from apps.checklists import defaults, rules

OWASP_IDS = [f"LLM{n:02d}" for n in range(1, 11)]


def all_items():
    return [i for t in defaults.TEMPLATES.values() for i in t["items"]]


def test_each_category_ships_eight_to_twelve_items_with_unique_keys():
    for name, template in defaults.TEMPLATES.items():
        assert 8 <= len(template["items"]) <= 12, name
    keys = [i["key"] for i in all_items()]
    assert len(keys) == len(set(keys))


def test_every_item_is_complete_and_its_rule_is_valid():
    for i in all_items():
        assert i["title"] and len(i["guidance"]) > 40 and i["references"], i["key"]
        assert i["severity"] in ("blocker", "major", "minor")
        assert i["function"] in ("security", "legal", "finance", "engineering", "product")
        assert i["evidence_kind"] in ("manual", "automatic", "external")
        assert (i["rule"] is not None) == (i["evidence_kind"] == "automatic"), i["key"]
        if i["rule"]:
            rules.validate(i["rule"])


def test_the_security_template_maps_every_owasp_llm_top_10_risk():
    refs = " ".join(r for i in defaults.SECURITY for r in i["references"])
    assert all(f"{risk} " in refs for risk in OWASP_IDS)


SUMMARY = {
    "client_saturated": False,
    "overall": {"ttft_ms": {"p95": 640.0}, "tpot_ms": {"p95": 55.0}, "e2e_ms": {"p99": 4000.0}, "error_rate": 0.004},
}


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
    outcome = rules.evaluate(rule, probe_summary=SUMMARY, cost=None, budget=None)
    assert (outcome.status, outcome.figure) == (status, figure)
    assert rule["metric"] in outcome.explanation


def test_missing_or_untrustworthy_evidence_is_pending_not_pass():
    rule = {"metric": "ttft_p95_ms", "op": "<=", "value": 800}
    assert rules.evaluate(rule, probe_summary=None, cost=None, budget=None).status == "pending"
    saturated = {**SUMMARY, "client_saturated": True}
    assert rules.evaluate(rule, probe_summary=saturated, cost=None, budget=None).status == "pending"
    no_tpot = {"client_saturated": False, "overall": {"tpot_ms": {"n": 0}}}
    assert rules.evaluate({"metric": "tpot_p95_ms", "op": "<=", "value": 50}, probe_summary=no_tpot, cost=None,
                          budget=None).status == "pending"  # fmt: skip


def test_the_budget_rule_compares_the_projection_with_the_project_budget():
    rule = {"metric": "projected_monthly_usd", "op": "<=", "value": "budget"}
    cost = {"projected_monthly_usd": 4000.0}
    assert rules.evaluate(rule, probe_summary=None, cost=cost, budget=4000).status == "pass"
    assert rules.evaluate(rule, probe_summary=None, cost=cost, budget=3999.99).status == "fail"
    assert rules.evaluate(rule, probe_summary=None, cost=cost, budget=None).status == "pending"
    assert rules.evaluate(rule, probe_summary=None, cost=None, budget=4000).status == "pending"


@pytest.mark.parametrize(
    "rule,words",
    [
        ({"metric": "vibes", "op": "<", "value": 1}, "unknown metric"),
        ({"metric": "error_rate", "op": "=~", "value": 1}, "op must be"),
        ({"metric": "error_rate", "op": "<", "value": "low"}, "number"),
        ({"metric": "error_rate", "op": "<"}, "a rule is"),
    ],
)
def test_a_malformed_rule_is_refused_with_a_clear_message(rule, words):
    with pytest.raises(ValueError, match=words):
        rules.validate(rule)
