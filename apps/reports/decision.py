"""The go/no-go decision: a pure, deterministic function of a project's evidence.

No Django imports: views, the API, scheduled reports and tests all call `decide(inputs)`,
and a report stores `fingerprint(inputs)` so "what changed since the last report" can be
answered. The rules are stated once, in RULES below: every report prints them (the README
says the same in prose).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date

from apps.evidence.inputs import Cost, Item, Probe
from apps.probes.verdict import SLO_NAMES

GO, CONDITIONAL, NO_GO = "GO", "CONDITIONAL", "NO-GO"
BLOCKER, MAJOR, MINOR = "blocker", "major", "minor"
PENDING, PASS, FAIL, NOT_APPLICABLE = "pending", "pass", "fail", "not_applicable"
APPROVED, APPROVED_WITH_CONDITIONS, REJECTED, STALE = "approved", "approved_with_conditions", "rejected", "stale"

# The rules in words, as a report prints them. A line break inside a rule is kept: the rule
# goes on, indented under its dash.
NO_GO_WHEN = (
    "the project has no checklist, or lacks one of the categories its organization requires\n"
    "(the org's policy; by default security, monitoring, cost and reliability);",
    "a blocker item has failed, or is still pending, without a valid waiver;",
    "a sign-off gate is rejected, missing (fewer approvals than required) or stale;",
    "no probe run that counts as evidence finished within the last `probe_max_age_days` days;",
    "the latest run of a probe plan missed its SLO (apps/probes/verdict.py decides a run's\n"
    "verdict: an autoscaling run by its recovery, a noisy-neighbour run by its quiet tenants, a\n"
    "steady run by its SLO checks);",
    "the projected monthly cost exceeds the budget.",
)
CONDITIONAL_WHEN = (
    "a non-blocker item has failed or is pending;",
    "the latest run of a probe plan is not evidence (cancelled, failed, client-saturated): re-run it;",
    "a gate was approved with conditions;",
    "a waiver is in force (and one expiring within `waiver_warning_days` is called out);",
)
BOUNDARIES = (
    "Boundaries: a waiver is valid through its expiry date (expired the day after); a probe\n"
    "exactly `probe_max_age_days` old is still fresh; a cost equal to the budget is within it.\n"
    "Cancelled, failed and client-saturated runs never count as evidence, fresh or not."
)


def _bullets(rules: tuple[str, ...]) -> list[str]:
    return ["  - " + rule.replace("\n", "\n    ") for rule in rules]


RULES = "\n".join(
    [
        "NO-GO when any of",
        *_bullets(NO_GO_WHEN),
        "CONDITIONAL when none of the above, but any of",
        *_bullets(CONDITIONAL_WHEN),
        "GO otherwise.",
        "",
        BOUNDARIES,
    ]
)


@dataclass(frozen=True)
class Gate:
    function: str
    required: int = 1
    approvals: int = 0  # current, not stale
    conditions: tuple[str, ...] = ()
    rejected_reason: str = ""
    stale: bool = False
    url: str = ""


@dataclass(frozen=True)
class Inputs:
    today: date
    items: tuple[Item, ...] = ()
    gates: tuple[Gate, ...] = ()
    probes: tuple[Probe, ...] = ()
    cost: Cost | None = None
    probe_max_age_days: int = 14
    waiver_warning_days: int = 14
    required_categories: tuple[str, ...] = ()  # the organization's policy; the items say which are present


@dataclass(frozen=True)
class Reason:
    level: str  # NO_GO or CONDITIONAL
    code: str
    message: str
    evidence: str = ""  # a link to what decided it


@dataclass(frozen=True)
class Decision:
    outcome: str
    reasons: tuple[Reason, ...] = field(default_factory=tuple)


def _checklist_reasons(inputs: Inputs) -> list[Reason]:
    """Evidence that is absent cannot pass: no checklist, or a required category without one."""
    if not inputs.items:
        return [Reason(NO_GO, "checklist_missing", "the project has no checklist yet")]
    present = {item.category for item in inputs.items}
    missing = [c for c in inputs.required_categories if c not in present]
    if missing:
        return [
            Reason(
                NO_GO,
                "checklist_missing",
                f"no {', '.join(missing)} checklist: the organization requires {'it' if len(missing) == 1 else 'them'}",
            )
        ]
    return []


def _item_reasons(inputs: Inputs) -> list[Reason]:
    reasons = []
    for item in inputs.items:
        waiver = item.waiver
        waived = waiver is not None and waiver.valid_on(inputs.today)
        if item.status in (PASS, NOT_APPLICABLE):
            continue
        state = "failed" if item.status == FAIL else "is pending"
        if waived:
            days = (waiver.expires_on - inputs.today).days
            soon = f", expiring in {days} day{'s' * (days != 1)}" if days <= inputs.waiver_warning_days else ""
            reasons.append(
                Reason(
                    CONDITIONAL,
                    "waived",
                    f"{item.severity} item “{item.title}” {state}; waived until {waiver.expires_on.isoformat()}{soon}",
                    item.url,
                )
            )
        elif item.severity == BLOCKER:
            expired = " (its waiver expired)" if waiver is not None and not waiver.revoked and waiver.approved else ""
            reasons.append(
                Reason(NO_GO, f"blocker_{item.status}", f"blocker “{item.title}” {state}{expired}", item.url)
            )
        else:
            reasons.append(
                Reason(
                    CONDITIONAL,
                    f"{item.severity}_{item.status}",
                    f"{item.severity} item “{item.title}” {state}",
                    item.url,
                )
            )
    return reasons


def _gate_reasons(inputs: Inputs) -> list[Reason]:
    reasons = []
    for gate in inputs.gates:
        if gate.rejected_reason:
            reasons.append(
                Reason(NO_GO, "gate_rejected", f"{gate.function} rejected: {gate.rejected_reason}", gate.url)
            )
        elif gate.stale:
            reasons.append(
                Reason(
                    NO_GO,
                    "gate_stale",
                    f"{gate.function} approval is stale: the evidence changed since it was given",
                    gate.url,
                )
            )
        elif gate.approvals < gate.required:
            reasons.append(
                Reason(
                    NO_GO,
                    "gate_missing",
                    f"{gate.function} sign-off missing ({gate.approvals} of {gate.required} approvals)",
                    gate.url,
                )
            )
        elif gate.conditions:
            reasons.append(
                Reason(
                    CONDITIONAL,
                    "gate_conditions",
                    f"{gate.function} approved with conditions: " + "; ".join(gate.conditions),
                    gate.url,
                )
            )
    return reasons


def _probe_reasons(inputs: Inputs) -> list[Reason]:
    fresh = [
        p
        for p in inputs.probes
        if not p.not_evidence and p.finished_on and (inputs.today - p.finished_on).days <= inputs.probe_max_age_days
    ]
    reasons = []
    if not fresh:
        reasons.append(
            Reason(
                NO_GO,
                "probe_missing",
                f"no load probe that counts as evidence finished in the last {inputs.probe_max_age_days} days",
            )
        )
    for probe in inputs.probes:
        if probe.not_evidence:
            reasons.append(
                Reason(
                    CONDITIONAL,
                    "probe_not_evidence",
                    f"the latest run of probe plan “{probe.plan}” is not evidence ({probe.not_evidence}): re-run it",
                    probe.url,
                )
            )
        elif probe.slo_met is False:
            missed = f" ({', '.join(SLO_NAMES.get(m, m) for m in probe.missed)})" if probe.missed else ""
            reasons.append(Reason(NO_GO, "slo_missed", f"probe plan “{probe.plan}” missed its SLO{missed}", probe.url))
    return reasons


def _cost_reasons(inputs: Inputs) -> list[Reason]:
    cost = inputs.cost
    if cost is None or cost.projected_monthly_usd is None or cost.budget_usd is None:
        return []
    if cost.projected_monthly_usd > cost.budget_usd:
        return [
            Reason(
                NO_GO,
                "over_budget",
                f"projected cost ${cost.projected_monthly_usd:,.0f}/month is over the "
                f"budget of ${cost.budget_usd:,.0f}",
                cost.url,
            )
        ]
    return []


def decide(inputs: Inputs) -> Decision:
    """GO / CONDITIONAL / NO-GO with every reason; NO-GO reasons first."""
    rules = (_checklist_reasons, _item_reasons, _gate_reasons, _probe_reasons, _cost_reasons)
    reasons = [reason for rule in rules for reason in rule(inputs)]
    if any(r.level == NO_GO for r in reasons):
        outcome = NO_GO
    elif reasons:
        outcome = CONDITIONAL
    else:
        outcome = GO
    ordered = tuple(sorted(reasons, key=lambda r: r.level != NO_GO))  # stable: input order within a level
    return Decision(outcome, ordered)


def fingerprint(inputs: Inputs) -> str:
    """A stable hash of the inputs (not of `today`), to tell whether anything changed."""
    data = asdict(inputs)
    data.pop("today")
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


SEVERITY_WEIGHT = {BLOCKER: 3, MAJOR: 2, MINOR: 1}


def category_scores(items: tuple[Item, ...], today: date) -> list[dict]:
    """Readiness per category, 0–100: passed items count fully, items under a valid waiver half,
    weighted by severity (blocker 3, major 2, minor 1); not-applicable items are left out.

    Each item is counted once: a failing or pending item under a valid waiver is "waived", not
    also "fail" or "pending", so pass + fail + pending + not_applicable + waived is the item count."""
    out: dict[str, dict] = {}
    for item in items:
        c = out.setdefault(
            item.category,
            {
                "category": item.category,
                "pass": 0,
                "fail": 0,
                "pending": 0,
                "not_applicable": 0,
                "waived": 0,
                "_got": 0.0,
                "_max": 0,
            },
        )
        weight = SEVERITY_WEIGHT.get(item.severity, 1)
        if item.status == NOT_APPLICABLE:
            c[NOT_APPLICABLE] += 1
            continue
        c["_max"] += weight
        if item.status == PASS:
            c[PASS] += 1
            c["_got"] += weight
        elif item.waiver is not None and item.waiver.valid_on(today):
            c["waived"] += 1
            c["_got"] += weight / 2
        else:
            c[item.status] += 1
    for c in out.values():
        got, most = c.pop("_got"), c.pop("_max")
        c["score"] = round(100 * got / most) if most else 100
    return sorted(out.values(), key=lambda c: c["category"])
