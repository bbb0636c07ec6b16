"""Shared helpers for the benchmarks: start a simulator process on a given core, wait for it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Benchmarks run on one machine, on their own var dir: keys there may be generated (the settings
# refuse that outside DEBUG unless told, READINESS_EMBEDDED). `manage.py probe` children inherit it.
os.environ.setdefault("READINESS_EMBEDDED", "true")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_simulator(scenario: str, *, core: int | None, extra: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "apps.simulator", "--scenario", scenario, "--port", str(port), *(extra or [])]
    if core is not None:
        cmd = ["taskset", "-c", str(core), *cmd]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("simulator did not start")


def stop(proc: subprocess.Popen) -> None:
    """Stop a server started in its own process group (start_new_session=True), children included."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def probe_cli(url: str, out: Path, *args: str) -> tuple[int, dict | None, str]:
    """`manage.py probe URL ... --json out`: (exit code, the JSON it wrote, the end of its stderr)."""
    import json

    proc = subprocess.run(
        [sys.executable, "manage.py", "probe", url, "--allow-private", "--quiet", "--json", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    data = json.loads(out.read_text()) if out.exists() else None
    return proc.returncode, data, proc.stderr.strip()[-500:]


def pin_self(core: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})


def django_setup(var_dir: str | None = None) -> None:
    """Django on a throw-away var dir (SQLite + filesystem broker) unless DATABASE_URL is set."""
    import tempfile

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readiness.settings")
    os.environ["READINESS_VAR_DIR"] = var_dir or tempfile.mkdtemp(prefix="readiness-bench-")
    os.environ["READINESS_ALLOW_PRIVATE_ENDPOINTS"] = "true"
    # Benchmarks push past the default per-org limits on purpose.
    os.environ.setdefault("READINESS_PROBE_MAX_RATE", "100000")
    os.environ.setdefault("READINESS_PROBE_MAX_CONCURRENCY", "100000")
    os.environ.setdefault("READINESS_PROBE_MAX_REQUESTS_PER_DAY", "100000000")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def demo_objects(base_url: str, *, profile: dict, parallelism: int = 1, name: str = "bench", max_tokens: int = 16):
    """An org, an owner, a project, an endpoint on `base_url` and a plan: what a bench probes."""
    import uuid

    from django.contrib.auth import get_user_model

    from apps.orgs import services as orgs
    from apps.orgs.access import Access
    from apps.probes import services as probes
    from apps.projects import services as projects

    user = get_user_model().objects.create_user(username=f"bench-{uuid.uuid4().hex[:8]}", password="x")
    org = orgs.organization_create(name=f"Bench {uuid.uuid4().hex[:6]}", owner=user)
    access = Access.for_user(user)
    project = projects.project_create(access=access, organization=org, name="Bench")
    endpoint = projects.endpoint_create(
        access=access,
        project=project,
        name="sim",
        base_url=base_url,
        model_name="sim-llama-3-8b",
        price_model="hosted_api",
        input_usd_per_mtok=1,
        output_usd_per_mtok=2,
    )
    plan = probes.probe_plan_create(
        access=access, endpoint=endpoint, name=name, profile=profile, max_tokens=max_tokens, parallelism=parallelism
    )
    return user, org, access, plan
