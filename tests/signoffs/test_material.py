"""What an approval approved, worded from each run's verdict (pure: no database)."""

from datetime import date

from apps.evidence.inputs import Evidence, Probe
from apps.signoffs.material import fingerprint, material_state, what_worsened

TODAY = date(2026, 12, 1)


def _state(probe: Probe) -> dict:
    return material_state(Evidence(today=TODAY, probes=(probe,)), "engineering")


def test_a_run_that_is_not_evidence_is_worded_from_its_verdict_when_an_approval_goes_stale():
    cancelled = _state(Probe("baseline", TODAY, None, not_evidence="cancelled after 18 requests: not evidence"))
    missed = _state(Probe("baseline", TODAY, False, ("ttft_p95_ms",)))

    changes = what_worsened(cancelled, missed)

    assert changes == [
        "probe “baseline”: no evidence (cancelled after 18 requests: not evidence) → SLO missed (TTFT p95)"
    ]
    assert "no SLO set" not in changes[0]


def test_a_run_without_an_slo_still_reads_no_slo_set():
    no_slo = _state(Probe("baseline", TODAY, None))
    missed = _state(Probe("baseline", TODAY, False, ("e2e_p99_ms",)))

    assert what_worsened(no_slo, missed) == ["probe “baseline”: no SLO set → SLO missed (E2E p99)"]


def test_an_evidence_run_keeps_the_fingerprint_approvals_were_given_with():
    state = _state(Probe("baseline", TODAY, True))

    assert "not_evidence" not in state["probes"][0]
    assert fingerprint(state) == fingerprint({**state, "probes": [{"plan": "baseline", "slo_met": True, "missed": []}]})
