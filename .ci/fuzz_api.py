"""Property-based fuzzing of the whole REST API from its own OpenAPI schema (schemathesis).

Every operation, as a member of the demo org (a personal read-write token) and as an outsider (an
org token of another organization): generated bodies, ids, filters and headers, plus the
stateful phase that chains created ids into later calls. It must find 0 server errors and 0
responses that do not match the schema. The server runs as in production (DEBUG off: JSON only,
no browsable forms) on a throw-away database.

Fixed time budget: `--max-time` seconds per identity (default 240), so CI stays bounded.
Schemathesis lives in its own venv under $READINESS_VAR_DIR (default var/), never in ours.

    python .ci/fuzz_api.py [--max-time 240] [--max-examples 25]
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMATHESIS = "schemathesis==4.32.5"  # pinned: the gate must mean the same thing next time
TOKENS = """
from apps.orgs import services
from apps.orgs.access import Access
from apps.orgs.models import Organization
from django.contrib.auth import get_user_model

User = get_user_model()
acme = Organization.objects.get(slug="acme")
_, member = services.personal_token_create(access=Access.for_user(User.objects.get(username="sam")), org=acme,
                                           name="fuzz", scope="read_write")
mallory = User.objects.create_user("mallory", password="mallory-fuzz-pass-1")
evil = services.organization_create(name="Evil", slug="evil", owner=mallory)
_, outsider = services.api_token_create(access=Access.for_user(mallory), org=evil, name="fuzz", scope="read_write")
print(member)
print(outsider)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_venv(var: Path) -> Path:
    venv = var / "fuzz-venv"
    marker = venv / ".installed"
    if not (marker.exists() and marker.read_text() == SCHEMATHESIS):
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([venv / "bin/python", "-m", "pip", "install", "-q", SCHEMATHESIS], check=True)
        marker.write_text(SCHEMATHESIS)
    return venv / "bin/schemathesis"


def production_env(var: Path) -> dict:
    fernet = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DEBUG")}
    return env | {
        "READINESS_VAR_DIR": str(var),
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": fernet,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # The fuzzer is one client sending thousands of requests: the API's rate limit would answer
        # 429 to most of them and hide what they would have found.
        "READINESS_API_RATE_LIMIT": "1000000/min",
    }


def server_errors(log: str) -> list[str]:
    """Each 500 response line and each traceback, the latter with the lines up to its exception."""
    found, block = [], None
    for line in log.splitlines():
        if block is not None:
            block.append(line)
            if line and not line.startswith((" ", "\t", "Traceback", "During handling", "The above")):
                found.append("\n".join(block[-40:]))
                block = None
        elif line.startswith("Traceback"):
            block = [line]
        elif '" 500 ' in line:
            found.append(line)
    if block is not None:
        found.append("\n".join(block[-40:]))
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-time", type=int, default=240, help="seconds per identity")
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--seed", type=int, default=20261201, help="fixed, so that CI explores the same cases")
    args = parser.parse_args()
    var_root = Path(os.environ.get("READINESS_VAR_DIR") or ROOT / "var")
    var_root.mkdir(parents=True, exist_ok=True)
    schemathesis = ensure_venv(var_root)
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        env = production_env(Path(tmp))
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        # As a deploy does: the production settings serve hashed static names from collectstatic's manifest.
        subprocess.run([*manage, "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        subprocess.run([*manage, "seed_demo"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        tokens = subprocess.run(
            [*manage, "shell", "-c", TOKENS], cwd=ROOT, env=env, check=True, capture_output=True, text=True
        ).stdout.split()[-2:]
        port = free_port()
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
        server = subprocess.Popen(
            [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}/api/v1/schema/"
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(url, timeout=2).read()
                    break
                except OSError:
                    time.sleep(0.3)
            failed = []
            for name, token in zip(("member", "outsider"), tokens, strict=True):
                print(f"== schemathesis as the {name}", flush=True)
                run = subprocess.run(
                    [
                        schemathesis,
                        "run",
                        url,
                        "-H",
                        f"Authorization: Bearer {token}",
                        "--checks",
                        "not_a_server_error,response_schema_conformance",
                        "--max-examples",
                        str(args.max_examples),
                        "--max-time",
                        str(args.max_time),
                        "--workers",
                        "1",
                        "--seed",
                        str(args.seed),
                    ],
                    cwd=tmp,
                )
                if run.returncode != 0:
                    failed.append(name)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(10)
        errors = server_errors((Path(tmp) / "server.log").read_text(errors="replace"))
        if errors:
            # Whole tracebacks, not their first lines: the log goes with the temporary directory.
            print("server errors in the log:\n" + "\n".join(errors[:5]))
        if failed or errors:
            print(f"== API fuzzing FAILED ({', '.join(failed) or 'server errors'})")
            return 1
    print("== API fuzzing: 0 server errors, 0 responses off the schema")
    return 0


if __name__ == "__main__":
    sys.exit(main())
