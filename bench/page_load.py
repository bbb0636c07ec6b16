"""How long each main page takes to load in Chromium, on the demo data. Budget: every page < 1 s.

Makes a throw-away var dir with the demo (`manage.py seed_demo`), runs the demo's probe plans
against two simulators (in this process, as a worker would: the baseline twice, for the
comparison and the trend, and the autoscaling step once), generates two reports, then starts the
web server and loads every main page in headless Chromium (Debian's package), signed in as alice.

Each page is loaded twice: `cold` with an empty browser cache (the first visit after sign-in),
`warm` on the next visit, when hashed static files come from the cache without asking. A page's
time is navigation start until its load event has ended and the charts in view are drawn
(static/js/app.js draws those at once and the ones below the fold right after). Prints one JSON object:
{"pages": {name: {"cold_ms", "warm_ms"}}, "max_ms", "budget_ms", "within_budget", ...}.

    python bench/page_load.py [--mode manifest|debug] [--short] [--reuse VAR_DIR]

--mode manifest (default): DEBUG off, `collectstatic`, hashed names cached for good (production).
--mode debug: what `make run` serves (DEBUG on, static/ as it is, revalidated on every load).
--short: the demo's plans replaced by short ones (a few seconds each instead of ~3 minutes).
--reuse: the var dir of an earlier run (printed as "var"): its data again, without preparing it.

Besides each page's time: `server_ms` (request sent to the first byte of the answer),
`scripts_ms` (navigation start until the page is parsed and its scripts, plotly's included, have
run) and `charts_ms` (until every chart, below the fold too, is drawn; app.js marks it).
"""

# ruff: noqa: I001  (_common must come first: it puts the repository on sys.path)
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import ROOT, free_port, stop

BUDGET_MS = 1000
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHORT_STEADY = {
    "stages": [
        {"kind": "poisson", "rate": 4, "duration": 4, "name": "steady 4/s"},
        {"kind": "poisson", "rate": 8, "duration": 4, "name": "peak 8/s"},
    ]
}
SHORT_AUTOSCALING = {"autoscaling": {"base_rate": 3, "peak_rate": 12, "base_s": 5, "hold_s": 20, "after_s": 10}}


def manage(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def start(cmd: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def prepare(short: bool) -> dict[str, str]:
    """Run the demo's plans and make two reports (this process is the worker); the pages' paths."""
    from apps.demo.management.commands.seed_demo import DEMO_AUTOSCALING_ENDPOINT
    from apps.orgs.access import Access
    from apps.probes import services as probes
    from apps.probes.execution import shard_execute
    from apps.projects.models import Project
    from apps.reports import services as reports

    project = Project.objects.get(organization__slug="acme", slug="support-copilot")
    access = Access.for_user(project.organization.memberships.get(user__username="alice").user)
    baseline = project.endpoints.get(name="simulator").probe_plans.get(name="baseline")
    autoscaling = project.endpoints.get(name=DEMO_AUTOSCALING_ENDPOINT).probe_plans.get(name="autoscaling")
    if short:
        baseline = probes.probe_plan_update(access=access, plan=baseline, profile=SHORT_STEADY)
        autoscaling = probes.probe_plan_update(access=access, plan=autoscaling, profile=SHORT_AUTOSCALING)

    def run(plan):
        started = probes.probe_run_start(access=access, plan=plan)
        for shard in started.shards.all():
            shard_execute(shard_id=shard.pk, org_id=project.organization_id)
        started.refresh_from_db()
        return started

    first, second, scaling = run(baseline), run(baseline), run(autoscaling)
    reports.report_create(access=access, project=project)
    report = reports.report_create(access=access, project=project)
    checklist = project.checklists.order_by("pk").first()
    usage_log = project.usage_logs.order_by("pk").first()
    o, p = "/o/acme", f"/o/acme/projects/{project.slug}"
    return {
        "dashboard": f"{o}/",
        "project": f"{p}/",
        "readiness": f"{p}/readiness/",
        "checklist": f"{o}/checklists/{checklist.pk}/",
        "plan": f"{o}/plans/{baseline.pk}/",
        "run": f"{o}/runs/{second.pk}/",
        "autoscaling run": f"{o}/runs/{scaling.pk}/",
        "compare": f"{o}/runs/{first.pk}/compare/{second.pk}/",
        "cost": f"{p}/cost/",
        "usage log": f"{o}/usage-logs/{usage_log.pk}/",
        "report": f"{o}/reports/{report.pk}/",
    }


TIMING = """() => {
  const n = performance.getEntriesByType('navigation')[0];
  const at = name => (performance.getEntriesByName(name)[0] || {}).startTime || 0;
  return {load: Math.max(n.loadEventEnd, at('charts-visible')) - n.startTime, server: n.responseStart - n.requestStart,
          scripts: n.domContentLoadedEventStart - n.startTime, charts: at('charts-drawn')};
}"""
CHARTS_DRAWN = "() => performance.getEntriesByName('charts-drawn').length || !document.querySelector('[data-plotly]')"


def measure(base: str, pages: dict[str, str]) -> dict[str, dict]:
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.goto(base + "/login/")
        page.fill("#id_username", "alice")
        page.fill("#id_password", "alice-demo-pass")
        page.click("button[type=submit]")
        page.wait_for_url("**/o/acme/**")
        for name, path in pages.items():
            figures = {}
            for visit in ("cold", "warm"):
                if visit == "cold":
                    # An empty cache for this page's first visit: what a first-time visitor waits for.
                    context.new_cdp_session(page).send("Network.clearBrowserCache")
                page.goto(base + path, wait_until="load")
                page.wait_for_function(CHARTS_DRAWN)
                timing = page.evaluate(TIMING)
                figures[f"{visit}_ms"] = round(timing["load"])
                figures[f"{visit}_server_ms"] = round(timing["server"])
                figures[f"{visit}_scripts_ms"] = round(timing["scripts"])
                figures[f"{visit}_charts_ms"] = round(timing["charts"])
            figures["charts"] = page.evaluate("document.querySelectorAll('[data-plotly]').length")
            out[name] = figures
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("manifest", "debug"), default="manifest")
    parser.add_argument("--short", action="store_true")
    parser.add_argument("--reuse", metavar="VAR_DIR")
    args = parser.parse_args()
    var = args.reuse or tempfile.mkdtemp(prefix="readiness-page-load-")
    sim_port, auto_port, web_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "READINESS_VAR_DIR": var,
        "READINESS_EMBEDDED": "true",
        "DJANGO_SETTINGS_MODULE": "readiness.settings",
        "READINESS_ALLOW_PRIVATE_ENDPOINTS": "true",
        "READINESS_EMAIL": "console",
    }
    if args.mode == "debug":
        env.update(DEBUG="true", READINESS_STATIC_MANIFEST="false")
    else:
        env.update(DEBUG="false", READINESS_STATIC_MANIFEST="true")
    os.environ.update(env)
    procs = []
    try:
        procs.append(start([sys.executable, "-m", "apps.simulator", "--port", str(sim_port)], env))
        procs.append(
            start([sys.executable, "-m", "apps.simulator", "--port", str(auto_port), "--scenario", "autoscaling"], env)
        )
        if args.mode == "manifest":
            manage(env, "collectstatic", "--noinput", "-v", "0")
        saved = Path(var) / "page-load-pages.json"
        started = time.monotonic()
        if not args.reuse:
            manage(env, "migrate", "--noinput", "-v", "0")
            manage(
                env,
                "seed_demo",
                f"--simulator-url=http://127.0.0.1:{sim_port}/v1",
                f"--autoscaling-simulator-url=http://127.0.0.1:{auto_port}/v1",
            )
            import django

            django.setup()
            wait_http(f"http://127.0.0.1:{sim_port}/v1/models")
            wait_http(f"http://127.0.0.1:{auto_port}/v1/models")
            saved.write_text(json.dumps(prepare(args.short)))
        pages = json.loads(saved.read_text())
        prepared_s = round(time.monotonic() - started, 1)
        procs.append(start([sys.executable, "manage.py", "runserver", f"127.0.0.1:{web_port}", "--noreload"], env))
        base = f"http://127.0.0.1:{web_port}"
        wait_http(base + "/healthz")
        loads = measure(base, pages)
    finally:
        for proc in procs:
            stop(proc)
    worst = max(max(v["cold_ms"], v["warm_ms"]) for v in loads.values())
    result = {
        "mode": args.mode,
        "short": args.short,
        "var": var,
        "cores": os.cpu_count(),
        "prepare_s": prepared_s,
        "pages": loads,
        "max_ms": worst,
        "budget_ms": BUDGET_MS,
        "within_budget": worst < BUDGET_MS,
    }
    print(json.dumps(result, indent=1))
    sys.exit(0 if worst < BUDGET_MS else 1)


if __name__ == "__main__":
    main()
