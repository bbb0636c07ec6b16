"""Chaos suite: real processes on real PostgreSQL + Redis, one fault per scenario, invariants checked.

    python bench/chaos.py [--only NAME ...] [--keep]

It starts its own throw-away PostgreSQL cluster and Redis server on free 127.0.0.1 ports, the way
.ci/run starts the second pass's (initdb and pg_ctl as the postgres user when run as root, fsync
off, Redis without persistence), migrates a fresh database (readiness_chaos), and hands every
process DATABASE_URL, REDIS_URL and READINESS_VAR_DIR (a temp dir) with READINESS_EMBEDDED. Each
scenario runs in a child process of its own and starts, each in its own session: the simulator
(`python -m apps.simulator`), a worker on the default queue, two probe workers (one shard each),
celery beat, and, in the child, two webhook receivers (apps/integrations/receiver.py; one answers
200, the other 503). Then, during (a) a probe run (2 shards, 8 req/s for 12 s), (b) the analysis
of a 2M-row usage log and (c) a burst of webhook deliveries (half before the fault, half during
it), it injects one fault:

  redis_restart     Redis stopped for 10 s and started again (no persistence: its queues are lost)
  postgres_restart  PostgreSQL stopped (pg_ctl -m fast) for 5 s and started again
  worker_sigkill    the process group of the probe worker running shard 0 SIGKILLed mid-shard
  beat_twice        two `celery beat` processes all along; a plan's schedule ticks under both
  disk_full         the embedded default (SQLite + filesystem broker under var/), var/ a 48 MB
                    tmpfs filled to ENOSPC for 8 s (mounting needs root: otherwise not run)
  clock_jump        the clock of the default worker (the one running the reapers) jumps 5 min
                    ahead mid-run: time-machine started inside that process moves its time.time()
                    and datetime; the OS clock, monotonic clocks and PostgreSQL's now() stay
                    (libfaketime is not installed; not run without time-machine). The reapers'
                    next ticks are sent right after the jump, as beat would send them 15 and 30 s
                    later, so that they come while the run is still going

The reapers get their time (heartbeat timeouts shortened to 10 s, so at most ~45 s), then:

  run         the run ends succeeded / failed / cancelled as what happened says (a fault that
              kills nothing must not fail it; a SIGKILLed shard must fail it as "worker lost"),
              its request count equals its stored records, and nothing stays queued / running
  records     each shard's record batches are numbered without gaps, no (shard, seq) twice,
              every request the simulator completed (its ground truth, per X-Request-Id) is
              stored, except, for a shard that died, those of its last flush interval
  deliveries  each delivery to the 200 receiver succeeded and arrived exactly once (count per
              webhook-id); each to the 503 receiver is a dead letter after its attempts
  usage log   done with every row counted, or failed with a reason; never left analysing
  stuck       no run, shard, usage log or delivery left in flight; every message still in the
              broker (queued or unacked) would be a no-op if delivered now
  exits       no worker or beat exited by itself (one that does is restarted, as a supervisor
              would, so the other checks still see the recovery, and the scenario fails)

Prints a table scenario -> outcome (a scenario impossible here says "not run: <why>"), then one
JSON object; exits 1 when a check failed. Every process is started with start_new_session=True
and its process group killed in a finally block, here and in the parent.
"""

# ruff: noqa: I001  (_common must come first: it puts the repository on sys.path)
from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from _common import ROOT, free_port

PY = sys.executable
SCENARIOS = {
    "redis_restart": "Redis restarted (down 10 s)",
    "postgres_restart": "PostgreSQL restarted (down 5 s)",
    "worker_sigkill": "probe worker SIGKILLed mid-shard",
    "beat_twice": "two celery beat processes",
    "disk_full": "var/ full (tmpfs, embedded default)",
    "clock_jump": "reaper worker's clock +5 min",
}
# The workload, sized for 2 cores: the probe load stays light so the client keeps its timing.
PROBE_RATE, PROBE_S, SHARDS, MAX_TOKENS, PROMPT_TOKENS = 8, 12, 2, 24, 32
USAGE_ROWS = 2_000_000
BURST = 10  # events per half of the burst; each goes to both connectors
MAX_ATTEMPTS = 3
JUMP_S = 300
FAULT_AFTER_S = 3.0  # after both shards are running
# Reapers: the probe reaper runs every 15 s, the usage-log one every 30 s, deliveries are due every
# 10 s (readiness/settings.py); with 10 s heartbeat timeouts everything has settled 45 s after a
# fault, or never will.
SETTLE_S = 50
FLUSH_WINDOW_S = 3.0 + 1.0 + 1.5  # execution.FLUSH_EVERY_S + TICK_S + slack: what a dead shard may lose
CHILD_TIMEOUT_S = 170
APP_ENV = {
    "DJANGO_SETTINGS_MODULE": "readiness.settings",
    "READINESS_EMBEDDED": "true",
    "READINESS_ALLOW_PRIVATE_ENDPOINTS": "true",
    "READINESS_PROBE_QUEUE": "chaos-probes",
    "READINESS_PROBE_HEARTBEAT_TIMEOUT_S": "10",
    "READINESS_USAGE_LOG_HEARTBEAT_TIMEOUT_S": "10",
    "READINESS_OUTBOUND_TIMEOUT_SECONDS": "3",
    "READINESS_DELIVERY_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "READINESS_DELIVERY_BACKOFF_BASE_S": "1",
    "READINESS_PROBE_SATURATED_RERUNS": "0",
    "READINESS_PROBE_MAX_ACTIVE_RUNS": "8",
    "LOG_LEVEL": "WARNING",
    "PYTHONUNBUFFERED": "1",
}


# --- processes ------------------------------------------------------------------------------------


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def kill_registered(registry: Path) -> None:
    """SIGKILL every process group a child recorded (it may have died before its own cleanup)."""
    if registry.exists():
        for line in registry.read_text().split():
            kill_group(int(line))


class Procs:
    """Processes of one scenario, each in its own session, logged to a file; all killed in close().

    A worker or beat that exits without being told to is started again by `supervise()` (as
    systemd's Restart=always would; a deployment runs them under one) and its exit is recorded."""

    def __init__(self, logs: Path, registry: Path, env: dict[str, str], tag: str):
        self.logs, self.registry, self.env, self.tag = logs, registry, env, tag
        self.procs: dict[str, subprocess.Popen] = {}
        self.cmds: dict[str, list[str]] = {}
        self.supervised: set[str] = set()
        self.intended: set[str] = set()  # killed on purpose: restarted, not recorded
        self.exits: list[dict] = []
        self.restarts: dict[str, int] = {}
        self.lock = threading.RLock()
        self.done = threading.Event()
        self.t0 = time.monotonic()

    def start(self, name: str, cmd: list[str], supervised: bool = False) -> subprocess.Popen:
        log = open(self.logs / f"{self.tag}-{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        with open(self.registry, "a") as fh:
            fh.write(f"{proc.pid}\n")
        with self.lock:
            self.procs[name], self.cmds[name] = proc, cmd
            if supervised:
                self.supervised.add(name)
        return proc

    def worker(self, name: str, queues: list[str], concurrency: int, wrapper: list[str] | None = None):
        args = ["-A", "readiness", "worker", "-Q", ",".join([*queues, f"chaos-w-{name}"]), "-c", str(concurrency)]
        args += ["-n", f"{name}@chaos", "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat"]
        return self.start(name, [PY, *(wrapper or ["-m", "celery"]), *args], supervised=True)

    def beat(self, name: str, work: Path):
        cmd = [PY, "-m", "celery", "-A", "readiness", "beat", "-l", "warning", "-s", str(work / name)]
        return self.start(name, cmd, supervised=True)

    def supervise(self) -> None:
        """Until close(): start again, once a second at most, whatever supervised process exited."""
        while not self.done.wait(0.5):
            with self.lock:
                for name in sorted(self.supervised):
                    proc = self.procs[name]
                    if proc.poll() is None or self.restarts.get(name, 0) >= 5:
                        continue
                    if name not in self.intended:
                        self.exits.append(
                            {
                                "process": name,
                                "exit_code": proc.returncode,
                                "at_s": round(time.monotonic() - self.t0, 1),
                                "why": last_error(self.logs / f"{self.tag}-{name}.log"),
                            }
                        )
                    self.intended.discard(name)
                    kill_group(proc.pid)  # its pool processes, if any are left
                    self.restarts[name] = self.restarts.get(name, 0) + 1
                    self.start(name, self.cmds[name])

    def kill(self, name: str) -> None:
        with self.lock:
            self.intended.add(name)
            proc = self.procs[name]
            kill_group(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)

    def stop(self, name: str, grace: float = 10.0) -> None:
        """A warm shutdown (SIGTERM to the main process), then SIGKILL to the whole group."""
        with self.lock:
            self.supervised.discard(name)
            proc = self.procs[name]
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
        kill_group(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)

    def close(self) -> None:
        self.done.set()
        with self.lock:
            self.supervised.clear()
            procs = list(self.procs.values())
        for proc in procs:
            kill_group(proc.pid)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


def last_error(log: Path) -> str:
    """The last line of a process's log that says what went wrong."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if any(word in line for word in ("CRITICAL", "Unrecoverable", "Error", "error")):
            return line.strip()[:200]
    return lines[-1].strip()[:200] if lines else ""


def wait_port(port: int, timeout: float = 15.0) -> bool:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.1)
    return False


# --- the servers: PostgreSQL and Redis, as .ci/run starts them --------------------------------------


def find_pgbin() -> str | None:
    dirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: [int(x) for x in p.parent.name.split(".")])
    for d in reversed(dirs):
        if (d / "initdb").exists():
            return str(d)
    initdb = shutil.which("initdb")
    return str(Path(initdb).resolve().parent) if initdb else None


def servers_missing() -> str | None:
    """Why the PostgreSQL + Redis scenarios cannot run here, or None."""
    if find_pgbin() is None:
        return "no PostgreSQL binaries (initdb, pg_ctl)"
    if shutil.which("redis-server") is None:
        return "no redis-server"
    if os.geteuid() == 0 and (
        shutil.which("runuser") is None or subprocess.run(["id", "postgres"], capture_output=True).returncode
    ):
        return "running as root without a postgres user (the PostgreSQL binaries refuse root)"
    return None


class Servers:
    """A PostgreSQL cluster and a Redis server on free ports; `spec` lets a child restart them."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.pgbin, self.dir = spec["pgbin"], Path(spec["dir"])
        self.pg_port, self.redis_port = spec["pg_port"], spec["redis_port"]

    @classmethod
    def create(cls, work: Path) -> Servers:
        spec = {"pgbin": find_pgbin(), "dir": str(work / "servers"), "pg_port": free_port(), "redis_port": free_port()}
        Path(spec["dir"]).mkdir()
        return cls(spec)

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/readiness_chaos"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def _as_postgres(self, *cmd: str) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=60)

    def _check(self, result: subprocess.CompletedProcess, what: str) -> None:
        if result.returncode:
            raise RuntimeError(f"{what} failed: {(result.stderr or result.stdout).strip()[-400:]}")

    def init(self) -> None:
        pg = self.dir / "pg"
        pg.mkdir()
        self.dir.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(pg, "postgres")
        cmd = [f"{self.pgbin}/initdb", "-D", str(pg / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        self._check(self._as_postgres(*cmd), "initdb")
        self.pg_start()
        self.redis_start()
        createdb = [f"{self.pgbin}/createdb", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres"]
        self._check(subprocess.run([*createdb, "readiness_chaos"], capture_output=True, text=True), "createdb")

    def pg_start(self) -> None:
        pg = self.dir / "pg"
        opts = f"-p {self.pg_port} -k {pg} -c listen_addresses=127.0.0.1 -c fsync=off"
        start = [f"{self.pgbin}/pg_ctl", "-D", str(pg / "data"), "-l", str(pg / "log"), "-w", "-o", opts, "start"]
        self._check(self._as_postgres(*start), "pg_ctl start")

    def pg_stop(self, mode: str = "fast") -> None:
        self._check(
            self._as_postgres(f"{self.pgbin}/pg_ctl", "-D", str(self.dir / "pg" / "data"), "-m", mode, "stop"),
            "pg_ctl stop",
        )

    def redis_start(self) -> None:
        subprocess.run(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + [
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.dir / "redis.pid"),
                "--logfile",
                str(self.dir / "redis.log"),
            ],
            check=True,
        )
        if not wait_port(self.redis_port):
            raise RuntimeError("redis-server did not start")

    def redis_pid(self) -> int | None:
        try:
            return int((self.dir / "redis.pid").read_text())
        except (OSError, ValueError):
            return None

    def redis_stop(self) -> None:
        pid = self.redis_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def flush_redis(self) -> None:
        import redis

        redis.Redis(port=self.redis_port).flushall()

    def stop_all(self) -> None:
        with contextlib.suppress(Exception):
            self.pg_stop("immediate")
        with contextlib.suppress(Exception):
            self.redis_stop()


# --- the usage log ---------------------------------------------------------------------------------


def write_usage_log(path: Path, rows: int) -> None:
    """`rows` CSV rows, 20 a second from a fixed start, 5,000 users in 40 tenants."""
    rng = random.Random(11)
    start = 1_790_000_000
    with open(path, "w", encoding="utf-8") as out:
        out.write("timestamp,user_id,tenant,input_tokens,output_tokens\n")
        for lo in range(0, rows, 100_000):
            out.write(
                "".join(
                    f"{start + i // 20},u{rng.randrange(5000)},t{i % 40},{100 + i % 300},{20 + i % 200}\n"
                    for i in range(lo, min(rows, lo + 100_000))
                )
            )


# --- disk full: a small tmpfs for var/ -------------------------------------------------------------


def mount_tmpfs(path: Path, size_mb: int) -> str | None:
    """Mount a tmpfs of `size_mb` at `path`; returns why not, or None."""
    if os.geteuid() != 0:
        return "mounting a small tmpfs needs root (RLIMIT_FSIZE would stop one process's writes, not fill var/)"
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], capture_output=True, text=True
    )
    if result.returncode:
        return f"cannot mount a tmpfs: {result.stderr.strip()[:200]}"
    return None


def unmount(path: Path) -> None:
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


# --- the clock-jumped worker -----------------------------------------------------------------------


def clock_worker(flag: str, jump_s: float, argv: list[str]) -> None:
    """`celery worker` whose clock (time.time, datetime: time-machine) jumps `jump_s` ahead once
    `flag` exists: in the main process and in every pool process, each watching for itself."""
    import time_machine
    from celery.signals import worker_process_init

    def watch() -> None:
        while not os.path.exists(flag):
            time.sleep(0.1)
        time_machine.travel(time.time() + jump_s, tick=True).start()

    def start_watch(**_) -> None:
        threading.Thread(target=watch, daemon=True, name="clock-jump").start()

    worker_process_init.connect(start_watch, weak=False)
    start_watch()
    from celery.__main__ import main as celery_main

    sys.argv = ["celery", *argv]
    celery_main()


# --- a scenario, in its own child process ------------------------------------------------------------


class Check:
    def __init__(self):
        self.failed: list[str] = []
        self.passed: list[str] = []

    def __call__(self, ok: bool, what: str) -> bool:
        (self.passed if ok else self.failed).append(what)
        return ok


def retrying(fn, timeout: float = 30.0):
    """Call a database read again after the connection broke (PostgreSQL restarted, disk full)."""
    from django.db import Error, connections

    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except Error:
            connections.close_all()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class Scenario:
    """One fault during the three workloads; `facts` and `check` end up in the result."""

    def __init__(self, name: str, work: Path, embedded: bool):
        self.name, self.work, self.embedded = name, work, embedded
        self.facts: dict = {"fault": SCENARIOS[name]}
        self.check = Check()
        self.registry = work / "pgids"
        self.logs = work / "logs"
        self.procs = Procs(self.logs, self.registry, dict(os.environ), name)
        self.workers = ["default", "probeA", "probeB"]
        self.beats = ["beat"]
        self.servers = None if embedded else Servers(json.loads((work / "servers.json").read_text()))
        self.t0 = time.monotonic()
        self.burst_thread: threading.Thread | None = None
        self.burst_outcome: dict = {}

    # --- set-up ---------------------------------------------------------------------------------

    def world(self) -> None:
        from decimal import Decimal

        from django.contrib.auth import get_user_model

        from apps.integrations import services as integrations
        from apps.integrations.receiver import Receiver
        from apps.orgs import services as orgs
        from apps.orgs.access import Access
        from apps.probes import services as probes
        from apps.projects import services as projects

        owner = get_user_model().objects.create_user(username=f"chaos-{self.name}", password=os.urandom(8).hex())
        slug = f"chaos-{self.name.replace('_', '-')}"
        self.org = orgs.organization_create(name=f"Chaos {self.name}", slug=slug, owner=owner)
        self.access = access = Access.for_user(owner)
        self.project = projects.project_create(access=access, organization=self.org, name="Chaos")
        self.endpoint = projects.endpoint_create(
            access=access,
            project=self.project,
            name="simulator",
            base_url=self.sim_url,
            model_name="sim-llama-3-8b",
            price_model="self_hosted",
            gpu_type="NVIDIA L4",
            gpus_per_replica=1,
            gpu_hourly_usd=Decimal("0.80"),
            min_replicas=1,
            max_replicas=2,
        )
        self.plan = probes.probe_plan_create(
            access=access,
            endpoint=self.endpoint,
            name="chaos",
            profile={"stages": [{"kind": "constant", "rate": PROBE_RATE, "duration": PROBE_S}]},
            parallelism=SHARDS,
            max_tokens=MAX_TOKENS,
            prompt_tokens=PROMPT_TOKENS,
            request_timeout_s=10,
        )
        self.good, self.bad = Receiver(), Receiver(replies=[(503, {}, b"busy")])
        self.servers_http = [self.good.start(), self.bad.start()]
        events = ["decision.changed", "probe.failed", "probe.slo_missed", "probe.regressed"]
        good, self.good.secret = integrations.connector_create(
            access=access, organization=self.org, name="good", url=self.good.url, events=events
        )
        bad, self.bad.secret = integrations.connector_create(
            access=access, organization=self.org, name="bad", url=self.bad.url, events=["decision.changed"]
        )
        self.connectors = {"good": good.pk, "bad": bad.pk}
        folder = Path(os.environ["READINESS_USAGE_LOG_IMPORT_DIR"]) / slug
        folder.mkdir(parents=True, exist_ok=True)
        shared = Path(os.environ["READINESS_USAGE_LOG_IMPORT_DIR"]) / "_shared" / "usage.csv"
        try:
            os.link(shared, folder / "usage.csv")
        except OSError:
            shutil.copy(shared, folder / "usage.csv")

    def start_processes(self) -> None:
        port = free_port()
        self.procs.start("simulator", [PY, "-m", "apps.simulator", "--scenario", "steady", "--port", str(port)])
        self.sim_port, self.sim_url = port, f"http://127.0.0.1:{port}/v1"
        probe_queue = os.environ["READINESS_PROBE_QUEUE"]
        wrapper = None
        if self.name == "clock_jump":
            self.clock_flag = str(self.work / "clock-jump")
            wrapper = [str(Path(__file__).resolve()), "--clock-worker", self.clock_flag, "--"]
        self.procs.worker("default", ["celery"], 2, wrapper=wrapper)
        self.procs.worker("probeA", [probe_queue], 1)
        self.procs.worker("probeB", [probe_queue], 1)
        for beat in self.beats:
            self.procs.beat(beat, self.work)
        threading.Thread(target=self.procs.supervise, daemon=True, name="supervisor").start()
        if not wait_port(port):
            raise RuntimeError("the simulator did not start")

    def wait_workers(self, timeout: float = 60.0) -> None:
        """A ping through each worker's own queue, answered through the cache: each is consuming."""
        from django.core.cache import cache

        from apps.core.tasks import ping_task

        tokens = {}
        for name in self.workers:
            tokens[name] = os.urandom(8).hex()
            ping_task.apply_async(args=[tokens[name]], queue=f"chaos-w-{name}")
        deadline = time.monotonic() + timeout
        while tokens and time.monotonic() < deadline:
            tokens = {n: t for n, t in tokens.items() if cache.get(f"ping:{t}") is None}
            time.sleep(0.2)
        if tokens:
            raise RuntimeError(f"workers not consuming after {timeout:.0f} s: {', '.join(tokens)}")

    # --- the workload ---------------------------------------------------------------------------

    def burst(self, half: int) -> dict:
        """BURST decision.changed events in one transaction (as one request would send them)."""
        from django.db import Error, transaction

        from apps.integrations.services import emit

        outcome = {"emitted": 0, "error": None}
        try:
            with transaction.atomic():
                for i in range(BURST):
                    emit("decision.changed", project=self.project, data={"chaos": f"{half}-{i}"})
                    outcome["emitted"] += 1
        except Error as exc:  # the database refused: nothing of this half was created
            outcome.update(emitted=0, error=f"{type(exc).__name__}: {str(exc).strip()[:120]}")
        except Exception as exc:  # committed, but sending the tasks failed (broker down)
            outcome["error"] = f"enqueue after commit: {type(exc).__name__}: {str(exc).strip()[:120]}"
        return outcome

    def burst_in_background(self) -> None:
        def go():
            self.burst_outcome = self.burst(2)

        self.burst_thread = threading.Thread(target=go, daemon=True)
        self.burst_thread.start()

    def start_workload(self) -> None:
        from apps.costs import services as costs
        from apps.probes import services as probes

        self.run = probes.probe_run_start(access=self.access, plan=self.plan)
        self.usage = costs.usage_log_from_stored(access=self.access, project=self.project, name="usage.csv")
        self.facts["burst_1"] = self.burst(1)

    def wait_shards_running(self, timeout: float = 30.0) -> None:
        from apps.probes.models import ProbeShard

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ProbeShard.objects.filter(run=self.run, status="running").count() == SHARDS:
                return
            time.sleep(0.2)
        raise RuntimeError("the probe shards did not start")

    def settled(self) -> bool:
        from apps.costs.models import UsageLog
        from apps.integrations.models import Delivery
        from apps.probes.models import ACTIVE_STATUSES, ProbeRun

        runs = ProbeRun.objects.filter(organization=self.org, status__in=ACTIVE_STATUSES).exists()
        logs = UsageLog.objects.filter(project=self.project, status__in=["queued", "analysing"]).exists()
        deliveries = Delivery.objects.filter(connector__organization=self.org, status__in=["pending", "sending"])
        extra = self.extra_settled()  # first: it may have to act while the rest is still going
        return extra and not runs and not logs and not deliveries.exists()

    def extra_settled(self) -> bool:
        return True

    def wait_settled(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if retrying(self.settled):
                return True
            time.sleep(1.0)
        return False

    # --- the fault (overridden) -----------------------------------------------------------------

    expect_run = "succeeded"  # or "failed", or "either" (failed only with a shard's reason)
    expect_usage = "done"  # or "either"

    def prepare(self) -> None:
        """Before the processes start."""

    def inject(self) -> None:
        raise NotImplementedError

    def recover(self) -> None:
        """After the fault's duration."""

    # --- the end --------------------------------------------------------------------------------

    def drain(self) -> None:
        """Beat stops first, the workers take what is queued, then they stop (warm, then SIGKILL)."""
        for beat in self.beats:
            self.procs.stop(beat)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and any(where == "queued" for where, _ in self.queued_messages()):
            time.sleep(0.5)
        for name in self.workers:
            if self.procs.procs[name].poll() is None:
                self.procs.stop(name)

    def queued_messages(self):
        """(where, raw message) of every message the broker still holds: queued, or unacked."""
        if self.embedded:
            folder = Path(os.environ["READINESS_VAR_DIR"]) / "broker" / "queue"
            for path in folder.glob("*.msg"):
                with contextlib.suppress(OSError):
                    yield "queued", json.loads(path.read_bytes())
            return
        import redis

        r = redis.Redis.from_url(os.environ["REDIS_URL"])
        for key in r.scan_iter():
            kind = r.type(key)
            if kind == b"list":
                for raw in r.lrange(key, 0, -1):
                    yield "queued", json.loads(raw)
            elif key == b"unacked" and kind == b"hash":
                for raw in r.hvals(key):
                    yield "unacked", json.loads(raw)[0]

    def leftover(self) -> list[dict]:
        """Messages left in the broker, each with whether delivering it now would do nothing."""
        import base64

        from apps.costs.models import UsageLog
        from apps.integrations.models import Delivery
        from apps.probes.models import SHARD_FINISHED, ProbeShard

        periodic = ("reaper_task", "deliveries_due_task", "refresh_task", "announce_task", "prune_task", "ping_task")
        out = []
        for where, msg in self.queued_messages():
            task = (msg.get("headers") or {}).get("task", "?")
            try:
                args = json.loads(base64.b64decode(msg["body"]))[0]
            except (KeyError, ValueError, TypeError, IndexError):
                args = []
            if task.endswith(periodic):
                noop = True  # idempotent, or a health ping
            elif task.endswith("probe_shard_task"):
                noop = not ProbeShard.objects.filter(pk=args[0]).exclude(status__in=SHARD_FINISHED).exists()
            elif task.endswith("usage_log_analyse_task"):
                noop = not UsageLog.objects.filter(pk=args[0], status__in=["queued", "analysing"]).exists()
            elif task.endswith("delivery_send_task"):
                noop = not Delivery.objects.filter(pk=args[0], status="pending").exists()
            else:
                noop = False  # e.g. a scheduled probe: it would start a run
            out.append({"where": where, "task": task.rsplit(".", 1)[-1], "args": args, "noop": noop})
        return out

    def ground_truth(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.sim_port}/admin/ground-truth", timeout=10) as resp:
            return json.loads(resp.read())["requests"]

    # --- the checks ----------------------------------------------------------------------------

    def check_run(self, truth: dict) -> None:
        from apps.probes.engine.openai import RequestIds
        from apps.probes.engine.records import Records
        from apps.probes.models import ProbeRecordBatch, ProbeRun

        check = self.check
        run = ProbeRun.objects.get(pk=self.run.pk)
        shards = {s.index: s for s in run.shards.all()}
        self.facts["run"] = {
            "status": run.status,
            "error": run.error_message,
            "request_count": run.request_count,
            "shards": {i: [s.status, s.error_message[:80]] for i, s in shards.items()},
        }
        check(run.status in ("succeeded", "failed", "cancelled"), f"run ends finished (is {run.status})")
        failed = [s for s in shards.values() if s.status == "failed"]
        if self.expect_run == "succeeded":
            check(run.status == "succeeded", f"run succeeded: nothing was lost (is {run.status}: {run.error_message})")
        elif self.expect_run == "failed":
            check(run.status == "failed", f"run failed (is {run.status})")
        if run.status == "failed":
            check(bool(failed) and all(s.error_message for s in failed), "a failed run names its failed shards")
        if run.status == "succeeded":
            check(all(s.status == "done" for s in shards.values()), "a succeeded run has every shard done")
            planned = PROBE_RATE * PROBE_S
            check(run.request_count >= 0.9 * planned, f"a succeeded run sent its load ({run.request_count}/{planned})")
        # The records, batch by batch.
        stored: dict[tuple[int, int], int] = {}
        duplicates, gaps = 0, []
        sequences: dict[int, list[int]] = {}
        for batch in (
            ProbeRecordBatch.objects.filter(shard__run=run).select_related("shard").order_by("shard__index", "sequence")
        ):
            sequences.setdefault(batch.shard.index, []).append(batch.sequence)
            records = Records.from_bytes(bytes(batch.data))
            if len(records) != batch.count:
                check(
                    False, f"batch {batch.shard.index}/{batch.sequence} holds {len(records)} rows, says {batch.count}"
                )
            for seq, error in zip(records.seq, records.error, strict=True):
                key = (batch.shard.index, seq)
                duplicates += key in stored
                stored[key] = error
        for index, seqs in sequences.items():
            if seqs != list(range(len(seqs))):
                gaps.append(index)
        total = sum(len(s) for s in sequences.values())
        check(not gaps, f"record batches numbered without gaps (shards with gaps: {gaps})")
        check(duplicates == 0, f"no request recorded twice ({duplicates} duplicates)")
        check(
            run.request_count == len(stored),
            f"run's request count = stored records ({run.request_count} vs {len(stored)})",
        )
        # Against the simulator's ground truth: this run's ids (its nonce), preflight requests aside.
        nonce = run.config.get("request_id_nonce")
        completed, seen = {}, set()
        for rid, row in truth.items():
            parsed = RequestIds.parse(rid)
            if parsed is None or parsed[0] != nonce or parsed[1] == RequestIds.PREFLIGHT_SHARD:
                continue
            seen.add(parsed[1:])
            if row["status"] == "length":
                completed[parsed[1:]] = row["arrival"]
        offset = time.time() - time.monotonic()  # the simulator's clock is CLOCK_MONOTONIC, on this host
        lost, excused = [], 0
        for key, arrival in completed.items():
            if key in stored:
                continue
            shard = shards.get(key[0])
            last_beat = shard.heartbeat_at.timestamp() if shard and shard.heartbeat_at else 0
            # A shard that died loses what it had not flushed yet: requests sent in its last flush
            # interval. One sent after its last heartbeat was sent by an engine nobody recorded.
            if shard and shard.status == "failed" and last_beat - FLUSH_WINDOW_S <= arrival + offset <= last_beat + 2:
                excused += 1
            else:
                lost.append(key)
        phantom = [k for k, error in stored.items() if error == 0 and k not in seen]
        self.facts["records"] = {
            "stored": len(stored),
            "batches": total,
            "simulator_completed": len(completed),
            "lost": len(lost),
            "lost_in_last_flush_of_dead_shard": excused,
            "not_at_simulator": len(phantom),
        }
        check(not lost, f"every request the simulator completed is stored ({len(lost)} lost, e.g. {lost[:3]})")
        check(not phantom, f"every stored success reached the simulator ({len(phantom)} did not)")

    def check_usage(self) -> None:
        from apps.costs.models import UsageLog

        log = UsageLog.objects.get(pk=self.usage.pk)
        rows = (log.analysis or {}).get("rows")
        self.facts["usage_log"] = {
            "status": log.status,
            "attempts": log.attempts,
            "rows": rows,
            "error": log.error[:160],
        }
        self.check(log.status in ("done", "failed"), f"usage log ends done or failed (is {log.status})")
        if log.status == "done":
            self.check(rows == USAGE_ROWS, f"usage log counted every row ({rows}/{USAGE_ROWS})")
        elif log.status == "failed":
            self.check(bool(log.error), "a failed usage log says why")
        if self.expect_usage == "done":
            self.check(
                log.status == "done", f"usage log analysed: nothing was lost (is {log.status}: {log.error[:100]})"
            )

    def check_deliveries(self) -> None:
        from collections import Counter

        from apps.integrations.models import Delivery

        check = self.check
        for label, receiver in (("good", self.good), ("bad", self.bad)):
            counts = Counter(r.headers.get("webhook-id") for r in receiver.received)
            rows = list(Delivery.objects.filter(connector_id=self.connectors[label]))
            statuses = Counter(d.status for d in rows)
            ids = {d.event_id for d in rows}
            fact = {"deliveries": len(rows), "statuses": dict(statuses), "requests_received": sum(counts.values())}
            check(all(r.verified for r in receiver.received), f"{label}: every request's signature verifies")
            check(not set(counts) - ids, f"{label}: the receiver saw only known webhook-ids")
            if label == "good":
                twice = [d.event_id for d in rows if counts[d.event_id] > 1]
                missing = [d.event_id for d in rows if d.status == "succeeded" and counts[d.event_id] == 0]
                fact.update(duplicated=len(twice), succeeded_unseen=len(missing))
                check(statuses.get("succeeded", 0) == len(rows), f"good: every delivery succeeded ({dict(statuses)})")
                check(not twice, f"good: each delivered exactly once ({len(twice)} arrived more than once)")
                check(not missing, f"good: each success arrived ({len(missing)} never did)")
            else:
                over = [d.event_id for d in rows if counts[d.event_id] > d.attempts]
                fact.update(more_requests_than_attempts=len(over))
                check(statuses.get("dead", 0) == len(rows), f"bad: every delivery dead-lettered ({dict(statuses)})")
                check(all(d.attempts == MAX_ATTEMPTS for d in rows), "bad: each dead letter used its attempts")
                check(not over, f"bad: no more requests than attempts ({len(over)} over)")
            self.facts[f"deliveries_{label}"] = fact

    def check_stuck(self, leftovers: list[dict]) -> None:
        from apps.costs.models import UsageLog
        from apps.integrations.models import Delivery
        from apps.probes.models import ACTIVE_STATUSES, ProbeRun, ProbeShard

        active = {
            "runs": ProbeRun.objects.filter(organization=self.org, status__in=ACTIVE_STATUSES).count(),
            "shards": ProbeShard.objects.filter(run__organization=self.org, status__in=["queued", "running"]).count(),
            "usage_logs": UsageLog.objects.filter(project=self.project, status__in=["queued", "analysing"]).count(),
            "deliveries": Delivery.objects.filter(
                connector__organization=self.org, status__in=["pending", "sending"]
            ).count(),
        }
        stuck = [m for m in leftovers if not m["noop"]]
        self.facts["in_flight_at_end"] = active
        self.facts["broker_leftovers"] = {
            "messages": len(leftovers),
            "would_do_something": stuck[:5],
            "harmless": sorted({f"{m['where']} {m['task']}" for m in leftovers if m["noop"]}),
        }
        self.check(not any(active.values()), f"nothing left in flight ({active})")
        self.check(not stuck, f"no message left that would still do work ({len(stuck)})")

    # --- the whole scenario ----------------------------------------------------------------------

    def execute(self) -> dict:
        try:
            self.prepare_env()
            self.prepare()
            self.start_processes()
            self.world()
            self.wait_workers()
            self.after_world()
            self.start_workload()
            self.wait_shards_running()
            time.sleep(FAULT_AFTER_S)
            fault_at = time.monotonic()
            self.facts["fault_at_s"] = round(fault_at - self.t0, 1)
            self.inject()
            self.recover()
            if self.burst_thread is not None:
                self.burst_thread.join(60)
                self.facts["burst_2"] = self.burst_outcome
                error = self.burst_outcome.get("error") or ""
                self.check(
                    not error.startswith("enqueue after commit"),
                    f"a committed change never fails because its webhooks could not be queued ({error or 'none'})",
                )
            settled = self.wait_settled(SETTLE_S)
            self.facts["settled_after_fault_s"] = round(time.monotonic() - fault_at, 1) if settled else None
            truth = self.ground_truth()
            self.drain()
            leftovers = retrying(self.leftover)
            retrying(lambda: self.check_run(truth))
            retrying(self.check_usage)
            retrying(self.check_deliveries)
            retrying(lambda: self.check_stuck(leftovers))
            retrying(self.extra_checks)
            exits = self.procs.exits
            self.facts["exited_by_itself"] = exits
            self.check(
                not exits, f"no worker or beat exited by itself ({len(exits)} did; restarted as a supervisor would)"
            )
            outcome = "FAIL" if self.check.failed else "pass"
        except Exception as exc:  # the scenario itself broke: a failure, with what is known
            import traceback

            self.facts["error"] = "".join(traceback.format_exception_only(exc)).strip()[:400]
            self.facts["traceback"] = traceback.format_exc()[-1500:]
            self.check.failed.append(f"scenario did not complete: {self.facts['error']}")
            outcome = "FAIL"
        finally:
            self.procs.close()
            for server in getattr(self, "servers_http", []):
                server.shutdown()
        return {
            "outcome": outcome,
            "duration_s": round(time.monotonic() - self.t0, 1),
            "failed": self.check.failed,
            "passed": len(self.check.passed),
            "facts": self.facts,
        }

    def prepare_env(self) -> None:
        import django

        django.setup()

    def after_world(self) -> None:
        """After the org exists and the workers answer, before the workload."""

    def extra_checks(self) -> None:
        """Checks of one scenario only."""


class RedisRestart(Scenario):
    def inject(self) -> None:
        self.servers.redis_stop()
        self.burst_in_background()  # a request emitting while the broker is down
        time.sleep(10)

    def recover(self) -> None:
        self.servers.redis_start()


class PostgresRestart(Scenario):
    expect_run = "either"
    expect_usage = "either"

    def inject(self) -> None:
        self.servers.pg_stop("fast")
        self.burst_in_background()  # refused by the database: nothing is created
        time.sleep(5)

    def recover(self) -> None:
        self.servers.pg_start()
        from django.db import connections

        connections.close_all()


class WorkerSigkill(Scenario):
    expect_run = "failed"

    def inject(self) -> None:
        from apps.probes.models import ProbeShard

        host = ProbeShard.objects.get(run=self.run, index=0).worker
        name = host.split("@", 1)[0]
        self.facts["killed"] = f"{name} (ran shard 0)"
        self.procs.kill(name)
        self.burst_in_background()

    def extra_checks(self) -> None:
        from apps.probes.models import ProbeShard

        shard0, shard1 = (ProbeShard.objects.get(run=self.run, index=i) for i in (0, 1))
        self.check(
            "worker lost" in shard0.error_message, f"the killed shard failed as worker lost ({shard0.error_message!r})"
        )
        self.check(shard1.status == "done", f"the other shard finished (is {shard1.status})")


class BeatTwice(Scenario):
    """Two beats all along. A second plan's schedule (created as a cron, then given a 10 s interval
    so that it ticks within the budget; the same task and arguments) is watched for one tick."""

    def prepare(self) -> None:
        self.beats = ["beat", "beat2"]

    def after_world(self) -> None:
        from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

        from apps.probes import services as probes

        self.scheduled = probes.probe_plan_create(
            access=self.access,
            endpoint=self.endpoint,
            name="scheduled",
            profile={"stages": [{"kind": "constant", "rate": 2, "duration": 3}]},
            max_tokens=MAX_TOKENS,
            prompt_tokens=PROMPT_TOKENS,
            schedule_cron="* * * * *",
        )
        every, _ = IntervalSchedule.objects.get_or_create(every=10, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.filter(pk=self.scheduled.periodic_task_id).update(crontab=None, interval=every)
        PeriodicTasks.update_changed()  # update() sends no signal: tell the beats to reload
        self.first_tick: float | None = None

    def inject(self) -> None:
        self.burst_in_background()

    def extra_settled(self) -> bool:
        from django_celery_beat.models import PeriodicTask, PeriodicTasks

        from apps.probes.models import ProbeRun

        if self.first_tick is None:
            if ProbeRun.objects.filter(plan=self.scheduled).exists():
                self.first_tick = time.monotonic()
            return False
        if time.monotonic() - self.first_tick < 6:
            return False  # the other beat's tick, if it sends one, comes within a second or two
        PeriodicTask.objects.filter(pk=self.scheduled.periodic_task_id).update(enabled=False)
        PeriodicTasks.update_changed()
        return True

    def extra_checks(self) -> None:
        from apps.probes.models import ProbeRun

        runs = list(ProbeRun.objects.filter(plan=self.scheduled).order_by("created_at"))
        first = runs[0].created_at if runs else None
        in_tick = [r for r in runs if (r.created_at - first).total_seconds() < 5] if runs else []
        self.facts["scheduled"] = {
            "runs": len(runs),
            "runs_in_first_tick": len(in_tick),
            "statuses": [r.status for r in runs],
        }
        self.check(len(in_tick) == 1, f"one schedule tick starts one run ({len(in_tick)} runs in the first tick)")
        for run in runs:
            self.check(run.status in ("succeeded", "failed", "cancelled"), f"scheduled run #{run.pk} finished")


class DiskFull(Scenario):
    expect_run = "either"
    expect_usage = "either"

    def prepare_env(self) -> None:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)

    def inject(self) -> None:
        var = Path(os.environ["READINESS_VAR_DIR"])
        filler = var / "filler"
        written = 0
        with open(filler, "wb") as fh:
            chunk = b"\0" * (1 << 20)
            try:
                while True:
                    fh.write(chunk)
                    fh.flush()
                    written += len(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        self.facts["filled_mb"] = round(written / 1e6, 1)
        self.burst_in_background()
        time.sleep(8)

    def recover(self) -> None:
        (Path(os.environ["READINESS_VAR_DIR"]) / "filler").unlink()


class ClockJump(Scenario):
    def inject(self) -> None:
        from apps.costs.tasks import usage_log_reaper_task
        from apps.probes.tasks import probe_reaper_task

        Path(self.clock_flag).touch()
        self.facts["jump_s"] = JUMP_S
        time.sleep(1.0)  # each of the worker's processes polls for the flag every 0.1 s
        # Beat's next reaper ticks, sent now (beat ticks every 15 and 30 s: the run might end first).
        probe_reaper_task.apply_async(queue="celery")
        usage_log_reaper_task.apply_async(queue="celery")
        self.burst_in_background()

    def extra_checks(self) -> None:
        from datetime import timedelta

        from django.utils import timezone

        from apps.integrations.models import DeliveryAttempt

        ahead = DeliveryAttempt.objects.filter(
            delivery__connector__organization=self.org, sent_at__gt=timezone.now() + timedelta(seconds=JUMP_S / 2)
        ).count()
        self.facts["attempts_stamped_ahead"] = ahead
        self.check(ahead > 0, f"the jump took effect: the worker stamps its writes ahead ({ahead} attempts)")


CLASSES = {
    "redis_restart": RedisRestart,
    "postgres_restart": PostgresRestart,
    "worker_sigkill": WorkerSigkill,
    "beat_twice": BeatTwice,
    "disk_full": DiskFull,
    "clock_jump": ClockJump,
}


def child(name: str, work: Path, result: Path) -> None:
    scenario = CLASSES[name](name, work, embedded=name == "disk_full")
    outcome = scenario.execute()
    result.write_text(json.dumps(outcome, default=str))


# --- the parent: servers, scenarios, the table ---------------------------------------------------------


def not_run_reason(name: str, servers_problem: str | None, work: Path) -> str | None:
    if name == "disk_full":
        return None  # decided when mounting
    if servers_problem:
        return servers_problem
    if name == "clock_jump":
        try:
            import time_machine  # noqa: F401
        except ImportError:
            return "time-machine is not installed and libfaketime is not available: no process clock can jump"
    return None


def run_child(name: str, work: Path, env: dict[str, str]) -> dict:
    result = work / f"result-{name}.json"
    proc = subprocess.Popen(
        [PY, str(Path(__file__).resolve()), "--child", name, "--work", str(work), "--result", str(result)],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        proc.wait(CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pass
    finally:
        kill_group(proc.pid)  # the child's own session: it is the supervisor of the rest
        proc.wait()
        kill_registered(work / "pgids")
    if result.exists():
        return json.loads(result.read_text())
    return {
        "outcome": "FAIL",
        "failed": [f"the scenario's process ended without a result (exit {proc.returncode})"],
        "facts": {},
    }


def summary_line(res: dict) -> str:
    f = res.get("facts", {})
    parts = []
    if "run" in f:
        parts.append(f"run {f['run']['status']}")
    if "records" in f:
        r = f["records"]
        parts.append(f"records {r['stored']} stored / {r['simulator_completed']} at simulator, {r['lost']} lost")
    if "deliveries_good" in f:
        g, b = f["deliveries_good"], f["deliveries_bad"]
        parts.append(f"deliveries {g['statuses']} dup {g['duplicated']}, 503: {b['statuses']}")
    if "usage_log" in f:
        parts.append(f"usage {f['usage_log']['status']}")
    if f.get("exited_by_itself"):
        parts.append("exited: " + ", ".join(f"{e['process']} ({e['exit_code']})" for e in f["exited_by_itself"]))
    if "scheduled" in f:
        parts.append(f"scheduled runs in one tick: {f['scheduled']['runs_in_first_tick']}")
    return "; ".join(parts)


def parent(args) -> int:
    started = time.monotonic()
    names = args.only or list(SCENARIOS)
    work = Path(tempfile.mkdtemp(prefix="readiness-chaos."))
    work.chmod(0o755)
    (work / "logs").mkdir()
    (work / "imports" / "_shared").mkdir(parents=True)
    results: dict[str, dict] = {}
    servers: Servers | None = None
    tmpfs = work / "embedded-var"
    problem = servers_missing()
    base = {**os.environ, **APP_ENV, "READINESS_USAGE_LOG_IMPORT_DIR": str(work / "imports")}
    for name in ("DATABASE_URL", "REDIS_URL", "REDIS_CACHE_URL"):
        base.pop(name, None)
    try:
        write_usage_log(work / "imports" / "_shared" / "usage.csv", USAGE_ROWS)
        if problem is None and any(n != "disk_full" for n in names):
            servers = Servers.create(work)
            servers.init()
            (work / "servers.json").write_text(json.dumps(servers.spec))
            pg_env = {**base, "DATABASE_URL": servers.database_url, "REDIS_URL": servers.redis_url}
            pg_env["READINESS_VAR_DIR"] = str(work / "var")
            migrate = subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=pg_env)
            if migrate.returncode:
                problem = "migrations failed on PostgreSQL"
        for name in names:
            reason = not_run_reason(name, problem, work)
            if name == "disk_full":
                reason = mount_tmpfs(tmpfs, 48)
            if reason:
                results[name] = {"outcome": f"not run: {reason}"}
                continue
            if name == "disk_full":
                env = {**base, "READINESS_VAR_DIR": str(tmpfs)}
            else:
                env = {**pg_env}
                servers.flush_redis()
            (work / "pgids").unlink(missing_ok=True)
            print(f"== {name}: {SCENARIOS[name]}", file=sys.stderr, flush=True)
            results[name] = run_child(name, work, env)
            if name == "disk_full":
                unmount(tmpfs)
    finally:
        kill_registered(work / "pgids")
        if servers is not None:
            servers.stop_all()
        unmount(tmpfs)
        failed_any = any(r["outcome"] == "FAIL" for r in results.values())
        if failed_any or args.keep:
            keep = ROOT / "var" / "chaos-logs" / time.strftime("%Y%m%d-%H%M%S")
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(work / "logs", keep)
            print(f"process logs kept in {keep}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    duration = round(time.monotonic() - started, 1)
    width = max(len(n) for n in names)
    print(f"{'scenario':<{width}}  {'outcome':<7}  {'time':>6}  details")
    for name in names:
        res = results.get(name, {"outcome": "FAIL", "failed": ["not reached"]})
        outcome = res["outcome"]
        if outcome.startswith("not run"):
            print(f"{name:<{width}}  {outcome}")
            continue
        print(f"{name:<{width}}  {outcome:<7}  {res.get('duration_s', 0):>5}s  {summary_line(res)}")
        for failure in res.get("failed", []):
            print(f"{'':<{width}}    ✗ {failure}")
    ok = not any(r["outcome"] == "FAIL" for r in results.values())
    print(json.dumps({"ok": ok, "duration_s": duration, "scenarios": results}, default=str))
    return 0 if ok else 1


def main() -> int:
    # `timeout` and CI runners stop with SIGTERM: exit through the finally blocks that clean up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if len(sys.argv) > 1 and sys.argv[1] == "--clock-worker":
        flag, rest = sys.argv[2], sys.argv[sys.argv.index("--") + 1 :]
        clock_worker(flag, JUMP_S, rest)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS))
    parser.add_argument("--keep", action="store_true", help="keep the processes' logs under var/chaos-logs/")
    parser.add_argument("--child", choices=sorted(SCENARIOS), help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.work), Path(args.result))
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
