"""What a report freezes: the decision and every input it was made from, as plain JSON.

`build_snapshot` reads the database once; `changes_between` is pure and compares two snapshots
(decision, items, gates, figures) for the "what changed since the previous report" section.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from apps.checklists.models import Checklist
from apps.checklists.services import current_responses
from apps.core.models import AuditEvent
from apps.costs.services import cost_for
from apps.probes import charts as probe_charts
from apps.probes.engine.stats import format_error_details
from apps.probes.models import ProbeRun
from apps.probes.selectors import latest_runs
from apps.probes.verdict import verdict_for
from apps.reports import charts, decision
from apps.reports.evaluation import collect_inputs, reasons_json
from apps.signoffs.services import gate_states

SCHEMA = 1


def _user(u) -> str | None:
    return u.username if u is not None else None


def _when(t) -> str | None:
    return t.isoformat() if t else None


def _item(r, today) -> dict:
    waivers = [
        {
            "state": w.state_on(today),
            "reason": w.reason,
            "risk_level": w.risk_level,
            "expires_on": str(w.expires_on),
            "requested_by": _user(w.requested_by),
            "decided_by": _user(w.decided_by),
            "decision_note": w.decision_note,
            "revoke_reason": w.revoke_reason,
        }
        for w in r.waivers.all()
    ]
    return {
        "key": r.item.key,
        "title": r.item.title,
        "severity": r.item.severity,
        "function": r.item.function,
        "evidence_kind": r.item.evidence_kind,
        "references": r.item.references,
        "status": r.status,
        "na_reason": r.na_reason,
        "evidence_text": r.evidence_text,
        "evidence_url": r.evidence_url,
        "evidence_file": r.evidence_file.name.rsplit("/", 1)[-1] if r.evidence_file else "",
        "figure": r.figure,
        "explanation": r.explanation,
        "answered_by": r.answered_label or _user(r.answered_by),
        "answered_at": _when(r.answered_at),
        "waivers": waivers,
    }


def _gate(g) -> dict:
    decisions = [
        {
            "verdict": x.verdict,
            "by": _user(x.decided_by),
            "at": _when(x.created_at),
            "reason": x.reason,
            "conditions": x.conditions,
            "stale": x.stale_at is not None,
            "stale_reason": x.stale_reason,
        }
        for x in g.current + g.stale
    ]
    return {
        "function": g.function,
        "required": g.required,
        "status": g.status,
        "approvals": g.approvals,
        "open_conditions": g.open_conditions,
        "decisions": decisions,
    }


def _probe(run: ProbeRun) -> dict:
    s = run.summary or {}
    o = s.get("overall", {})
    verdict = verdict_for(run)  # the verdict the run's page and the decision show
    return {
        "plan": run.plan.name,
        "run_id": run.pk,
        "endpoint": run.plan.endpoint.name,
        "finished_at": _when(run.finished_at),
        "slo": s.get("slo"),
        "slo_checks": s.get("slo_checks", []),
        "slo_met": verdict.slo_met,
        "verdict": verdict.as_dict(),
        "client_saturated": s.get("client_saturated"),
        "autoscaling": {k: v for k, v in (s.get("autoscaling") or {}).get("kpis", {}).items() if k != "marks"} or None,
        "recommended_signal": ((s.get("autoscaling") or {}).get("recommendation") or {}).get("signal"),
        "tenants": {
            k: (s.get("tenants") or {}).get(k) for k in ("verdict", "noisy", "jain_index", "throttled", "reasons")
        }
        if s.get("tenants")
        else None,
        # What failed and what the server said ("4xx: 400 x 3: {...}"), and the cut-off streams.
        "errors": format_error_details(s.get("error_details") or {}),
        "truncated": (s.get("truncated") or {}).get("count", 0),
        "headline": {
            "ttft_p95_ms": o.get("ttft_ms", {}).get("p95"),
            "tpot_p95_ms": o.get("tpot_ms", {}).get("p95"),
            "e2e_p99_ms": o.get("e2e_ms", {}).get("p99"),
            "error_rate": o.get("error_rate"),
            "request_throughput": o.get("request_throughput"),
            "goodput": o.get("goodput"),
            "output_token_throughput": o.get("output_token_throughput"),
            "slo_attainment": o.get("slo_attainment"),
        },
    }


def _blockers_removed(checklist) -> list[dict]:
    """Blockers that upgrades of this checklist dropped or downgraded, with who and when: a report
    must show that a blocker went away, not just that it no longer fails."""
    events = AuditEvent.objects.filter(
        organization_id=checklist.project.organization_id, action="checklist.upgrade", object_id=str(checklist.pk)
    ).order_by("created_at")
    return [
        {
            "key": w["key"],
            "function": w["function"],
            "now": w["now"],
            "by": e.actor_label,
            "at": _when(e.created_at),
            "upgrade": (e.changes.get("template") or [None, None])[1],
        }
        for e in events
        for w in (e.changes.get("blockers_removed") or [None, []])[1] or []
        if isinstance(w, dict)
    ]


def build_snapshot(project) -> dict:
    today = timezone.localdate()
    runs = latest_runs(project)
    cost = cost_for(project, runs)
    inputs = collect_inputs(project, runs=runs, cost=cost, today=today)
    outcome = decision.decide(inputs)
    scores = {c["category"]: c for c in decision.category_scores(inputs.items, today)}
    categories = []
    for checklist in Checklist.objects.filter(project=project).select_related("template"):
        responses = (
            current_responses(checklist)
            .prefetch_related("waivers__requested_by", "waivers__decided_by")
            .select_related("answered_by")
        )
        t = checklist.template
        categories.append(
            {
                "category": t.category,
                "name": t.name,
                "template": t.key,
                "version": t.version,
                "checklist_id": checklist.pk,
                "score": scores.get(t.category, {}),
                "items": [_item(r, today) for r in responses],
                "blockers_removed": _blockers_removed(checklist),
            }
        )
    probes = [_probe(r) for r in runs]
    figures = {}
    newest = ProbeRun.objects.filter(pk=runs[0].pk).only("timeline").first() if runs else None
    if newest is not None and newest.timeline:
        figures["latency"] = probe_charts.latency_over_time(newest.timeline)
    # The newest noisy-neighbour run that is evidence: its quiet tenants against their baselines
    # (its run page has the rest).
    tenants = next(
        (r.summary["tenants"] for r in runs if (r.summary or {}).get("tenants") and verdict_for(r).evidence), None
    )
    for name, fig in (
        ("attainment", charts.slo_attainment(probes)),
        ("cost", charts.cost_vs_budget(cost)),
        ("fairness", probe_charts.fairness_chart(tenants) if tenants else None),
    ):
        if fig:
            figures[name] = fig
    return {
        "schema": SCHEMA,
        "generated_at": timezone.now().isoformat(),
        "today": today.isoformat(),
        "project": {
            "id": project.pk,
            "name": project.name,
            "slug": project.slug,
            "stage": project.stage,
            "risk_tier": project.risk_tier,
            "owner": _user(project.owner),
            "monthly_budget_usd": float(project.monthly_budget_usd) if project.monthly_budget_usd is not None else None,
            "expected_peak_rpm": project.expected_peak_rpm,
        },
        "decision": {"outcome": outcome.outcome, "reasons": reasons_json(outcome)},
        "rules": decision.RULES,
        "settings": {
            "probe_max_age_days": settings.READINESS_PROBE_MAX_AGE_DAYS,
            "waiver_warning_days": settings.READINESS_WAIVER_WARNING_DAYS,
        },
        "fingerprint": decision.fingerprint(inputs),
        "categories": categories,
        "gates": [_gate(g) for g in gate_states(project)],
        "probes": probes,
        "cost": cost,
        "figures": figures,
    }


def changes_between(before: dict | None, after: dict) -> dict:
    """Decision, item, gate and figure changes from `before` to `after` (None: the first report)."""
    if before is None:
        return {"first": True}
    out = {"first": False, "decision": None, "items": [], "gates": [], "figures": []}
    was, now = before["decision"]["outcome"], after["decision"]["outcome"]
    if was != now:
        out["decision"] = [was, now]
    old_items = {(c["template"], i["key"]): i for c in before["categories"] for i in c["items"]}
    for c in after["categories"]:
        for i in c["items"]:
            prev = old_items.pop((c["template"], i["key"]), None)
            if prev is None:
                out["items"].append({"title": i["title"], "from": None, "to": i["status"]})
            elif prev["status"] != i["status"]:
                out["items"].append({"title": i["title"], "from": prev["status"], "to": i["status"]})
    out["items"] += [{"title": i["title"], "from": i["status"], "to": None} for i in old_items.values()]
    old_gates = {g["function"]: g for g in before["gates"]}
    for g in after["gates"]:
        prev = old_gates.get(g["function"], {})
        if prev.get("status") != g["status"]:
            out["gates"].append({"function": g["function"], "from": prev.get("status"), "to": g["status"]})
    old_probes = {p["plan"]: p["headline"] for p in before["probes"]}
    for p in after["probes"]:
        prev = old_probes.get(p["plan"], {})
        for key, value in p["headline"].items():
            if prev.get(key) != value:
                out["figures"].append({"what": f"{p['plan']}: {key}", "from": prev.get(key), "to": value})
    old_cost, new_cost = before.get("cost") or {}, after.get("cost") or {}
    for key in ("projected_monthly_usd", "cost_per_1m_output_tokens_usd", "budget_usd"):
        if old_cost.get(key) != new_cost.get(key):
            out["figures"].append({"what": key, "from": old_cost.get(key), "to": new_cost.get(key)})
    return out
