"""A small HTTP receiver on 127.0.0.1: it records every request, checks Standard Webhooks
signatures when given the secret, and answers with programmable replies (so it can also play
Jira, ServiceNow or GitHub in the contract tests).

`make run` starts one for the demo org's connector (its log shows each verified delivery); the
tests use it to assert the exact request readiness sent. Stdlib only.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from apps.integrations import signing


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool | None  # None when the receiver has no secret

    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    secret: str | None = None
    # What to answer, in order; the last one repeats. (status, extra headers, body)
    replies: list[tuple[int, dict, bytes]] = field(default_factory=lambda: [(200, {}, b'{"ok": true}')])
    received: list[Received] = field(default_factory=list)
    delay_s: float = 0.0
    log: bool = False
    # Called with each request as it arrives, before the answer (a test's fault injection).
    on_receive: Callable[[Received], object] | None = None

    def start(self, port: int = 0) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                self._handle("POST")

            def do_PATCH(self):  # noqa: N802
                self._handle("PATCH")

            def do_GET(self):  # noqa: N802
                self._handle("GET")

            def _handle(self, method: str):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                verified = None
                if receiver.secret:
                    try:
                        signing.verify(
                            receiver.secret,
                            self.headers.get("webhook-id", ""),
                            self.headers.get("webhook-timestamp", ""),
                            self.headers.get("webhook-signature", ""),
                            body,
                            now=time.time(),
                        )
                        verified = True
                    except signing.SignatureError:
                        verified = False
                receiver.received.append(Received(method, self.path, dict(self.headers.items()), body, verified))
                if receiver.on_receive is not None:
                    receiver.on_receive(receiver.received[-1])
                if receiver.log:
                    event = json.loads(body or b"{}").get("type") if body else None
                    print(f"webhook receiver: {event} signature {'ok' if verified else 'BAD'}", flush=True)
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                index = min(len(receiver.received), len(receiver.replies)) - 1
                status, headers, reply = receiver.replies[index]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):  # quiet
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/readiness"
        return server
