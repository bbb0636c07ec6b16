"""The simulator's scenarios and routes, checked with real HTTP and with the probe engine."""

from __future__ import annotations

import asyncio
import random
import time

import httpx

from apps.probes.engine.openai import RequestIds
from apps.probes.engine.profiles import CONCURRENT, SYNCHRONOUS, Stage
from apps.probes.engine.records import ERROR_CLASSES
from apps.probes.engine.runner import ProbeConfig, ProbeResult, run_probe
from apps.simulator.scenarios import SimConfig, scenario

NO_FAULTS = dict(fail_429=0.0, fail_500=0.0, hang=0.0, malformed=0.0, drop=0.0)


def root(sim) -> str:
    return sim.base_url.removesuffix("/v1")


def probe(sim, stage: Stage, **overrides) -> ProbeResult:
    fields = dict(base_url=sim.base_url, model=sim.sim.config.model, stages=[stage], max_tokens=4, allow_private=True)
    fields.update(overrides)
    return run_probe(ProbeConfig(**fields))


def class_counts(result: ProbeResult) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in result.records.error:
        counts[ERROR_CLASSES[e]] = counts.get(ERROR_CLASSES[e], 0) + 1
    return counts


def faults_drawn(sim_config: SimConfig, n: int) -> dict[str, int]:
    """The faults the simulator draws for its first n completions (one rng draw each)."""
    rng = random.Random(sim_config.seed)
    counts: dict[str, int] = {}
    shares = [
        ("429", sim_config.fail_429),
        ("500", sim_config.fail_500),
        ("hang", sim_config.hang),
        ("malformed", sim_config.malformed),
        ("drop", sim_config.drop),
    ]
    for _ in range(n):
        r = rng.random()
        fault = ""
        for name, share in shares:
            if r < share:
                fault = name
                break
            r -= share
        counts[fault] = counts.get(fault, 0) + 1
    return counts


def gauges(sim) -> dict:
    """Read the deployment on the simulator's own loop (its thread), not under its feet."""

    async def read():
        d = sim.deployment
        return {"desired": d.desired, "available": d.available, "waiting": len(d.queue), "running": d.running}

    return asyncio.run_coroutine_threadsafe(read(), sim.loop).result(5)


def chat(sim, *, stream: bool, max_tokens: int = 5, headers: dict | None = None, content: str = "hello " * 12):
    body = {
        "model": sim.sim.config.model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "stream": stream,
    }
    return httpx.post(sim.base_url + "/chat/completions", json=body, headers=headers or {}, timeout=10)


# --- fault injection -----------------------------------------------------------------------------


def test_the_flaky_scenario_answers_some_requests_with_429_and_500(started):
    config = scenario("flaky", fail_429=0.2, fail_500=0.2, hang=0.0, malformed=0.0, drop=0.0, seed=3)
    sim = started(config)
    result = probe(sim, Stage(CONCURRENT, 30, concurrency=4), max_requests=40)
    counts = class_counts(result)
    drawn = faults_drawn(config, 40)
    assert counts["429"] > 0 and counts["5xx"] > 0
    assert counts == {"ok": drawn[""], "429": drawn["429"], "5xx": drawn["500"]}
    served = sim.deployment.requests_total
    assert (served["429"], served["500"], served["length"]) == (counts["429"], counts["5xx"], counts["ok"])
    # A 429 tells the client when to come back.
    response = None
    for _ in range(40):
        response = chat(sim, stream=False, max_tokens=1)
        if response.status_code == 429:
            break
    assert response.status_code == 429 and response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == 429


def test_a_malformed_share_produces_events_the_engine_classifies_as_malformed(started):
    config = scenario("flaky", **{**NO_FAULTS, "malformed": 0.3}, seed=4)
    sim = started(config)
    result = probe(sim, Stage(CONCURRENT, 30, concurrency=4), max_requests=30, max_tokens=6)
    counts = class_counts(result)
    drawn = faults_drawn(config, 30)
    assert counts == {"ok": drawn[""], "malformed": drawn["malformed"]}
    assert counts["malformed"] >= 3
    # The rest of each broken stream still arrives: all its tokens were sent.
    broken = [i for i in range(len(result.records)) if ERROR_CLASSES[result.records.error[i]] == "malformed"]
    assert all(result.records.token_events[i] == 6 for i in broken)


def test_a_dropped_stream_is_not_ok_and_a_hung_request_times_out(started):
    dropping = started(scenario("flaky", **{**NO_FAULTS, "drop": 1.0}))
    result = probe(dropping, Stage(SYNCHRONOUS, 30), max_requests=2, max_tokens=6)
    assert class_counts(result) == {"truncated": 2}, "a dropped stream is a cut-off answer, never an answer"
    assert list(result.records.token_events) == [3, 3], "cut in the middle of the stream"
    hanging = started(scenario("flaky", **{**NO_FAULTS, "hang": 1.0}))
    result = probe(hanging, Stage(SYNCHRONOUS, 30), max_requests=1, request_timeout=0.5)
    assert class_counts(result) == {"timeout": 1}


# --- instant -------------------------------------------------------------------------------------


def test_the_instant_scenario_writes_a_whole_16_token_stream_at_once(started):
    sim = started(scenario("instant"))
    result = probe(sim, Stage(SYNCHRONOUS, 30), max_requests=3, max_tokens=16)
    records = result.records
    assert class_counts(result) == {"ok": 3}
    assert list(records.output_tokens) == [16] * 3 and list(records.token_events) == [16] * 3
    truth = httpx.get(root(sim) + "/admin/ground-truth", timeout=5).json()["requests"]
    ids = RequestIds(0, int(result.meta["request_id"]["nonce"], 16))
    assert set(truth) == {ids.text(seq).decode() for seq in range(3)}
    for t in truth.values():
        assert t["first"] == t["last"] and t["tokens"] == 16 and t["status"] == "length"
    # Everything arrives in one read: the first and last token events carry the same timestamp.
    assert all(records.first[i] == records.last[i] for i in range(3))


# --- autoscaling ---------------------------------------------------------------------------------


def test_the_autoscaler_scales_up_under_load_after_a_cold_start_and_back_down(started):
    config = scenario(
        "autoscaling",
        decision_interval_s=0.5,
        cold_start_s=1,
        scale_down_window_s=2,
        slots=2,
        target_waiting_per_replica=1,
        max_replicas=3,
    )
    sim = started(config)
    assert gauges(sim) == {"desired": 1, "available": 1, "waiting": 0, "running": 0}
    result = probe(
        sim,
        Stage(CONCURRENT, 3.0, concurrency=12),
        max_tokens=30,
        metrics_url=root(sim) + "/metrics",
        scrape_interval=0.2,
    )
    load_end = time.monotonic()
    assert class_counts(result) == {"ok": len(result.records)}
    series = result.server_metrics["series"]
    desired = series["kube_horizontalpodautoscaler_status_desired_replicas"]
    available = series["kube_deployment_status_replicas_available"]
    assert series["simulator_replicas_desired"] == desired
    assert desired[0][1] == 1 and available[0][1] == 1
    assert max(v for _, v in desired) == 3 and max(v for _, v in available) == 3, "up to max_replicas"
    t_decide = next(t for t, v in desired if v > 1)
    t_ready = next(t for t, v in available if v > 1)
    assert t_decide < 1.3, "the first decision (0.5 s) sees the queue"
    assert t_ready - t_decide >= 0.7, "new replicas are available only after their 1 s cold start"
    assert t_ready - t_decide < 2.0
    assert max(v for _, v in series["vllm:num_requests_waiting"]) >= 4

    # After the load: back to min_replicas once the 2 s stabilisation window has passed.
    assert gauges(sim)["available"] == 3
    dropped_at = None
    deadline = load_end + 8
    while time.monotonic() < deadline:
        g = gauges(sim)
        # Like the HPA's status, desired holds the stabilised value: it falls with the scale-down, not before.
        assert g["desired"] >= g["available"], g
        if g["available"] == 1 and dropped_at is None:
            dropped_at = time.monotonic()
        if dropped_at and g["desired"] == 1 and len(sim.deployment.replicas) == 1:
            break
        time.sleep(0.05)
    assert dropped_at is not None, f"never scaled down: {gauges(sim)}"
    assert 1.5 <= dropped_at - load_end < 4.0
    assert gauges(sim) == {"desired": 1, "available": 1, "waiting": 0, "running": 0}
    assert len(sim.deployment.replicas) == 1, "drained replicas leave"


# --- queueing ------------------------------------------------------------------------------------


def test_a_queued_request_starts_when_a_slot_frees_without_another_arrival(started):
    sim = started(SimConfig(slots=1, decode_ms_per_token=10))
    # Two requests at once on one slot, and nothing after them: the second must wait ~1 request, not forever.
    result = probe(sim, Stage(CONCURRENT, 30, concurrency=2), max_requests=2, max_tokens=5, request_timeout=1)
    assert class_counts(result) == {"ok": 2}
    ttfts = sorted((result.records.first[i] - result.records.sent[i]) * 1000 for i in range(2))
    assert ttfts[1] < 200


# --- routes --------------------------------------------------------------------------------------


def test_non_streaming_completions_return_usage(simulator):
    response = chat(simulator, stream=False, max_tokens=5)
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"]["role"] == "assistant"
    assert len(data["choices"][0]["message"]["content"].split()) == 5
    assert data["usage"] == {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}

    legacy = httpx.post(
        simulator.base_url + "/completions",
        timeout=10,
        json={"model": "sim-llama-3-8b", "prompt": "one two three", "max_tokens": 3},
    )
    assert legacy.status_code == 200
    body = legacy.json()
    assert body["object"] == "text_completion" and len(body["choices"][0]["text"].split()) == 3
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}


def test_a_streamed_completion_without_include_usage_has_no_usage_chunk(simulator):
    body = {"model": "sim-llama-3-8b", "prompt": "a b c", "max_tokens": 3, "stream": True}
    with httpx.stream("POST", simulator.base_url + "/completions", json=body, timeout=10) as response:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert len(events) == 4 and all('"text"' in e for e in events[:-1])
    assert "usage" not in "".join(events)


def test_a_wrong_api_key_gets_401(started):
    sim = started(SimConfig(api_key="sk-right"))
    assert chat(sim, stream=False, headers={"Authorization": "Bearer sk-wrong"}).status_code == 401
    assert chat(sim, stream=False).status_code == 401
    assert httpx.get(sim.base_url + "/models", timeout=5).status_code == 401
    assert chat(sim, stream=False, headers={"Authorization": "Bearer sk-right"}).status_code == 200
    assert httpx.get(root(sim) + "/metrics", timeout=5).status_code == 200, "metrics are not behind the key"
    # The engine sees it as a client error, and succeeds with the right key.
    assert class_counts(probe(sim, Stage(SYNCHRONOUS, 30), max_requests=2, api_key="sk-wrong")) == {"4xx": 2}
    assert class_counts(probe(sim, Stage(SYNCHRONOUS, 30), max_requests=2, api_key="sk-right")) == {"ok": 2}


def test_bad_requests_get_400_and_unknown_routes_404(simulator):
    url = simulator.base_url + "/chat/completions"
    assert httpx.post(url, content=b"{not json", timeout=5).status_code == 400
    assert httpx.post(url, json={"messages": [], "max_tokens": -1}, timeout=5).status_code == 400
    assert httpx.get(simulator.base_url + "/nope", timeout=5).status_code == 404


def test_the_ground_truth_records_first_and_last_token_times_per_request_id(simulator):
    before = time.monotonic()
    body = {"model": "sim-llama-3-8b", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 6, "stream": True}
    with httpx.stream(
        "POST", simulator.base_url + "/chat/completions", json=body, headers={"X-Request-Id": "abc-7"}, timeout=10
    ) as response:
        lines = list(response.iter_lines())
    after = time.monotonic()
    assert "data: [DONE]" in lines
    chat(simulator, stream=False, headers={"X-Request-Id": "abc-8"}, max_tokens=2)
    truth = httpx.get(root(simulator) + "/admin/ground-truth", timeout=5).json()
    assert truth["clock"] == "CLOCK_MONOTONIC"
    t = truth["requests"]["abc-7"]
    # Same process, same monotonic clock: the times fall inside the request as the client saw it.
    assert before <= t["arrival"] <= t["first"] <= t["last"] <= after
    assert t["tokens"] == 6 and t["status"] == "length"
    assert t["last"] - t["first"] >= 5 * 0.010 * 0.99, "5 decode steps of 10 ms after the first token"
    assert truth["requests"]["abc-8"]["tokens"] == 2
    assert httpx.post(root(simulator) + "/admin/reset", timeout=5).json() == {"ok": True}
    assert httpx.get(root(simulator) + "/admin/ground-truth", timeout=5).json()["requests"] == {}
