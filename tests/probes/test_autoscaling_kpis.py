"""Autoscaling analysis (apps/probes/autoscaling/): KPIs on hand-built runs with known
answers, the signal ranking, the KEDA / HPA output, and one short run of the simulator's
autoscaling scenario."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from apps.probes.autoscaling import analyze_autoscaling
from apps.probes.autoscaling.kpis import (
    RequestArrays,
    autoscaling_kpis,
    backlog_area,
    count_flaps,
    direction_changes,
    recovery_verdict,
    request_arrays,
    timeline,
)
from apps.probes.autoscaling.policy import k8s_name, recommend_policy, to_yaml
from apps.probes.autoscaling.signals import rank_signals

SLO_MS = 500.0
STEP_UP, STEP_DOWN = 20.0, 50.0


def arrivals(rate: float, start: float, end: float) -> list[float]:
    n = round((end - start) * rate)
    return [round(start + i / rate, 9) for i in range(n)]


def hand_built(ttft_ms) -> RequestArrays:
    """2 req/s, 10 req/s from 20 s to 50 s, 2 req/s to 100 s; TTFT from `ttft_ms(send)`, E2E = TTFT + 0.5 s."""
    times = sends()
    ttft = [ttft_ms(s) for s in times]
    done = [s + t / 1000 + 0.5 for s, t in zip(times, ttft, strict=True)]
    return RequestArrays(times, times, ttft, done, [True] * len(times))


def sends() -> list[float]:
    return arrivals(2, 0, STEP_UP) + arrivals(10, STEP_UP, STEP_DOWN) + arrivals(2, STEP_DOWN, 100)


def fifo(times: list[float], capacity_at) -> RequestArrays:
    """A single FIFO server whose service rate changes over time: departures are spaced 1/rate."""
    done, free = [], 0.0
    for s in times:
        free = max(free, s) + 1 / capacity_at(max(free, s))
        done.append(free)
    ttft = [(d - s) * 1000 for s, d in zip(times, done, strict=True)]
    return RequestArrays(times, times, ttft, done, [True] * len(times))


def slow_between_24_and_40(send: float) -> float:
    if 30 <= send < 31:
        return 2000.0
    return 1000.0 if 24 <= send < 40 else 100.0


def steps(changes: dict[float, float], end: float = 100) -> list[tuple[float, float]]:
    """A gauge scraped every second, changing value at the given times."""
    out, value = [], None
    for t in range(int(end) + 1):
        value = changes.get(float(t), value)
        out.append((float(t), value))
    return out


REPLICAS = {
    "kube_horizontalpodautoscaler_status_desired_replicas": steps({0: 1, 23: 3, 70: 1}),
    "kube_deployment_status_replicas_available": steps({0: 1, 38: 3, 72: 1}),
}


def kpis(requests, series, **overrides):
    fields = dict(step_up=STEP_UP, step_down=STEP_DOWN, slo_ttft_p95_ms=SLO_MS, window=5, stay=10, dt=1.0)
    fields.update(overrides)
    return autoscaling_kpis(requests, series, **fields)


# --- KPIs with known answers -----------------------------------------------------------------------


def test_replica_kpis_are_measured_from_the_step():
    k = kpis(hand_built(slow_between_24_and_40), REPLICAS, replica_capacity_rps=5)
    assert k["replica_metrics"] is True
    assert k["t_decide_s"] == 3.0
    assert k["t_ready_s"] == 18.0
    assert k["t_ready_full_s"] == 18.0
    assert k["replicas_desired_at_step"] == 1 and k["replicas_desired_max"] == 3
    assert k["marks"]["decide"] == 23.0 and k["marks"]["ready"] == 38.0


def test_recovery_violation_seconds_and_peak_p99_come_from_the_rolling_ttft():
    k = kpis(hand_built(slow_between_24_and_40), REPLICAS)
    # Requests sent in [24, 40) are slow; a 5 s window sees them at grid points 25..44.
    assert k["breach_episodes"] == [[24.0, 44.0]]
    assert k["slo_violation_s"] == 20.0
    assert k["breached"] is True
    assert k["t_recover_s"] == 24.0, "healthy from 44 s on, and staying so for 10 s"
    assert k["marks"]["recover"] == 44.0
    assert k["recovered_before_step_down"] is True
    assert k["ttft_p99_peak_ms"] == 2000.0


def test_a_recovery_that_does_not_stay_healthy_for_the_whole_period_is_not_one():
    def relapse(send):
        return 1000.0 if 24 <= send < 30 or 38 <= send < 40 else 100.0

    k = kpis(hand_built(relapse), REPLICAS, stay=10)
    assert k["breach_episodes"] == [[24.0, 34.0], [38.0, 44.0]]
    assert k["t_recover_s"] == 24.0, "34 s is not a recovery: the SLO broke again within 10 s"
    assert k["slo_violation_s"] == 16.0
    short = kpis(hand_built(relapse), REPLICAS, stay=3)
    assert short["t_recover_s"] == 14.0


def test_no_breach_means_recovery_at_zero_and_no_recovery_means_none():
    healthy = kpis(hand_built(lambda s: 100.0), REPLICAS)
    assert healthy["breached"] is False and healthy["t_recover_s"] == 0.0 and healthy["slo_violation_s"] == 0
    never = kpis(hand_built(lambda s: 1000.0 if s >= 24 else 100.0), REPLICAS)
    assert never["t_recover_s"] is None
    assert never["recovered_before_step_down"] is False
    assert any("never stayed under the SLO" in n for n in never["notes"])
    # With no recovery the transient runs to the step down.
    assert never["ttft_p99_peak_ms"] == 1000.0


def test_failed_requests_count_as_slo_misses():
    base = hand_built(lambda s: 100.0)
    ok = [not (30 <= s < 32) for s in base.sent]
    failing = RequestArrays(base.intended, base.sent, base.ttft_ms, base.done, ok)
    k = kpis(failing, REPLICAS)
    assert k["breach_episodes"] == [[30.0, 36.0]]
    assert k["ttft_p99_peak_ms"] is None and any("failed request" in n for n in k["notes"])
    # The stored timeline is strict JSON: a percentile made of failures is None, its time listed.
    result = analyze_autoscaling(
        failing, REPLICAS, step_up=STEP_UP, step_down=STEP_DOWN, slo_ttft_p95_ms=SLO_MS, window=5
    )
    tl = result["timeline"]
    assert tl["ttft_failed_t"] == [31.0, 32.0, 33.0, 34.0, 35.0, 36.0]
    assert tl["ttft_p95_ms"][30] is None and tl["ttft_p95_ms"][40] == 100.0
    json.dumps(result, allow_nan=False)


def test_backlog_area_is_the_time_requests_spent_in_the_system_within_the_interval():
    nan = math.nan
    req = RequestArrays(
        intended=[0.0, 1.0, 3.0, 1.5, 2.0],
        sent=[0.0, 1.0, 3.0, 1.5, 2.0],
        ttft_ms=[10.0, 10.0, 10.0, nan, 10.0],
        done=[2.0, 4.0, 3.5, nan, 9.0],
        ok=[True, True, True, False, False],
    )
    assert backlog_area(req, 1.0, 3.0) == pytest.approx(1 + 2 + 0)
    assert backlog_area(req, 0.0, 10.0) == pytest.approx(2 + 3 + 0.5)


def test_backlog_area_kpi_covers_the_held_load_and_equals_offered_minus_completed():
    requests = hand_built(slow_between_24_and_40)
    k = kpis(requests, REPLICAS)
    assert k["backlog_area_req_s"] == pytest.approx(backlog_area(requests, STEP_UP, STEP_DOWN), abs=1e-3)
    # Over the whole run it is the sum of every request's time in the system (all succeed).
    total = sum(d - a for a, d in zip(requests.intended, requests.done, strict=True))
    assert backlog_area(requests, 0, 200) == pytest.approx(total)
    # And the timeline's backlog curve is cumulative offered − completed: back to zero at the end.
    tl = timeline(requests, REPLICAS, window=5)
    assert tl["backlog"][-1] == 0 and max(tl["backlog"]) == k["backlog_peak"] > 0


def test_overprovisioned_replica_minutes_after_the_step_down():
    k = kpis(hand_built(slow_between_24_and_40), REPLICAS, replica_capacity_rps=5)
    assert k["replicas_needed_after_step_down"] == 1, "2 req/s fits one 5 req/s replica"
    assert k["scaled_down_s"] == 22.0
    assert k["overprovisioned_replica_minutes"] == pytest.approx((3 - 1) * 22 / 60, abs=1e-4)


def test_overprovisioning_without_a_given_capacity_uses_the_saturated_completed_rate():
    # One 4 req/s replica until 40 s, three from then on; requests wait from 21 s until 60 s.
    requests = fifo(sends(), lambda t: 4.0 if t < 40 else 12.0)
    series = {
        "kube_horizontalpodautoscaler_status_desired_replicas": steps({0: 1, 23: 3, 70: 1}),
        "kube_deployment_status_replicas_available": steps({0: 1, 40: 3, 72: 1}),
        "vllm:num_requests_waiting": steps({0: 0, 21: 5, 60: 0}),
    }
    k = kpis(requests, series)
    assert k["replica_capacity_rps"] == pytest.approx(4.0, abs=0.05), "the completed rate per replica while waiting"
    assert k["replicas_needed_after_step_down"] == 1
    assert k["scaled_down_s"] == 22.0
    assert k["overprovisioned_replica_minutes"] == pytest.approx(2 * 22 / 60, abs=1e-4)


def test_replicas_still_up_at_the_end_make_the_overprovisioning_a_floor():
    series = {**REPLICAS, "kube_deployment_status_replicas_available": steps({0: 1, 38: 3})}
    k = kpis(hand_built(slow_between_24_and_40), series, replica_capacity_rps=5)
    assert k["scaled_down_s"] is None
    # to the end of the timeline: the last completion (100.1 s) rounded up to the 1 s grid
    assert k["overprovisioned_replica_minutes"] == pytest.approx(2 * 51 / 60, abs=1e-4)
    assert any("floor" in n for n in k["notes"])


def test_direction_changes_count_reversals_only():
    assert direction_changes([1, 1, 3, 3, 2, 3, None, 3]) == 2
    assert direction_changes([1, 2, 3, 4]) == 0
    assert direction_changes([]) == 0


def test_flaps_are_reversals_within_a_load_phase_not_the_step_down_itself():
    clean = steps({0: 1, 23: 3, 70: 1})
    assert count_flaps(clean, [STEP_UP, STEP_DOWN]) == 0
    up_down_up = steps({0: 1, 23: 3, 30: 2, 33: 3, 70: 1})
    assert count_flaps(up_down_up, [STEP_UP, STEP_DOWN]) == 2
    # Scaling up again after the load dropped is a flap too (down, then up, in the last phase).
    late = steps({0: 1, 23: 3, 60: 1, 65: 2, 80: 1})
    assert count_flaps(late, [STEP_UP, STEP_DOWN]) == 2
    series = {**REPLICAS, "kube_horizontalpodautoscaler_status_desired_replicas": up_down_up}
    k = kpis(hand_built(slow_between_24_and_40), series)
    assert k["flaps_desired"] == 2 and k["flaps_available"] == 0 and k["replica_flaps"] == 2


def test_without_replica_metrics_capacity_changes_are_inferred_from_the_completed_rate_ceiling():
    requests = fifo(sends(), lambda t: 4.0 if t < 40 else 12.0)  # a second "replica" arrives at 40 s
    k = kpis(requests, {"vllm:num_requests_waiting": steps({0: 0})})
    assert k["replica_metrics"] is False
    assert k["t_decide_s"] is None
    assert k["t_ready_inferred"] is True
    ceiling = k["capacity_rises"][0]
    assert ceiling["ceiling_rps"] == pytest.approx(4.0, abs=0.05)
    # The 5 s rolling rate passes 1.25 × 4 req/s 0.6 s after the change: seen at the next grid point.
    assert k["t_ready_s"] == 21.0
    assert any("No replica metrics" in n for n in k["notes"])
    assert k["flaps_desired"] is None and k["replica_flaps"] == 0
    assert k["overprovisioned_replica_minutes"] is None


# --- which signal should drive scaling --------------------------------------------------------------


def signal_series() -> dict:
    return {
        **REPLICAS,
        # rises ahead of the breach (24 s) and falls once replicas are ready: the good one
        "vllm:num_requests_waiting": steps({0: 0, 18: 4, 19: 8, 20: 12, 21: 16, 22: 20, 38: 0}),
        # rises only after the breach began: a lagging one
        "vllm:num_requests_running": steps({0: 4, 26: 8, 46: 4}),
        # flat: tells nothing
        "vllm:kv_cache_usage_perc": steps({0: 0.5}),
    }


def test_the_signal_that_leads_and_tracks_the_breach_ranks_first():
    tl = timeline(hand_built(slow_between_24_and_40), signal_series(), window=5)
    ranking = rank_signals(tl, step_up=STEP_UP, slo_ttft_p95_ms=SLO_MS, lead_reference_s=10)
    by_name = {r["signal"]: r for r in ranking}
    assert [r["signal"] for r in ranking] == [
        "vllm:num_requests_waiting",
        "vllm:num_requests_running",
        "vllm:kv_cache_usage_perc",
    ]
    waiting = by_name["vllm:num_requests_waiting"]
    assert waiting["per_replica"] is True and waiting["baseline"] == 0
    # 20 waiting flags 13 of the 20 breached points (25..37) and 3 of the 81 healthy ones (22..24)
    assert waiting["at_breach"] == 20 and waiting["separation"] == pytest.approx(13 / 20 - 3 / 81, abs=1e-3)
    assert waiting["threshold"] == pytest.approx(14)
    assert waiting["lead_s"] == 3.0, "at 16 (≥ 14) from 21 s; the breach began at 24 s"
    assert waiting["false_positive_rate"] == 0
    assert waiting["tightness"] > 0.5
    running = by_name["vllm:num_requests_running"]
    assert running["at_breach"] == 8 and running["threshold"] == pytest.approx(6.8) and running["lead_s"] == -2.0
    kv = by_name["vllm:kv_cache_usage_perc"]
    assert kv["threshold"] is None and kv["tightness"] is None and kv["separation"] == 0 and kv["score"] == 0


def test_a_signal_high_while_latency_is_fine_is_charged_false_positives():
    series = {**signal_series(), "vllm:num_requests_running": steps({0: 4, 22: 8, 46: 4, 70: 8, 80: 4})}
    tl = timeline(hand_built(slow_between_24_and_40), series, window=5)
    ranking = rank_signals(tl, step_up=STEP_UP, slo_ttft_p95_ms=SLO_MS, lead_reference_s=10, fp_margin_s=10)
    running = next(r for r in ranking if r["signal"] == "vllm:num_requests_running")
    # healthy grid points: 1..13 and 46..101 (outside [24-10, 44+1]); above the threshold (6.8 per
    # replica) at 72..79: at 70 and 71 the 8 are still shared by 3 replicas
    assert running["false_positive_rate"] == pytest.approx(8 / (13 + 56), abs=1e-3)


def test_the_recommendation_gives_a_keda_scaled_object_and_an_hpa_behavior():
    result = analyze_autoscaling(
        hand_built(slow_between_24_and_40),
        signal_series(),
        step_up=STEP_UP,
        step_down=STEP_DOWN,
        slo_ttft_p95_ms=SLO_MS,
        window=5,
        stay=10,
        name="copilot",
        deployment="vllm-llama",
        model="llama-3-8b",
        max_replicas=6,
    )
    rec = result["recommendation"]
    assert rec["signal"] == "vllm:num_requests_waiting" and rec["threshold"] == 14
    assert rec["reasoning"][0].startswith("Scale on vllm:num_requests_waiting per replica at 14:")
    keda = rec["keda"]
    assert keda["apiVersion"] == "keda.sh/v1alpha1" and keda["kind"] == "ScaledObject"
    spec = keda["spec"]
    assert spec["scaleTargetRef"] == {"name": "vllm-llama"}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 6)
    trigger = spec["triggers"][0]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    assert trigger["metadata"]["query"] == 'sum(vllm:num_requests_waiting{model_name="llama-3-8b"})'
    assert trigger["metadata"]["threshold"] == "14" and "serverAddress" in trigger["metadata"]
    behavior = rec["hpa_behavior"]
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == behavior
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert {"type": "Pods", "value": 2, "periodSeconds": 15} in behavior["scaleUp"]["policies"], "1 → 3 replicas"
    # T_ready 18 s, no flaps: max(60, 2 × 18) rounded up to 30 s steps
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 60
    assert spec["cooldownPeriod"] == 60
    assert set(result) == {"kpis", "timeline", "ranking", "recommendation"}
    assert yaml.safe_load(rec["keda_yaml"]) == keda
    assert yaml.safe_load(rec["hpa_behavior_yaml"]) == {"behavior": behavior}


def test_flaps_lengthen_the_scale_down_window_and_slow_it():
    series = {
        **signal_series(),
        "kube_horizontalpodautoscaler_status_desired_replicas": steps({0: 1, 23: 3, 30: 2, 33: 3, 70: 1}),
    }
    result = analyze_autoscaling(
        hand_built(slow_between_24_and_40),
        series,
        step_up=STEP_UP,
        step_down=STEP_DOWN,
        slo_ttft_p95_ms=SLO_MS,
        window=5,
        stay=10,
    )
    down = result["recommendation"]["hpa_behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] == 120
    assert down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 120}]
    assert any("reversed direction 2 time(s)" in line for line in result["recommendation"]["reasoning"])


def test_without_a_usable_signal_no_metric_is_recommended():
    k = kpis(hand_built(slow_between_24_and_40), REPLICAS)
    flat = {
        "signal": "vllm:kv_cache_usage_perc",
        "per_replica": False,
        "threshold": None,
        "lead_s": None,
        "tightness": None,
        "false_positive_rate": None,
        "score": 0,
    }
    rec = recommend_policy(k, [flat])
    assert rec["signal"] is None and rec["keda"] is None
    assert rec["hpa_behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 60
    assert "no metric can be recommended" in rec["reasoning"][-1]


def test_yaml_quotes_what_would_read_as_another_type():
    data = {"a": "true", "b": "9.8", "c": 9.8, "d": [{"e": 'x{y="z"}'}, "plain"], "f": [], "g": None, "h": "14"}
    text = to_yaml(data)
    # Strings that look like a boolean or a number stay strings (a KEDA threshold is a string).
    assert yaml.safe_load(text) == data
    assert list(yaml.safe_load(text)) == list(data), "keys keep their order"


def test_the_manifests_read_back_as_the_structure_they_were_made_from():
    rec = analyze_autoscaling(
        hand_built(slow_between_24_and_40),
        signal_series(),
        step_up=STEP_UP,
        step_down=STEP_DOWN,
        slo_ttft_p95_ms=SLO_MS,
        window=5,
        stay=10,
        name="copilot",
        deployment="vllm-llama",
        model="a-model-with-a-name-long-enough-to-push-the-query-past-eighty-characters",
    )["recommendation"]
    keda = yaml.safe_load(rec["keda_yaml"])
    assert keda == rec["keda"]
    assert list(keda) == ["apiVersion", "kind", "metadata", "spec"]
    assert rec["keda_yaml"].startswith("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\n")
    trigger = keda["spec"]["triggers"][0]
    assert trigger["metadata"]["threshold"] == "14", "the threshold is a string, as KEDA requires"
    assert trigger["metadata"]["query"] == (
        'sum(vllm:num_requests_waiting{model_name="a-model-with-a-name-long-enough-to-push-the-query-past-eighty-characters"})'
    )
    line = next(line for line in rec["keda_yaml"].splitlines() if "query:" in line)
    assert yaml.safe_load(line) == {"query": trigger["metadata"]["query"]}, "a long query is not folded"
    assert keda["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleUp"]["policies"] == [
        {"type": "Percent", "value": 100, "periodSeconds": 15},
        {"type": "Pods", "value": 2, "periodSeconds": 15},
    ]
    assert yaml.safe_load(rec["hpa_behavior_yaml"]) == {"behavior": rec["hpa_behavior"]}


# --- the simulator's autoscaling scenario, for real -------------------------------------------------


def test_the_simulators_autoscaling_scenario_separates_a_good_signal_from_a_bad_one(started):
    from apps.probes.engine.profiles import POISSON, Stage
    from apps.probes.engine.runner import ProbeConfig, run_probe
    from apps.simulator.scenarios import scenario

    # One replica of 4 slots (~18 req/s at 20 tokens), a 1 s decision interval and a 4 s cold start.
    sim = started(
        scenario(
            "autoscaling",
            slots=4,
            max_replicas=4,
            decision_interval_s=1.0,
            cold_start_s=4.0,
            scale_down_window_s=3.0,
            target_waiting_per_replica=2.0,
        )
    )
    base, high = 5.0, 40.0
    stages = [Stage(POISSON, 4, rate=base), Stage(POISSON, 12, rate=high), Stage(POISSON, 8, rate=base)]
    result = run_probe(
        ProbeConfig(
            base_url=sim.base_url,
            model=sim.sim.config.model,
            stages=stages,
            max_tokens=20,
            allow_private=True,
            metrics_url=sim.base_url.removesuffix("/v1") + "/metrics",
            scrape_interval=0.25,
            seed=6,
        )
    )
    assert result.server_metrics["failures"] == []
    analysis = analyze_autoscaling(
        request_arrays(result.records),
        result.server_metrics["series"],
        step_up=4.0,
        step_down=16.0,
        slo_ttft_p95_ms=300.0,
        window=2.0,
        stay=3.0,
        dt=0.25,
        max_replicas=4,
    )
    k = analysis["kpis"]
    assert k["replica_metrics"] and k["breached"]
    assert 0 < k["t_decide_s"] <= 3, k
    assert k["t_ready_s"] - k["t_decide_s"] >= 3.5, "available only after the 4 s cold start"
    assert k["t_recover_s"] is not None and k["t_ready_s"] <= k["t_recover_s"] < 12, k
    assert k["slo_violation_s"] > 0 and k["ttft_p99_peak_ms"] > 300 and k["backlog_area_req_s"] > 0
    assert k["overprovisioned_replica_minutes"] > 0
    scores = {r["signal"]: r for r in analysis["ranking"]}
    waiting, kv = scores["vllm:num_requests_waiting"], scores["vllm:kv_cache_usage_perc"]
    # KV cache usage counts cold-starting replicas' slots: it drops at the scale-up decision while the
    # queue and the latency are still high, so it tracks the breach far worse than the queue does.
    assert waiting["score"] > kv["score"] + 0.1, analysis["ranking"]
    assert waiting["tightness"] > kv["tightness"]
    assert analysis["recommendation"]["signal"] != "vllm:kv_cache_usage_perc"


def test_the_canary_shows_the_wait_of_a_tiny_request_before_and_during_the_step():
    times = arrivals(1, 0, 100)
    ttft = [800.0 if 25 <= s < 40 else 50.0 for s in times]
    ok = [s != 60 for s in times]  # one canary fails after the step down: counted, not in the peak
    canary = RequestArrays(times, times, ttft, [s + t / 1000 for s, t in zip(times, ttft, strict=True)], ok)
    result = analyze_autoscaling(
        hand_built(lambda s: 100.0),
        REPLICAS,
        step_up=STEP_UP,
        step_down=STEP_DOWN,
        slo_ttft_p95_ms=SLO_MS,
        window=5,
        stay=10,
        canary=canary,
    )
    k = result["kpis"]
    assert (k["canary_requests"], k["canary_failed"]) == (100, 1)
    assert k["canary_ttft_p95_base_ms"] == 50.0 and k["canary_ttft_p95_peak_ms"] == 800.0
    series = result["timeline"]["canary_ttft_p95_ms"]
    assert len(series) == len(result["timeline"]["t"]) and series[30] == 800.0 and series[10] == 50.0
    assert None in series[60:66]  # the failed one: a rolling percentile made of a failure is no figure
    without = analyze_autoscaling(
        hand_built(lambda s: 100.0),
        REPLICAS,
        step_up=STEP_UP,
        step_down=STEP_DOWN,
        slo_ttft_p95_ms=SLO_MS,
        window=5,
        stay=10,
    )
    assert "canary_requests" not in without["kpis"] and without["timeline"]["canary_ttft_p95_ms"] is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("simulator (autoscaling)", "simulator-autoscaling"),
        ("vLLM L4 / prod", "vllm-l4-prod"),
        ("---", "llm"),
        ("x" * 80, "x" * 56),
        ("Ünïcode ök", "n-code-k"),
    ],
)
def test_kubernetes_names_are_dns_labels(text, expected):
    assert k8s_name(text) == expected


def test_a_policy_for_an_endpoint_with_a_display_name_uses_a_kubernetes_name():
    result = analyze_autoscaling(
        hand_built(slow_between_24_and_40),
        signal_series(),
        step_up=STEP_UP,
        step_down=STEP_DOWN,
        slo_ttft_p95_ms=SLO_MS,
        window=5,
        stay=10,
        name="Load (autoscaling)",
        deployment="simulator (autoscaling)",
    )
    keda = result["recommendation"]["keda"]
    assert keda["metadata"]["name"] == "load-autoscaling-scaler"
    assert keda["spec"]["scaleTargetRef"] == {"name": "simulator-autoscaling"}
    assert any("put your Deployment's name there" in line for line in result["recommendation"]["reasoning"])


@pytest.mark.parametrize(
    "kpis, passed, why",
    [
        ({"t_recover_s": 24.0, "recovered_before_step_down": True}, True, "recovered 24 s after the step"),
        ({"t_recover_s": 0.0, "recovered_before_step_down": True}, True, "recovered 0 s"),  # never breached
        ({"t_recover_s": 132.0, "recovered_before_step_down": False}, False, "only after the step down (132 s"),
        ({"t_recover_s": None, "recovered_before_step_down": False}, False, "did not recover"),
        ({"t_recover_s": 30.0}, True, "recovered 30 s"),
    ],  # a run analysed before the flag existed
)
def test_an_autoscaling_run_passes_only_when_latency_recovers_while_the_step_is_held(kpis, passed, why):
    ok, reason = recovery_verdict(kpis)
    assert ok is passed and why in reason


def test_a_recovery_that_comes_with_the_step_down_is_not_one_under_load():
    k = kpis(hand_built(lambda s: 1000.0 if 24 <= s < 55 else 100.0), REPLICAS, stay=10)
    assert k["t_recover_s"] is not None and k["recovered_before_step_down"] is False
    assert recovery_verdict(k)[0] is False
