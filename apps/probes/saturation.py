"""A run whose client was saturated is re-run by itself.

Saturation is nearly always about the machine that runs the probe worker, not about the plan: a
build, a test suite or another probe took the CPU for a moment, the client's timers fired late,
and the run is not evidence (verdict.py). Waiting for someone to notice leaves the project's
latency items pending, so the run is started again at once, by the system:

- the same plan, unchanged: the evidence must be for the load the plan defines, and a lighter
  re-run would prove something else (what to change when it happens again is the run page's
  remedy: more shards, a quieter worker);
- at most READINESS_PROBE_SATURATED_RERUNS times in a row (default 1; 0 turns re-runs off), for
  manual and scheduled runs alike; a re-run that is saturated again is left as it is;
- within the organization's limits like any run (a re-run that would exceed them is not started,
  and the saturated run says so);
- with a note on both runs (`summary["rerun"]` on the saturated one, `config["rerun_of"]` on the
  re-run) and a `probe_run.rerun` audit event with the reason.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from apps.core.errors import ApplicationError
from apps.core.services import audit_record
from apps.orgs.access import Access
from apps.probes import services
from apps.probes.models import ProbeRun, RunStatus


def rerun_reason(*, status: str, summary: dict | None, config: dict | None, allowed: int) -> str | None:
    """Why a finished run should be re-run (one line for people), or None when it should not.

    Only a run that completed and whose client was saturated; never past `allowed` re-runs in a
    row (a re-run's `config["rerun_of"]["attempt"]` counts them), so it can never loop.
    """
    summary, config = summary or {}, config or {}
    if status != RunStatus.SUCCEEDED or not summary.get("client_saturated") or summary.get("cancelled"):
        return None
    if rerun_attempt(config) >= allowed:
        return None
    schedule = ((summary.get("overall") or {}).get("schedule_lag_ms") or {}).get("p99") or 0.0
    loop = (summary.get("event_loop_lag_ms") or {}).get("p99") or 0.0
    which = "event loop" if loop >= schedule else "send schedule"
    threshold = summary.get("saturation_threshold_ms") or 5.0
    return (
        f"the load generator's {which} lagged p99 {max(loop, schedule):.3g} ms (over the {threshold:g} ms "
        "threshold), so its latencies were not evidence"
    )


def rerun_attempt(config: dict | None) -> int:
    """How many automatic re-runs led to this run (0 for a run someone or the schedule started)."""
    return int(((config or {}).get("rerun_of") or {}).get("attempt") or 0)


def probe_run_rerun_if_saturated(run: ProbeRun) -> ProbeRun | None:
    """Start the automatic re-run of a finished, client-saturated run; returns it, or None.

    Called where a run is finalized (the probe worker), after the decision was refreshed.
    """
    reason = rerun_reason(
        status=run.status, summary=run.summary, config=run.config, allowed=settings.READINESS_PROBE_SATURATED_RERUNS
    )
    if reason is None:
        return None
    attempt = rerun_attempt(run.config) + 1
    with transaction.atomic():
        # A task delivered twice re-runs once: the first leaves its note on the run, under this lock.
        if (ProbeRun.objects.select_for_update().only("summary").get(pk=run.pk).summary or {}).get("rerun"):
            return None
        # Shards are sent when this block commits, so they read the config with its note.
        try:
            rerun = services.probe_run_start(access=Access.system(), plan=run.plan, trigger=run.trigger)
        except ApplicationError as exc:
            _note(run, {"run": None, "note": f"Not re-run automatically: {exc.message}"})
            return None
        rerun.config = {**rerun.config, "rerun_of": {"run": run.pk, "attempt": attempt, "reason": reason}}
        rerun.save(update_fields=["config"])
        _note(run, {"run": rerun.pk, "note": f"Re-run automatically as run #{rerun.pk}: {reason}."})
        audit_record(
            access=Access.system(),
            organization_id=run.organization_id,
            action="probe_run.rerun",
            obj=rerun,
            changes={"rerun_of": [None, run.pk], "reason": [None, reason]},
        )
    return rerun


def _note(run: ProbeRun, note: dict) -> None:
    run.summary = {**(run.summary or {}), "rerun": note}
    ProbeRun.objects.filter(pk=run.pk).update(summary=run.summary)
