"""`make run`: web server, Celery worker, Celery beat and the simulator, together.

Prints the URL and demo logins once the web server answers /healthz, and on Ctrl-C (or if
any process dies) stops them all: SIGINT first, SIGTERM after a grace period, SIGKILL last.

Everything shares one machine, often a small one, with the probe client that has to time
tokens to the millisecond. So every process but the probe worker runs at a lower priority
(`nice`), and the demo's two probe runs go one after the other, never together.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.demo.management.commands.seed_demo import ADMIN, DEMO_USERS, demo_load

GRACE_SECONDS = 10
# The demo's probe plans, in the order they run: the baseline first, so the readiness page has
# latency evidence within a minute; then the autoscaling step.
DEMO_PLANS = ("baseline", "autoscaling")
# How long the last demo run must have been finished before the next starts: a saturated run's
# automatic re-run is queued just after it finishes, and should go first.
DEMO_GAP_S = 5


class Command(BaseCommand):
    help = "Run web + worker + beat + simulator until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--simulator-port", type=int, default=8900)
        parser.add_argument("--receiver-port", type=int, default=8901)
        parser.add_argument("--autoscaling-simulator-port", type=int, default=8902)

    def handle(
        self,
        *args,
        host: str,
        port: int,
        simulator_port: int,
        receiver_port: int,
        autoscaling_simulator_port: int,
        **options,
    ):
        py = sys.executable
        # The probe worker's event loop timestamps every token; when the web server, the simulators
        # or the other worker take the CPU from it, its timers fire late and the run is "client
        # saturated" (not evidence). At a lower priority they still get all the CPU it leaves.
        nice = [shutil.which("nice"), "-n", "10"] if shutil.which("nice") else []

        # Two processes each: the demo's plans run as two shards at once (seed_demo.demo_load).
        def worker(queue: str, name: str) -> list[str]:
            return [
                py,
                "-m",
                "celery",
                "-A",
                "readiness",
                "worker",
                "-l",
                "info",
                "--concurrency",
                "2",
                "-Q",
                queue,
                "-n",
                f"{name}@%h",
            ]

        commands = {
            # Fair queueing between the tenants named by X-Tenant: the demo's noisy-neighbour plan.
            "simulator": [
                *nice,
                py,
                "-m",
                "apps.simulator",
                "--host",
                "127.0.0.1",
                "--port",
                str(simulator_port),
                "--isolation",
                "fair",
            ],
            # Batch slots as the demo plan was sized for this machine (seed_demo.demo_load).
            "autoscaling simulator": [
                *nice,
                py,
                "-m",
                "apps.simulator",
                "--host",
                "127.0.0.1",
                "--port",
                str(autoscaling_simulator_port),
                "--scenario",
                "autoscaling",
                "--slots",
                str(demo_load()["autoscaling_slots"]),
            ],
            # Two workers: probe shards on their own queue, so a long probe never holds up webhook
            # deliveries, reports and usage-log analyses on the default one.
            "worker": [*nice, *worker("celery", "default")],
            "probe worker": worker(settings.READINESS_PROBE_QUEUE, "probes"),
            "beat": [*nice, py, "-m", "celery", "-A", "readiness", "beat", "-l", "info"],
            "web": [*nice, py, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
        }
        procs: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        receiver = self._start_receiver(receiver_port)
        try:
            for name, cmd in commands.items():
                # Own process group: Ctrl-C reaches us once, and we stop the children in order.
                procs[name] = subprocess.Popen(cmd, start_new_session=True, env=os.environ.copy())
            url = f"http://{host}:{port}/"
            demo = []
            if self._wait_healthy(url + "healthz", procs, lambda: stopping):
                demo = self._demo_plans()
                self._banner(url, receiver_port, [p.name for p in demo])
            last_check = 0.0
            while not stopping:
                dead = [n for n, p in procs.items() if p.poll() is not None]
                if dead:
                    self.stderr.write(f"{', '.join(dead)} exited; stopping everything.")
                    break
                if demo and time.monotonic() - last_check > 1:
                    last_check = time.monotonic()
                    demo = self._demo_next(demo)
                time.sleep(0.5)
        finally:
            self._stop_all(procs)
            if receiver is not None:
                receiver.shutdown()

    def _start_receiver(self, port: int):
        """The demo org's webhook connector points here; each delivery is printed with its signature check."""
        from apps.demo.management.commands.seed_demo import DEMO_CONNECTOR
        from apps.integrations.models import Connector
        from apps.integrations.receiver import Receiver

        connector = Connector.objects.filter(organization__slug="acme", name=DEMO_CONNECTOR).first()
        if connector is None or not connector.secret:
            return None
        try:
            return Receiver(secret=connector.secret.reveal(), log=True).start(port)
        except OSError as exc:
            self.stderr.write(f"webhook receiver not started on port {port}: {exc}")
            return None

    def _wait_healthy(self, url, procs, stopping) -> bool:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not stopping():
            if any(p.poll() is not None for p in procs.values()):
                return False
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.5)
        return False

    def _demo_plans(self) -> list:
        """The demo plans that never ran, in DEMO_PLANS order (baseline 40 s, autoscaling 2 min 20 s):
        a new user finds real charts and an autoscaling analysis; later starts leave them be."""
        from apps.probes.models import ProbePlan

        plans = ProbePlan.objects.filter(endpoint__project__organization__slug="acme", name__in=DEMO_PLANS)
        waiting = [p for p in plans.select_related("endpoint__project__owner") if not p.runs.exists()]
        return sorted(waiting, key=lambda p: DEMO_PLANS.index(p.name))

    def _demo_next(self, waiting: list) -> list:
        """Start the next demo plan once no run of the organization is active (and the last one
        finished DEMO_GAP_S ago); returns the plans still waiting."""
        from datetime import timedelta

        from django.utils import timezone

        from apps.core.errors import ApplicationError
        from apps.orgs.access import Access
        from apps.probes import services
        from apps.probes.models import ACTIVE_STATUSES, ProbeRun

        runs = ProbeRun.objects.filter(organization__slug="acme")
        if runs.filter(status__in=ACTIVE_STATUSES).exists():
            return waiting
        if runs.filter(finished_at__gt=timezone.now() - timedelta(seconds=DEMO_GAP_S)).exists():
            return waiting
        plan, rest = waiting[0], waiting[1:]
        try:
            run = services.probe_run_start(access=Access.for_user(plan.endpoint.project.owner), plan=plan)
        except ApplicationError as exc:
            self.stderr.write(f"  demo probe run of {plan.name} not started: {exc}")
            return rest
        self.stdout.write(f"  started demo probe run #{run.pk} ({plan.name}, {run.planned_duration_s:.0f} s)")
        return rest

    def _banner(self, url: str, receiver_port: int, demo: list[str]) -> None:
        runs = (
            "  The demo's probe runs (baseline 40 s, then autoscaling 2 min 20 s) start now, one after the other.\n"
            if demo
            else ""
        )
        logins = "\n".join(f"    {u} / {p}   ({r.label}; {', '.join(f) or 'no function'})" for u, p, r, f in DEMO_USERS)
        self.stdout.write(
            self.style.SUCCESS(
                f"\n  readiness is up: {url}\n\n  Log in as\n{logins}\n    {ADMIN[0]} / {ADMIN[1]}   "
                f"(superuser, {url}admin/)\n\n  API docs: {url}api/v1/docs/   Webhook receiver: "
                f"http://127.0.0.1:{receiver_port}/hooks/readiness (deliveries print below)\n"
                f"{runs}  Ctrl-C stops everything.\n"
            )
        )

    def _stop_all(self, procs: dict[str, subprocess.Popen]) -> None:
        for sig, wait in ((signal.SIGINT, GRACE_SECONDS), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            alive = [p for p in procs.values() if p.poll() is None]
            if not alive:
                break
            for p in alive:
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and any(p.poll() is None for p in alive):
                time.sleep(0.2)
        self.stdout.write("stopped.")
