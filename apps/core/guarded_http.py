"""The one HTTP client for user-given URLs: pinned address, capped size and time, no surprises.

Django-free apart from `policy_from_settings`, so the probe engine can share it.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from apps.net.netguard import OutboundRefused, PinnedTarget, pin

REDIRECT_CODES = {301, 302, 303, 307, 308}
# Only these headers follow a redirect to another origin. Credentials come in many names (an
# X-API-Key, a gateway's token header, a webhook signature): an allow-list cannot miss one the way
# a list of sensitive names can, and a hostile endpoint's redirect would collect it.
CROSS_ORIGIN_HEADERS = {"accept", "accept-encoding", "accept-language", "content-type", "user-agent", "x-request-id"}


def _origin(url: str) -> tuple:
    p = urlsplit(url)
    return p.scheme, p.hostname, p.port or (443 if p.scheme == "https" else 80)


@dataclass(frozen=True)
class GuardPolicy:
    allow_private: bool = False
    timeout_seconds: float = 10.0
    max_bytes: int = 5_000_000
    max_redirects: int = 3


def policy_from_settings() -> GuardPolicy:
    from django.conf import settings

    return GuardPolicy(
        allow_private=settings.READINESS_ALLOW_PRIVATE_ENDPOINTS,
        timeout_seconds=settings.READINESS_OUTBOUND_TIMEOUT_SECONDS,
        max_bytes=settings.READINESS_OUTBOUND_MAX_BYTES,
        max_redirects=settings.READINESS_OUTBOUND_MAX_REDIRECTS,
    )


@dataclass
class GuardedResponse:
    status_code: int
    headers: httpx.Headers
    body: bytes
    url: str
    elapsed_ms: float
    redirects: list[str] = field(default_factory=list)

    def json(self):
        import json

        return json.loads(self.body)


def pinned_url(target: PinnedTarget, url: str) -> tuple[httpx.URL, dict[str, str], dict]:
    """The URL rewritten to the checked address, plus the Host header and TLS name to keep.

    httpx sends SNI and verifies the certificate against `sni_hostname`, so HTTPS still
    checks the real host name while the TCP connection goes to the pinned address.
    """
    try:
        original = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise OutboundRefused(f"malformed URL: {exc}", code="url_invalid") from None
    rewritten = original.copy_with(host=target.address)
    host_header = original.netloc.decode("ascii")
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return rewritten, {"Host": host_header}, extensions


def guarded_request(
    method: str,
    url: str,
    *,
    policy: GuardPolicy,
    headers: dict[str, str] | None = None,
    json=None,
    content: bytes | None = None,
) -> GuardedResponse:
    """Send one request to a user-given URL, following redirects only to addresses that pass.

    Raises OutboundRefused (address, size, redirect rules) or httpx.HTTPError (network).
    """
    started = time.monotonic()
    deadline = started + policy.timeout_seconds
    sockets: list = []

    def cut_off() -> None:
        # httpx's timeouts are per read: a server trickling header lines could hold us for
        # hours. At the overall deadline the socket is shut, which ends any pending read.
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def remember_socket(event: str, info: dict) -> None:
        if event == "connection.connect_tcp.complete":
            sockets.append(info["return_value"].get_extra_info("socket"))
            if time.monotonic() >= deadline:
                cut_off()

    watchdog = threading.Timer(policy.timeout_seconds, cut_off)
    watchdog.daemon = True
    watchdog.start()
    try:
        return _follow(method, url, policy, headers, json, content, started, deadline, remember_socket)
    except httpx.HTTPError:
        if time.monotonic() >= deadline:
            raise OutboundRefused("response took longer than the time limit", code="timeout") from None
        raise
    finally:
        watchdog.cancel()


def _follow(method, url, policy, headers, json, content, started, deadline, trace) -> GuardedResponse:
    redirects: list[str] = []
    current_url, current_method = url, method
    with httpx.Client(timeout=policy.timeout_seconds, follow_redirects=False, trust_env=False) as client:
        while True:
            target = pin(current_url, allow_private=policy.allow_private)
            request_url, pin_headers, extensions = pinned_url(target, current_url)
            request = client.build_request(
                current_method,
                request_url,
                headers={**(headers or {}), **pin_headers},
                json=json,
                content=content,
                extensions={**extensions, "trace": trace},
            )
            response = client.send(request, stream=True)
            try:
                if response.status_code in REDIRECT_CODES and "location" in response.headers:
                    if len(redirects) >= policy.max_redirects:
                        raise OutboundRefused(f"more than {policy.max_redirects} redirects", code="too_many_redirects")
                    next_url = urljoin(current_url, response.headers["location"])
                    if _origin(next_url) != _origin(current_url):
                        headers = {k: v for k, v in (headers or {}).items() if k.lower() in CROSS_ORIGIN_HEADERS}
                    current_url = next_url
                    redirects.append(current_url)
                    if response.status_code == 303:
                        current_method, json, content = "GET", None, None
                    continue
                body = _read_capped(response, policy.max_bytes, deadline)
                return GuardedResponse(
                    status_code=response.status_code,
                    headers=response.headers,
                    body=body,
                    url=current_url,
                    elapsed_ms=(time.monotonic() - started) * 1000,
                    redirects=redirects,
                )
            finally:
                response.close()


def _read_capped(response: httpx.Response, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise OutboundRefused(f"response larger than {max_bytes} bytes", code="response_too_large")
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise OutboundRefused(f"response larger than {max_bytes} bytes", code="response_too_large")
        if time.monotonic() > deadline:
            raise OutboundRefused("response took longer than the time limit", code="timeout")
        chunks.append(chunk)
    return b"".join(chunks)
