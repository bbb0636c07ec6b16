"""The go/no-go rules, table-driven, with each boundary (apps/reports/decision.py)."""

from dataclasses import replace
from datetime import date, timedelta

import pytest

from apps.evidence.inputs import Cost, Item, Probe, Waiver
from apps.reports.decision import (
    BLOCKER,
    CONDITIONAL,
    FAIL,
    GO,
    MAJOR,
    MINOR,
    NO_GO,
    NOT_APPLICABLE,
    PASS,
    PENDING,
    Gate,
    Inputs,
    category_scores,
    decide,
    fingerprint,
)

TODAY = date(2026, 11, 27)


def item(severity=BLOCKER, status=PASS, waiver=None, key="k", category="security"):
    return Item(key=key, title=f"{severity} {key}", category=category, severity=severity, status=status, waiver=waiver)


def waiver(days_left, **kw):
    return Waiver(expires_on=TODAY + timedelta(days=days_left), **kw)


def probe(age_days=1, slo_met=True, missed=()):
    return Probe(plan="baseline", finished_on=TODAY - timedelta(days=age_days), slo_met=slo_met, missed=missed)


GOOD = Inputs(
    today=TODAY,
    items=(item(),),
    gates=(Gate("security", required=1, approvals=1), Gate("finance", required=2, approvals=2)),
    probes=(probe(),),
    cost=Cost(projected_monthly_usd=900, budget_usd=1000),
)


CASES = [
    # (what changes from the all-good inputs, expected outcome, expected reason codes)
    ("everything in order", {}, GO, []),
    ("blocker failed", {"items": (item(status=FAIL),)}, NO_GO, ["blocker_fail"]),
    ("blocker pending", {"items": (item(status=PENDING),)}, NO_GO, ["blocker_pending"]),
    ("blocker not applicable", {"items": (item(status=NOT_APPLICABLE),)}, GO, []),
    (
        "blocker failed, waiver valid 30 days",
        {"items": (item(status=FAIL, waiver=waiver(30)),)},
        CONDITIONAL,
        ["waived"],
    ),
    (
        "blocker failed, waiver expires today (still valid)",
        {"items": (item(status=FAIL, waiver=waiver(0)),)},
        CONDITIONAL,
        ["waived"],
    ),
    (
        "blocker failed, waiver expired yesterday",
        {"items": (item(status=FAIL, waiver=waiver(-1)),)},
        NO_GO,
        ["blocker_fail"],
    ),
    (
        "blocker failed, waiver revoked",
        {"items": (item(status=FAIL, waiver=waiver(30, revoked=True)),)},
        NO_GO,
        ["blocker_fail"],
    ),
    (
        "blocker failed, waiver only requested",
        {"items": (item(status=FAIL, waiver=waiver(30, approved=False)),)},
        NO_GO,
        ["blocker_fail"],
    ),
    ("major failed", {"items": (item(severity=MAJOR, status=FAIL),)}, CONDITIONAL, ["major_fail"]),
    ("minor pending", {"items": (item(severity=MINOR, status=PENDING),)}, CONDITIONAL, ["minor_pending"]),
    (
        "gate rejected",
        {"gates": (Gate("legal", approvals=0, rejected_reason="DPA not signed"),)},
        NO_GO,
        ["gate_rejected"],
    ),
    ("gate stale", {"gates": (Gate("security", approvals=1, stale=True),)}, NO_GO, ["gate_stale"]),
    (
        "gate missing one of two approvals",
        {"gates": (Gate("finance", required=2, approvals=1),)},
        NO_GO,
        ["gate_missing"],
    ),
    (
        "gate approved with conditions",
        {"gates": (Gate("product", approvals=1, conditions=("add a kill switch",)),)},
        CONDITIONAL,
        ["gate_conditions"],
    ),
    ("no probe at all", {"probes": ()}, NO_GO, ["probe_missing"]),
    ("probe exactly 14 days old (fresh)", {"probes": (probe(age_days=14),)}, GO, []),
    ("probe 15 days old (stale)", {"probes": (probe(age_days=15),)}, NO_GO, ["probe_missing"]),
    ("probe missed its SLO", {"probes": (probe(slo_met=False, missed=("ttft_p95_ms",)),)}, NO_GO, ["slo_missed"]),
    ("probe without SLOs", {"probes": (probe(slo_met=None),)}, GO, []),
    ("cost equal to budget", {"cost": Cost(1000, 1000)}, GO, []),
    ("cost one dollar over budget", {"cost": Cost(1001, 1000)}, NO_GO, ["over_budget"]),
    ("no cost projection yet", {"cost": None}, GO, []),
    ("no checklist at all", {"items": ()}, NO_GO, ["checklist_missing"]),
    (
        "no checklist at all, even with no category required",
        {"items": (), "required_categories": ()},
        NO_GO,
        ["checklist_missing"],
    ),
    ("every required category present", {"required_categories": ("security",)}, GO, []),
    ("a required category missing", {"required_categories": ("security", "cost")}, NO_GO, ["checklist_missing"]),
    (
        "the only probe is not evidence",
        {"probes": (replace(probe(), not_evidence="client saturated"),)},
        NO_GO,
        ["probe_missing", "probe_not_evidence"],
    ),
    (
        "one plan's latest run is not evidence, another's is fresh",
        {"probes": (probe(), replace(probe(slo_met=False), plan="burst", not_evidence="cancelled after 18 requests"))},
        CONDITIONAL,
        ["probe_not_evidence"],
    ),
]


@pytest.mark.parametrize("label,changes,outcome,codes", CASES, ids=[c[0] for c in CASES])
def test_the_decision_table(label, changes, outcome, codes):
    decision = decide(replace(GOOD, **changes))
    assert decision.outcome == outcome
    assert [r.code for r in decision.reasons] == codes


def test_a_waiver_expiring_within_the_warning_window_says_so_and_one_further_out_does_not():
    soon = decide(replace(GOOD, items=(item(status=FAIL, waiver=waiver(14)),))).reasons[0].message
    later = decide(replace(GOOD, items=(item(status=FAIL, waiver=waiver(15)),))).reasons[0].message
    assert "expiring in 14 days" in soon
    assert "expiring" not in later


def test_no_go_reasons_come_first_and_every_reason_is_kept():
    inputs = replace(
        GOOD,
        items=(item(severity=MINOR, status=FAIL, key="a"), item(status=PENDING, key="b")),
        cost=Cost(2000, 1000, url="/cost"),
    )
    decision = decide(inputs)
    assert decision.outcome == NO_GO
    assert [r.code for r in decision.reasons] == ["blocker_pending", "over_budget", "minor_fail"]
    assert decision.reasons[1].evidence == "/cost"
    assert "$2,000/month" in decision.reasons[1].message


def test_the_fingerprint_changes_with_the_evidence_but_not_with_the_date():
    base = fingerprint(GOOD)
    assert fingerprint(replace(GOOD, today=TODAY + timedelta(days=3))) == base
    assert fingerprint(replace(GOOD, items=(item(status=FAIL),))) != base
    assert fingerprint(replace(GOOD, cost=Cost(901, 1000))) != base


def test_a_missing_required_category_is_named_in_the_reason():
    inputs = replace(GOOD, required_categories=("security", "monitoring", "cost", "reliability"))
    [reason] = decide(inputs).reasons
    assert reason.code == "checklist_missing"
    assert "monitoring, cost, reliability" in reason.message and "security" not in reason.message


def test_a_run_that_is_not_evidence_never_counts_as_a_missed_slo():
    saturated_miss = replace(probe(slo_met=False, missed=("ttft_p95_ms",)), not_evidence="client saturated")
    codes = [r.code for r in decide(replace(GOOD, probes=(probe(), saturated_miss))).reasons]
    assert codes == ["probe_not_evidence"]


def test_category_counts_count_each_item_once_and_a_waived_item_as_waived():
    items = (
        item(key="a"),
        item(key="b", status=FAIL, waiver=waiver(30)),
        item(key="c", status=PENDING, waiver=waiver(3)),
        item(key="d", status=PENDING),
        item(key="e", status=FAIL, waiver=waiver(-1)),
        item(key="f", status=NOT_APPLICABLE),
        item(key="g", severity=MINOR, category="cost"),
    )
    scores = {c["category"]: c for c in category_scores(items, TODAY)}
    security = scores["security"]
    counts = tuple(security[k] for k in ("pass", "fail", "pending", "not_applicable", "waived"))
    assert counts == (1, 1, 1, 1, 2)
    for c in scores.values():
        assert sum(c[k] for k in ("pass", "fail", "pending", "not_applicable", "waived")) == sum(
            1 for i in items if i.category == c["category"]
        )
    assert security["score"] == round(100 * (3 + 3) / 15)  # a pass counts fully, each valid waiver half
