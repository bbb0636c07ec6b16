"""What an approval approved: the material state a gate's decision depends on (pure Python).

A gate's approval covers the checklist items its function owns (status, severity, whether a
valid waiver covers them, until when), the latest probe outcome of every plan (SLO met or which
SLOs missed, not the exact figures), and the cost position (budget, over or within it). Wording
of items, figures that move without changing an outcome, and other functions' items are not
material, so editing them leaves approvals standing; and only a change for the worse makes an
approval stale (`what_worsened`).
"""

from __future__ import annotations

import hashlib
import json

from apps.evidence.inputs import Evidence
from apps.probes.verdict import SLO_NAMES


def material_state(inputs: Evidence, function: str) -> dict:
    items = []
    for item in inputs.items:
        if item.function != function:
            continue
        waiver = item.waiver
        waived_until = waiver.expires_on.isoformat() if waiver and waiver.valid_on(inputs.today) else None
        items.append(
            {
                "key": item.key,
                "title": item.title,
                "status": item.status,
                "severity": item.severity,
                "waived_until": waived_until,
            }
        )
    probes = []
    for p in inputs.probes:
        probe = {"plan": p.plan, "slo_met": p.slo_met, "missed": sorted(p.missed)}
        if p.not_evidence:
            # Only when set, so an evidence run keeps the fingerprint approvals were given with.
            probe["not_evidence"] = p.not_evidence
        probes.append(probe)
    cost = inputs.cost
    cost_state = None
    if cost is not None and cost.budget_usd is not None:
        over = cost.projected_monthly_usd is not None and cost.projected_monthly_usd > cost.budget_usd
        cost_state = {
            "budget_usd": cost.budget_usd,
            "over_budget": over,
            "projected": cost.projected_monthly_usd is not None,
        }
    return {
        "function": function,
        "items": sorted(items, key=lambda i: i["key"]),
        "probes": sorted(probes, key=lambda p: p["plan"]),
        "cost": cost_state,
    }


def fingerprint(state: dict) -> str:
    # Titles are shown in the change list but are wording, not substance: leave them out of the hash.
    hashed = {**state, "items": [{k: v for k, v in i.items() if k != "title"} for i in state["items"]]}
    return hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()


# How good an item's state is for an approver: a change to a lower rank is material.
RANK = {"pass": 3, "not_applicable": 3, "waived": 2, "pending": 1, "fail": 0}
SEVERITY_RANK = {"minor": 0, "major": 1, "blocker": 2}


def _item_rank(item: dict) -> int:
    if item["status"] in ("pass", "not_applicable"):
        return RANK[item["status"]]
    return RANK["waived"] if item.get("waived_until") else RANK[item["status"]]


def what_worsened(approved: dict, now: dict) -> list[str]:
    """The material changes since an approval, in words; empty when nothing got worse.

    Worse means: an item of the function fell back (pass → pending, waived → failing, a waiver
    shortened), became more severe, or appeared without passing; a probe plan missed an SLO it met
    (or a new one); the cost went over budget or the budget shrank below the projection. Things
    getting better (an item passing, a waiver no longer needed) leave the approval standing: what
    was approved was the worse state.
    """
    out = []
    old_items = {i["key"]: i for i in approved.get("items", [])}
    for key, item in {i["key"]: i for i in now.get("items", [])}.items():
        prev = old_items.get(key)
        state = _state_words(item)
        if prev is None:
            if _item_rank(item) < RANK["pass"]:
                out.append(f"new item “{item['title']}” is {state}")
            continue
        if _item_rank(item) < _item_rank(prev):
            out.append(f"“{item['title']}”: {_state_words(prev)} → {state}")
        elif prev.get("waived_until") and item.get("waived_until") and item["waived_until"] < prev["waived_until"]:
            out.append(f"“{item['title']}”: waiver shortened to {item['waived_until']}")
        if SEVERITY_RANK.get(item["severity"], 0) > SEVERITY_RANK.get(prev["severity"], 0):
            out.append(f"“{item['title']}” is now {item['severity']}")
    old_probes = {p["plan"]: p for p in approved.get("probes", [])}
    for probe in now.get("probes", []):
        prev = old_probes.get(probe["plan"])
        newly_missed = set(probe["missed"]) - set(prev["missed"] if prev else [])
        if probe["slo_met"] is False and (prev is None or prev["slo_met"] is not False or newly_missed):
            was = "no result" if prev is None else _slo_words(prev)
            out.append(f"probe “{probe['plan']}”: {was} → {_slo_words(probe)}")
    old_cost, cost = approved.get("cost") or {}, now.get("cost") or {}
    if cost.get("over_budget") and not old_cost.get("over_budget"):
        out.append(f"projected cost is now over the budget of ${cost['budget_usd']:,.0f}")
    return out


def _state_words(item: dict) -> str:
    if item.get("waived_until") and item["status"] not in ("pass", "not_applicable"):
        return f"{item['status']} (waived until {item['waived_until']})"
    return item["status"]


def _slo_words(probe: dict) -> str:
    if probe.get("not_evidence"):
        return f"no evidence ({probe['not_evidence']})"
    if probe["slo_met"] is None:
        return "no SLO set"
    if probe["slo_met"]:
        return "SLO met"
    return f"SLO missed ({', '.join(SLO_NAMES.get(m, m) for m in probe['missed']) or 'see run'})"
