"""An OpenAI-compatible inference-server simulator (no model): the demo's and the tests' target.

This first cut models one replica with a fixed number of batch slots, a waiting queue,
prefill time growing with prompt length and decode time per token. It streams like vLLM
(role-only first chunk, content chunks, a trailing usage chunk, `[DONE]`) and publishes
vLLM-named gauges on /metrics. Plain stdlib, no Django: `python -m apps.simulator`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()  # fmt: skip


@dataclass
class SimConfig:
    model: str = "sim-llama-3-8b"
    slots: int = 8  # concurrent sequences per replica (batch slots)
    prefill_ms_per_1k_tokens: float = 40.0
    base_ttft_ms: float = 15.0
    decode_ms_per_token: float = 8.0
    default_max_tokens: int = 64
    api_key: str = ""  # when set, requests must send it as a bearer token


class Deployment:
    """The simulated server's state: slots in use and the waiting queue."""

    def __init__(self, config: SimConfig):
        self.config = config
        self._slots = threading.BoundedSemaphore(config.slots)
        self._lock = threading.Lock()
        self.waiting = 0
        self.running = 0
        self.requests_total = 0

    def admit(self):
        with self._lock:
            self.waiting += 1
            self.requests_total += 1
        self._slots.acquire()
        with self._lock:
            self.waiting -= 1
            self.running += 1

    def release(self):
        with self._lock:
            self.running -= 1
        self._slots.release()

    def metrics_text(self) -> str:
        c = self.config
        with self._lock:
            waiting, running, total = self.waiting, self.running, self.requests_total
        labels = f'{{model_name="{c.model}"}}'
        lines = [
            "# TYPE vllm:num_requests_waiting gauge", f"vllm:num_requests_waiting{labels} {waiting}",
            "# TYPE vllm:num_requests_running gauge", f"vllm:num_requests_running{labels} {running}",
            "# TYPE vllm:kv_cache_usage_perc gauge", f"vllm:kv_cache_usage_perc{labels} {running / c.slots:.4f}",
            "# TYPE simulator_replicas_available gauge", "simulator_replicas_available 1",
            "# TYPE simulator_replicas_desired gauge", "simulator_replicas_desired 1",
            "# TYPE simulator_requests_total counter", f"simulator_requests_total {total}",
        ]  # fmt: skip
        return "\n".join(lines) + "\n"


def approx_tokens(text: str) -> int:
    # ~4 characters per token, the usual rule of thumb for English text.
    return max(1, len(text) // 4)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SimServer

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def _send_json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        key = self.server.deployment.config.api_key
        if key and self.headers.get("Authorization") != f"Bearer {key}":
            self._send_json(401, {"error": {"message": "invalid api key", "type": "invalid_request_error"}})
            return False
        return True

    def do_GET(self):
        deployment = self.server.deployment
        if self.path == "/metrics":
            data = deployment.metrics_text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif self.path == "/health":
            self._send_json(200, {"status": "ok"})
        elif self.path == "/v1/models":
            if self._authorized():
                model = deployment.config.model
                self._send_json(
                    200, {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "simulator"}]}
                )
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self):
        if self.path not in ("/v1/chat/completions", "/v1/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if not self._authorized():
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
        except (ValueError, json.JSONDecodeError):
            self._send_json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        chat = self.path.endswith("chat/completions")
        prompt = (
            " ".join(str(m.get("content", "")) for m in body.get("messages", []))
            if chat
            else str(body.get("prompt", ""))
        )
        config = self.server.deployment.config
        max_tokens = int(body.get("max_tokens") or config.default_max_tokens)
        prompt_tokens = approx_tokens(prompt)
        deployment = self.server.deployment
        deployment.admit()
        try:
            time.sleep((config.base_ttft_ms + config.prefill_ms_per_1k_tokens * prompt_tokens / 1000) / 1000)
            if body.get("stream"):
                self._stream(chat, body, prompt_tokens, max_tokens)
            else:
                time.sleep(config.decode_ms_per_token * max_tokens / 1000)
                self._send_json(200, _completion(chat, config.model, prompt_tokens, max_tokens))
        finally:
            deployment.release()

    def _chunk(self, payload: str) -> None:
        data = payload.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _stream(self, chat: bool, body: dict, prompt_tokens: int, max_tokens: int) -> None:
        config = self.server.deployment.config
        rid = f"cmpl-{uuid.uuid4().hex[:12]}"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def event(obj) -> None:
            self._chunk(f"data: {json.dumps(obj)}\n\n")

        base = {"id": rid, "object": "chat.completion.chunk" if chat else "text_completion", "model": config.model}
        if chat:
            event({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]})
        for i in range(max_tokens):
            if i:
                time.sleep(config.decode_ms_per_token / 1000)
            word = WORDS[i % len(WORDS)] + " "
            choice = {"index": 0, "delta": {"content": word}} if chat else {"index": 0, "text": word}
            choice["finish_reason"] = "length" if i == max_tokens - 1 else None
            event({**base, "choices": [choice]})
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": max_tokens,
                     "total_tokens": prompt_tokens + max_tokens}  # fmt: skip
            event({**base, "choices": [], "usage": usage})
        self._chunk("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")


def _completion(chat: bool, model: str, prompt_tokens: int, max_tokens: int) -> dict:
    text = " ".join(WORDS[i % len(WORDS)] for i in range(max_tokens))
    choice = (
        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}
        if chat
        else {"index": 0, "text": text, "finish_reason": "length"}
    )
    return {
        "id": f"cmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion" if chat else "text_completion",
        "model": model,
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": max_tokens,
            "total_tokens": prompt_tokens + max_tokens,
        },  # fmt: skip
    }


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], config: SimConfig | None = None):
        super().__init__(address, Handler)
        self.deployment = Deployment(config or SimConfig())

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"


def start_in_thread(host: str = "127.0.0.1", port: int = 0, config: SimConfig | None = None) -> SimServer:
    """Start a simulator on a background thread (tests, demos); call .shutdown() to stop."""
    server = SimServer((host, port), config)
    threading.Thread(target=server.serve_forever, name="simulator", daemon=True).start()
    return server
