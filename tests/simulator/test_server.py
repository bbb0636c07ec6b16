import http.client
import json
import threading
import time

import httpx
import pytest

from apps.net.kernel_time import KERNEL_TIMESTAMPS
from apps.simulator import server
from apps.simulator.scenarios import SimConfig


def test_simulator_streams_like_vllm_with_a_usage_chunk_and_done(simulator):
    body = {
        "model": "sim-llama-3-8b",
        "messages": [{"role": "user", "content": "hello " * 40}],
        "max_tokens": 5,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream("POST", simulator.base_url + "/chat/completions", json=body, timeout=10) as response:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    content = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content) == 5
    assert chunks[-1]["usage"]["completion_tokens"] == 5
    assert chunks[-1]["usage"]["prompt_tokens"] == 40


def test_simulator_publishes_vllm_gauges(simulator):
    text = httpx.get(simulator.base_url.removesuffix("/v1") + "/metrics").text
    assert "vllm:num_requests_waiting" in text and "vllm:kv_cache_usage_perc" in text


def stall(sim, seconds: float) -> None:
    """Block the simulator's event loop for `seconds`, as a burst of token writes would; return once it is blocked."""
    blocked = threading.Event()

    def block():
        blocked.set()
        time.sleep(seconds)

    sim.loop.call_soon_threadsafe(block)
    assert blocked.wait(5)


def completion_sent_during_a_stall(sim, request_id: str) -> tuple[float, float, dict]:
    """Send a streamed completion on a kept-alive connection while the loop is stalled 300 ms."""
    conn = http.client.HTTPConnection("127.0.0.1", int(sim.base_url.split(":")[2].split("/")[0]), timeout=10)
    conn.request("GET", "/health")
    assert conn.getresponse().read() == b'{"status":"ok"}'
    body = json.dumps(
        {"model": "sim-llama-3-8b", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "stream": True}
    ).encode()
    stall(sim, 0.3)
    before = time.monotonic()
    conn.request("POST", "/v1/chat/completions", body, {"X-Request-Id": request_id, "Content-Type": "application/json"})
    after = time.monotonic()
    assert b"data: [DONE]" in conn.getresponse().read()
    conn.close()
    truth = httpx.get(sim.base_url.removesuffix("/v1") + "/admin/ground-truth", timeout=5).json()["requests"]
    return before, after, truth[request_id]


@pytest.mark.skipif(not KERNEL_TIMESTAMPS, reason="kernel receive timestamps are read on Linux only")
def test_a_request_arrives_when_its_bytes_reached_the_host_even_if_the_simulator_was_busy(simulator):
    before, after, truth = completion_sent_during_a_stall(simulator, "stalled-1")
    # On loopback the kernel stamps the bytes inside the client's send call, so the arrival lies
    # between the readings around it; the loop only read them 300 ms later.
    assert before - 0.001 <= truth["arrival"] <= after + 0.001
    assert truth["first"] - truth["arrival"] >= 0.25, "the first token still waited for the stall to end"


def test_without_kernel_timestamps_a_request_arrives_when_the_simulator_reads_it(started, monkeypatch):
    # Other systems: asyncio's transport, our clock when the loop reads the request.
    monkeypatch.setattr(server, "KERNEL_TIMESTAMPS", False)
    sim = started(SimConfig())
    assert sim.sim.listener is None and sim.sim.server is not None
    before, _, truth = completion_sent_during_a_stall(sim, "stalled-2")
    assert truth["arrival"] - before >= 0.25
    assert truth["arrival"] <= truth["first"] <= truth["last"]
