"""What an approval approved: the material state a gate's decision depends on (pure Python).

A gate's approval covers the checklist items its function owns (status, severity, whether a
valid waiver covers them, until when), the latest probe outcome of every plan (SLO met or which
SLOs missed, not the exact figures), and the cost position (budget, over or within it). Wording
of items, figures that move without changing an outcome, and other functions' items are not
material, so editing them leaves approvals standing.
"""

from __future__ import annotations

import hashlib
import json

from apps.reports.decision import Inputs


def material_state(inputs: Inputs, function: str) -> dict:
    items = []
    for item in inputs.items:
        if item.function != function:
            continue
        waiver = item.waiver
        waived_until = waiver.expires_on.isoformat() if waiver and waiver.valid_on(inputs.today) else None
        items.append({"key": item.key, "title": item.title, "status": item.status, "severity": item.severity,
                      "waived_until": waived_until})  # fmt: skip
    probes = [{"plan": p.plan, "slo_met": p.slo_met, "missed": sorted(p.missed)} for p in inputs.probes]
    cost = inputs.cost
    cost_state = None
    if cost is not None and cost.budget_usd is not None:
        over = cost.projected_monthly_usd is not None and cost.projected_monthly_usd > cost.budget_usd
        cost_state = {"budget_usd": cost.budget_usd, "over_budget": over,
                      "projected": cost.projected_monthly_usd is not None}  # fmt: skip
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


def what_changed(before: dict, after: dict) -> list[str]:
    """Human-readable differences between two material states (why an approval went stale)."""
    out = []
    old_items = {i["key"]: i for i in before.get("items", [])}
    new_items = {i["key"]: i for i in after.get("items", [])}
    for key, item in new_items.items():
        prev = old_items.get(key)
        if prev is None:
            out.append(f"item “{item['title']}” added ({item['status']})")
            continue
        for field in ("status", "severity", "waived_until"):
            if prev.get(field) != item.get(field):
                out.append(f"“{item['title']}” {field.replace('_', ' ')}: {prev.get(field)} → {item.get(field)}")
    out += [f"item “{i['title']}” removed" for k, i in old_items.items() if k not in new_items]
    old_probes = {p["plan"]: p for p in before.get("probes", [])}
    for probe in after.get("probes", []):
        prev = old_probes.get(probe["plan"])
        if prev != probe:
            was = "no result" if prev is None else _slo_words(prev)
            out.append(f"probe “{probe['plan']}”: {was} → {_slo_words(probe)}")
    if before.get("cost") != after.get("cost"):
        out.append(f"cost position: {before.get('cost')} → {after.get('cost')}")
    return out


def _slo_words(probe: dict) -> str:
    if probe["slo_met"] is None:
        return "no SLO set"
    return "SLO met" if probe["slo_met"] else f"SLO missed ({', '.join(probe['missed']) or 'see run'})"
