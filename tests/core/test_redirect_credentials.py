import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from apps.core.guarded_http import GuardPolicy, guarded_request


def test_credentials_do_not_follow_a_redirect_to_another_origin():
    seen = {}

    class Target(BaseHTTPRequestHandler):
        def do_GET(self):
            seen["authorization"] = self.headers.get("Authorization")
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    target = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=target.serve_forever, daemon=True).start()

    class Redirector(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{target.server_address[1]}/models")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    redirector = ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    threading.Thread(target=redirector.serve_forever, daemon=True).start()
    try:
        response = guarded_request(
            "GET",
            f"http://127.0.0.1:{redirector.server_address[1]}/v1/models",
            policy=GuardPolicy(allow_private=True),
            headers={"Authorization": "Bearer sk-secret"},
        )
    finally:
        target.shutdown()
        redirector.shutdown()
    assert response.status_code == 200
    assert seen["authorization"] is None
