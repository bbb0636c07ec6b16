import json

import httpx


def test_simulator_streams_like_vllm_with_a_usage_chunk_and_done(simulator):
    body = {"model": "sim-llama-3-8b", "messages": [{"role": "user", "content": "hello " * 40}],
            "max_tokens": 5, "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
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
