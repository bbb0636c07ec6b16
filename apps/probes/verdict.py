"""One run, one verdict: what a finished probe run proves about its SLOs.

Pure Python. The run page, the go/no-go decision, the checklist rules, the report, the API and
the webhooks all read `run_verdict`, so a run cannot say "recovered" on its page and "missed" in
a report. The order of the checks is the order of trust:

  1. a run that did not finish (queued, running, cancelled, failed or cut short) proves nothing;
  2. nor does one that measured no request;
  3. nor one whose client was saturated: the load generator lagged behind its schedule, so the
     server saw less load than planned and the latencies include the client's own delay;
  4. an autoscaling run breaches on purpose when it steps the load up: it is judged by its
     recovery (apps/probes/autoscaling/kpis.py `recovery_verdict`), not by its run-wide SLO checks;
  5. a noisy-neighbour run's noisy tenant breaches on purpose too: it is judged by its quiet
     tenants (apps/probes/engine/tenants.py `analyse`): isolated, leaky, or inconclusive;
  6. any other run by its SLO checks: met, missed, or no SLO set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from apps.probes.autoscaling.kpis import recovery_verdict
from apps.probes.engine.tenants import MIN_REQUESTS

MET, MISSED, NO_SLO, NOT_EVIDENCE = "met", "missed", "no_slo", "not_evidence"
STEADY, AUTOSCALING, TENANTS = "steady", "autoscaling", "tenants"
RUN_KINDS = (STEADY, AUTOSCALING, TENANTS)
# RunStatus values, spelled here because this module stays free of Django (its tests are pure).
UNFINISHED = ("queued", "running", "finalizing")
SUCCEEDED = "succeeded"
# The SLO keys of a run's checks, as people read them (pages, reports, webhooks).
SLO_NAMES = {
    "ttft_p95_ms": "TTFT p95",
    "tpot_p95_ms": "TPOT p95",
    "e2e_p99_ms": "E2E p99",
    "error_rate": "error rate",
    "min_output_tps": "output speed",
}


@dataclass(frozen=True)
class Verdict:
    outcome: str  # MET | MISSED | NO_SLO | NOT_EVIDENCE
    label: str  # one line for people: "all SLOs met", "cancelled after 18 requests: not evidence"
    kind: str = STEADY
    missed: tuple[str, ...] = ()  # the SLOs missed, or why the recovery failed
    reasons: tuple[str, ...] = field(default_factory=tuple)  # why a run is not evidence
    remedy: str = ""  # what to do about it, when there is something to do

    @property
    def evidence(self) -> bool:
        return self.outcome != NOT_EVIDENCE

    @property
    def slo_met(self) -> bool | None:
        """True / False for a judged run, None when there is no SLO or no evidence."""
        return {MET: True, MISSED: False}.get(self.outcome)

    def as_dict(self) -> dict:
        return {
            "outcome": self.outcome,
            "label": self.label,
            "kind": self.kind,
            "evidence": self.evidence,
            "slo_met": self.slo_met,
            "missed": list(self.missed),
            "reasons": list(self.reasons),
            "remedy": self.remedy,
        }


def run_kind(config: dict | None, summary: dict | None) -> str:
    """AUTOSCALING or TENANTS for a run of that profile (even one that measured nothing), else STEADY."""
    for kind in (AUTOSCALING, TENANTS):
        if (summary or {}).get(kind):
            return kind
    profile = (config or {}).get("profile")
    if isinstance(profile, str):
        try:
            profile = json.loads(profile)
        except json.JSONDecodeError:
            profile = None
    for kind in (AUTOSCALING, TENANTS):
        if isinstance(profile, dict) and profile.get(kind):
            return kind
    return STEADY


def saturation(summary: dict) -> dict:
    """The client's worst lag (p99 of schedule lag and of event-loop lag, in ms) and its threshold."""
    schedule = ((summary.get("overall") or {}).get("schedule_lag_ms") or {}).get("p99") or 0.0
    loop = (summary.get("event_loop_lag_ms") or {}).get("p99") or 0.0
    return {
        "schedule_lag_p99_ms": schedule,
        "loop_lag_p99_ms": loop,
        "threshold_ms": summary.get("saturation_threshold_ms") or 5.0,
    }


def saturation_remedy(summary: dict, *, shards: int | None = None) -> str:
    """What to do about a saturated client, with its figures."""
    s = saturation(summary)
    which = "event loop" if s["loop_lag_p99_ms"] >= s["schedule_lag_p99_ms"] else "send schedule"
    worst = max(s["loop_lag_p99_ms"], s["schedule_lag_p99_ms"])
    more = f" (this run used {shards} shard{'s' * (shards != 1)})" if shards else ""
    return (
        f"The load generator's {which} lagged p99 {worst:.3g} ms, over the {s['threshold_ms']:g} ms threshold: "
        f"the server saw less load than planned and the latencies include the client's own delay. "
        f"Re-run the probe when the machine is less busy, lower the plan's concurrency or rate, or raise its "
        f"parallelism{more} so each worker sends less."
    )


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' * (n != 1)}"


def run_verdict(
    status: str,
    summary: dict | None,
    *,
    requests: int | None = None,
    kind: str | None = None,
    shards: int | None = None,
) -> Verdict:
    """The verdict of a run from its status and summary (see the module docstring for the order)."""
    summary = summary or {}
    kind = kind or run_kind(None, summary)
    if requests is None:
        requests = (summary.get("overall") or {}).get("requests")
    sent = f" after {_plural(requests, 'request')}" if requests is not None else ""
    if status in UNFINISHED:
        return Verdict(NOT_EVIDENCE, "still running: not evidence yet", kind, reasons=("the run has not finished",))
    if status == "cancelled" or summary.get("cancelled"):
        return Verdict(
            NOT_EVIDENCE,
            f"cancelled{sent}: not evidence",
            kind,
            reasons=("a cancelled run did not offer its planned load",),
        )
    if status != SUCCEEDED:
        partial = " (partial results kept)" if requests else ""
        return Verdict(
            NOT_EVIDENCE,
            f"{status}{sent}{partial}: not evidence",
            kind,
            reasons=(f"a {status} run did not complete its planned load",),
        )
    if not summary or not (summary.get("overall") or {}).get("requests"):
        return Verdict(
            NOT_EVIDENCE, "no request was measured: not evidence", kind, reasons=("the run measured no request",)
        )
    if summary.get("client_saturated"):
        return Verdict(
            NOT_EVIDENCE,
            "client saturated: latencies are not evidence",
            kind,
            reasons=("the load generator could not keep up with its schedule",),
            remedy=saturation_remedy(summary, shards=shards),
        )
    if kind == AUTOSCALING and summary.get("autoscaling"):
        recovered, why = recovery_verdict(summary["autoscaling"].get("kpis") or {})
        return Verdict(MET if recovered else MISSED, why, kind, missed=() if recovered else (why,))
    if kind == AUTOSCALING:
        return Verdict(
            NOT_EVIDENCE,
            "no autoscaling analysis: not evidence",
            kind,
            reasons=("the run has no autoscaling analysis",),
        )
    if kind == TENANTS:
        return _tenants_verdict(summary.get("tenants") or {})
    checks = summary.get("slo_checks") or []
    missed = tuple(c["slo"] for c in checks if not c.get("ok"))
    if not checks:
        return Verdict(NO_SLO, "no SLO set", kind)
    if missed:
        return Verdict(MISSED, f"SLO missed: {', '.join(SLO_NAMES.get(m, m) for m in missed)}", kind, missed=missed)
    return Verdict(MET, "all SLOs met", kind)


def _tenants_verdict(analysis: dict) -> Verdict:
    reasons = tuple(analysis.get("reasons") or ())
    outcome = analysis.get("verdict")
    if outcome == "isolated":
        return Verdict(MET, f"tenants isolated from {analysis.get('noisy')}'s burst", TENANTS)
    if outcome == "leaky":
        label = f"leaky: {analysis.get('noisy')}'s burst reached the quiet tenants"
        return Verdict(MISSED, label, TENANTS, missed=("tenant isolation",), reasons=reasons)
    return Verdict(
        NOT_EVIDENCE,
        "isolation inconclusive: not evidence",
        TENANTS,
        reasons=reasons or ("the run has no tenant analysis",),
        remedy=f"Give every quiet tenant at least {MIN_REQUESTS} requests before and during the burst, check the "
        "noisy tenant's key and header, and start the run when the workers have a free slot for each tenant.",
    )


def verdict_for(run) -> Verdict:
    """The verdict of a ProbeRun-like object (status, summary, request_count, shard_count).

    The kind comes from the summary alone (a run's config may be deferred in a list): an
    autoscaling run that measured anything has its analysis there, and one that measured nothing
    is not evidence whatever its kind."""
    summary = getattr(run, "summary", None)
    return run_verdict(
        run.status,
        summary,
        requests=getattr(run, "request_count", None),
        kind=run_kind(None, summary),
        shards=getattr(run, "shard_count", None),
    )
