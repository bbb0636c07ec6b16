"""The guarded HTTP client against real servers on the loopback interface.

Each test starts a tiny `http.server` in a thread. Nothing of ours is mocked; the only
spy is a wrapper around `socket.create_connection` (what httpcore uses to open TCP
connections) so the tests can say which addresses were actually contacted.
"""

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from apps.core.guarded_http import GuardPolicy, guarded_request
from apps.net.netguard import OutboundRefused


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalServer:
    httpd: ThreadingHTTPServer
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _handler_class(server: LocalServer, respond):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            server.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
            try:
                respond(self, server)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up on purpose (size or time limit)

        do_GET = do_POST = do_PUT = _handle

        def log_message(self, format, *args):  # noqa: A002 - keep the test output quiet
            pass

    return Handler


@pytest.fixture
def serve():
    """serve(respond, ipv6=False) -> LocalServer; `respond(handler, server)` writes the answer."""
    started: list[LocalServer] = []

    def start(respond, *, ipv6: bool = False) -> LocalServer:
        server_class, host = (_IPv6Server, "::1") if ipv6 else (ThreadingHTTPServer, "127.0.0.1")
        server = LocalServer(httpd=None)
        server.httpd = server_class((host, 0), _handler_class(server, respond))
        server.httpd.daemon_threads = True
        threading.Thread(target=server.httpd.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.release.set()
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.fixture
def connections(monkeypatch) -> list[tuple]:
    """Every (host, port) the client opened a TCP connection to during the test."""
    opened: list[tuple] = []
    real_create_connection = socket.create_connection

    def recording_create_connection(address, *args, **kwargs):
        opened.append(tuple(address))
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", recording_create_connection)
    return opened


# --- responders ----------------------------------------------------------------------------


def send(handler, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def ok(body: bytes = b"hello", content_type: str = "text/plain"):
    def respond(handler, server):
        send(handler, 200, body, {"Content-Type": content_type})

    return respond


def redirect_to(location: str, status: int = 302):
    def respond(handler, server):
        send(handler, status, headers={"Location": location})

    return respond


def send_chunked(handler, chunks, *, pause: float = 0.0):
    handler.send_response(200)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    for chunk in chunks:
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        handler.wfile.flush()
        if pause:
            time.sleep(pause)
    handler.wfile.write(b"0\r\n\r\n")


# --- a normal request ----------------------------------------------------------------------


def test_a_normal_get_returns_status_headers_and_body(serve, connections):
    server = serve(ok(b'{"data": [{"id": "m"}]}', content_type="application/json"))
    url = server.url("/v1/models?limit=5")

    response = guarded_request("GET", url, policy=GuardPolicy(allow_private=True), headers={"X-Probe": "yes"})

    assert response.status_code == 200
    assert response.body == b'{"data": [{"id": "m"}]}'
    assert response.json() == {"data": [{"id": "m"}]}
    assert response.headers["content-type"] == "application/json"
    assert response.url == url
    assert response.redirects == []
    assert response.elapsed_ms > 0
    assert [(s.method, s.path) for s in server.seen] == [("GET", "/v1/models?limit=5")]
    assert server.seen[0].headers["X-Probe"] == "yes"
    assert connections == [("127.0.0.1", server.port)]


def test_a_post_sends_its_json_body(serve):
    server = serve(ok(b"created"))

    response = guarded_request("POST", server.url("/hook"), policy=GuardPolicy(allow_private=True), json={"a": 1})

    assert response.body == b"created"
    assert server.seen[0].method == "POST"
    assert json.loads(server.seen[0].body) == {"a": 1}


def test_an_error_status_is_returned_not_raised(serve):
    server = serve(lambda handler, srv: send(handler, 503, b"overloaded"))

    response = guarded_request("GET", server.url(), policy=GuardPolicy(allow_private=True))

    assert response.status_code == 503
    assert response.body == b"overloaded"


def test_the_host_header_is_the_original_name_while_the_connection_goes_to_the_pinned_address(serve, connections):
    server = serve(ok())
    url = server.url("/v1/models", host="localhost")

    response = guarded_request("GET", url, policy=GuardPolicy(allow_private=True))

    assert response.status_code == 200
    assert response.url == url
    assert server.seen[0].headers["Host"] == f"localhost:{server.port}"
    assert connections == [("127.0.0.1", server.port)]


def test_an_ipv6_literal_is_requested_with_a_bracketed_host_header(serve, connections):
    server = serve(ok(b"v6"), ipv6=True)
    url = f"http://[::1]:{server.port}/"

    response = guarded_request("GET", url, policy=GuardPolicy(allow_private=True))

    assert response.body == b"v6"
    assert server.seen[0].headers["Host"] == f"[::1]:{server.port}"
    assert connections == [("::1", server.port)]


# --- refused before connecting -------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_it_refuses_a_loopback_target_before_any_connection_when_private_is_not_allowed(serve, connections, host):
    server = serve(ok())

    with pytest.raises(OutboundRefused) as info:
        guarded_request("GET", server.url("/", host=host), policy=GuardPolicy(allow_private=False))

    assert info.value.code == "address_private"
    assert server.seen == []
    assert connections == []


def test_it_refuses_an_invalid_url_before_any_connection(connections):
    with pytest.raises(OutboundRefused) as info:
        guarded_request("GET", "ftp://127.0.0.1/", policy=GuardPolicy(allow_private=True))

    assert info.value.code == "url_invalid"
    assert connections == []


@pytest.mark.parametrize("path", ["/\x01", "/a\x7fb"])
def test_it_refuses_a_url_with_control_characters_as_url_invalid(serve, connections, path):
    server = serve(ok())

    with pytest.raises(OutboundRefused) as info:
        guarded_request("GET", server.url(path), policy=GuardPolicy(allow_private=True))

    assert info.value.code == "url_invalid"
    assert connections == []


# --- redirects -----------------------------------------------------------------------------


def test_redirect_to_metadata_address_is_refused(serve, connections):
    server = serve(redirect_to("http://169.254.169.254/latest/meta-data/iam/"))

    with pytest.raises(OutboundRefused) as info:
        guarded_request("GET", server.url("/v1/models"), policy=GuardPolicy(allow_private=True))

    assert info.value.code == "address_forbidden"
    assert len(server.seen) == 1
    assert connections == [("127.0.0.1", server.port)]
    assert not any(host == "169.254.169.254" for host, _ in connections)


def test_redirect_to_an_ipv4_mapped_metadata_address_is_refused(serve, connections):
    server = serve(redirect_to("http://[::ffff:169.254.169.254]/latest/meta-data/"))

    with pytest.raises(OutboundRefused) as info:
        guarded_request("GET", server.url(), policy=GuardPolicy(allow_private=True))

    assert info.value.code == "address_forbidden"
    assert connections == [("127.0.0.1", server.port)]


def test_redirect_to_a_non_http_scheme_is_refused(serve, connections):
    server = serve(redirect_to("file:///etc/passwd"))

    with pytest.raises(OutboundRefused) as info:
        guarded_request("GET", server.url(), policy=GuardPolicy(allow_private=True))

    assert info.value.code == "url_invalid"
    assert connections == [("127.0.0.1", server.port)]


def test_a_valid_redirect_is_followed_and_listed_in_redirects(serve):
    def respond(handler, server):
        if handler.path == "/start":
            send(handler, 302, headers={"Location": "/final?x=1"})
        else:
            send(handler, 200, b"done")

    server = serve(respond)

    response = guarded_request("GET", server.url("/start"), policy=GuardPolicy(allow_private=True))

    assert response.status_code == 200
    assert response.body == b"done"
    assert response.redirects == [server.url("/final?x=1")]
    assert response.url == server.url("/final?x=1")
    assert [s.path for s in server.seen] == ["/start", "/final?x=1"]


def test_a_redirect_to_another_allowed_server_is_followed_with_the_right_host_header(serve, connections):
    second = serve(ok(b"second"))
    first = serve(redirect_to(second.url("/there", host="localhost"), status=307))

    response = guarded_request("GET", first.url("/here"), policy=GuardPolicy(allow_private=True))

    assert response.body == b"second"
    assert response.redirects == [second.url("/there", host="localhost")]
    assert second.seen[0].headers["Host"] == f"localhost:{second.port}"
    assert connections == [("127.0.0.1", first.port), ("127.0.0.1", second.port)]


def test_a_303_redirect_turns_a_post_into_a_get_without_body(serve):
    def respond(handler, server):
        if handler.path == "/submit":
            send(handler, 303, headers={"Location": "/result"})
        else:
            send(handler, 200, b"result")

    server = serve(respond)

    response = guarded_request("POST", server.url("/submit"), policy=GuardPolicy(allow_private=True), json={"a": 1})

    assert response.body == b"result"
    assert [(s.method, s.path) for s in server.seen] == [("POST", "/submit"), ("GET", "/result")]
    assert server.seen[1].body == b""


def test_a_redirect_chain_longer_than_max_redirects_is_refused(serve):
    def respond(handler, server):
        hop = int(handler.path.rsplit("/", 1)[1])
        send(handler, 302, headers={"Location": f"/hop/{hop + 1}"})

    server = serve(respond)

    with pytest.raises(OutboundRefused) as info:
        guarded_request("GET", server.url("/hop/0"), policy=GuardPolicy(allow_private=True, max_redirects=2))

    assert info.value.code == "too_many_redirects"
    # the first request plus exactly max_redirects followed hops
    assert [s.path for s in server.seen] == ["/hop/0", "/hop/1", "/hop/2"]


def test_a_redirect_chain_of_exactly_max_redirects_is_followed(serve):
    def respond(handler, server):
        hop = int(handler.path.rsplit("/", 1)[1])
        if hop < 2:
            send(handler, 302, headers={"Location": f"/hop/{hop + 1}"})
        else:
            send(handler, 200, b"arrived")

    server = serve(respond)

    response = guarded_request("GET", server.url("/hop/0"), policy=GuardPolicy(allow_private=True, max_redirects=2))

    assert response.body == b"arrived"
    assert response.redirects == [server.url("/hop/1"), server.url("/hop/2")]


@pytest.mark.parametrize("location", ["http://[::1/", "http://[not-an-ip]/", "http://h:0x50/"])
def test_a_redirect_to_a_malformed_url_is_not_followed_and_fails_as_an_http_error(serve, connections, location):
    # The documented contract: OutboundRefused or httpx.HTTPError, never a bare ValueError.
    server = serve(redirect_to(location))

    with pytest.raises((OutboundRefused, httpx.HTTPError)):
        guarded_request("GET", server.url(), policy=GuardPolicy(allow_private=True))

    assert connections == [("127.0.0.1", server.port)]


def test_credentials_are_not_forwarded_on_a_redirect_to_another_origin(serve):
    second = serve(ok(b"second"))
    first = serve(redirect_to(second.url("/there")))
    sent = {
        "Authorization": "Bearer sk-secret",
        "Cookie": "session=1",
        "X-Request-Id": "abc",
        "X-Api-Key": "custom-secret",
        "Webhook-Signature": "v1,sig",
        "X-Gateway-Token": "tok",
    }

    response = guarded_request("GET", first.url("/here"), policy=GuardPolicy(allow_private=True), headers=sent)

    assert response.body == b"second"
    assert first.seen[0].headers["Authorization"] == "Bearer sk-secret"
    assert first.seen[0].headers["Cookie"] == "session=1"
    assert first.seen[0].headers["X-Api-Key"] == "custom-secret"
    for name in ("Authorization", "Cookie", "X-Api-Key", "Webhook-Signature", "X-Gateway-Token"):
        assert name not in second.seen[0].headers, f"{name} followed the redirect to another origin"
    assert second.seen[0].headers["X-Request-Id"] == "abc"


def test_credentials_are_kept_on_a_redirect_within_the_same_origin(serve):
    def respond(handler, server):
        if handler.path == "/start":
            send(handler, 302, headers={"Location": "/final"})
        else:
            send(handler, 200, b"done")

    server = serve(respond)

    guarded_request(
        "GET", server.url("/start"), policy=GuardPolicy(allow_private=True), headers={"Authorization": "Bearer k"}
    )

    assert [s.headers.get("Authorization") for s in server.seen] == ["Bearer k", "Bearer k"]


def test_a_redirect_status_without_location_is_returned_as_is(serve):
    server = serve(lambda handler, srv: send(handler, 302, b"nowhere"))

    response = guarded_request("GET", server.url(), policy=GuardPolicy(allow_private=True))

    assert response.status_code == 302
    assert response.redirects == []


# --- size limits ---------------------------------------------------------------------------


def test_an_oversized_response_with_content_length_is_refused(serve):
    server = serve(ok(b"x" * 5000))

    with pytest.raises(OutboundRefused) as info:
        guarded_request("GET", server.url(), policy=GuardPolicy(allow_private=True, max_bytes=1000))

    assert info.value.code == "response_too_large"
    assert len(server.seen) == 1


def test_an_oversized_content_length_is_refused_before_waiting_for_the_body(serve):
    def respond(handler, server):
        handler.send_response(200)
        handler.send_header("Content-Length", "10000000")
        handler.end_headers()
        handler.wfile.flush()
        server.release.wait(10)  # the body never comes

    server = serve(respond)

    started = time.monotonic()
    with pytest.raises(OutboundRefused) as info:
        guarded_request("GET", server.url(), policy=GuardPolicy(allow_private=True, max_bytes=1000, timeout_seconds=5))

    assert info.value.code == "response_too_large"
    assert time.monotonic() - started < 2


def test_an_oversized_chunked_response_is_refused(serve):
    server = serve(lambda handler, srv: send_chunked(handler, [b"y" * 500] * 10))

    with pytest.raises(OutboundRefused) as info:
        guarded_request("GET", server.url(), policy=GuardPolicy(allow_private=True, max_bytes=1000))

    assert info.value.code == "response_too_large"


def test_an_oversized_response_delimited_by_connection_close_is_refused(serve):
    def respond(handler, server):
        handler.send_response(200)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        handler.wfile.write(b"z" * 5000)

    server = serve(respond)

    with pytest.raises(OutboundRefused) as info:
        guarded_request("GET", server.url(), policy=GuardPolicy(allow_private=True, max_bytes=1000))

    assert info.value.code == "response_too_large"


def test_a_response_of_exactly_max_bytes_is_accepted(serve):
    chunked = serve(lambda handler, srv: send_chunked(handler, [b"a" * 400, b"b" * 600]))
    with_length = serve(ok(b"c" * 1000))
    policy = GuardPolicy(allow_private=True, max_bytes=1000)

    assert guarded_request("GET", chunked.url(), policy=policy).body == b"a" * 400 + b"b" * 600
    assert guarded_request("GET", with_length.url(), policy=policy).body == b"c" * 1000


# --- time limits ---------------------------------------------------------------------------


def test_a_server_that_hangs_times_out_within_a_bounded_time(serve):
    def respond(handler, server):
        server.release.wait(10)  # never answers within the test's time limit

    server = serve(respond)

    started = time.monotonic()
    with pytest.raises((httpx.TimeoutException, OutboundRefused)) as info:
        guarded_request("GET", server.url(), policy=GuardPolicy(allow_private=True, timeout_seconds=0.5))
    elapsed = time.monotonic() - started

    if isinstance(info.value, OutboundRefused):
        assert info.value.code == "timeout"
    assert len(server.seen) == 1
    assert 0.4 < elapsed < 3


def test_a_server_that_trickles_its_body_is_cut_off_at_the_time_limit(serve):
    # Every chunk arrives well within the per-read timeout; only the overall deadline stops it.
    server = serve(lambda handler, srv: send_chunked(handler, [b"t"] * 40, pause=0.1))

    started = time.monotonic()
    with pytest.raises(OutboundRefused) as info:
        guarded_request("GET", server.url(), policy=GuardPolicy(allow_private=True, timeout_seconds=1.0))
    elapsed = time.monotonic() - started

    assert info.value.code == "timeout"
    assert 0.9 < elapsed < 2.5


def test_a_server_that_trickles_its_headers_is_cut_off_at_the_time_limit(serve):
    # Each header line arrives well within the per-read timeout, so only an overall deadline
    # can stop this; 15 lines 0.2 s apart take 3 s against a 0.5 s limit.
    def respond(handler, server):
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(15):
            handler.wfile.write(b"X-Slow: 1\r\n")
            handler.wfile.flush()
            time.sleep(0.2)
        handler.wfile.write(b"Content-Length: 2\r\n\r\nok")

    server = serve(respond)

    started = time.monotonic()
    with pytest.raises((httpx.TimeoutException, OutboundRefused)):
        guarded_request("GET", server.url(), policy=GuardPolicy(allow_private=True, timeout_seconds=0.5))

    assert time.monotonic() - started < 1.5
