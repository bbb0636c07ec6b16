"""Running one shard inside a Celery task.

The engine runs on its own thread with its own event loop (pure asyncio, no ORM). This
thread — the task's — does the database work every second: heartbeat, progress counters,
a batch of new records every few seconds, and a look at whether the run was cancelled.
So a killed worker loses at most the last flush interval, and a cancel takes effect within
about a second plus the engine's 2 s grace for in-flight streams.

A database that goes away for a moment (a restart, a failover) costs retries, not the shard: the
records wait in the engine's memory until a flush succeeds. Away for longer than the heartbeat
timeout, the shard stops its load (it would be load nobody can record) and fails saying so.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import asdict

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.core.clock import db_now
from apps.net.netguard import OutboundRefused, same_origin
from apps.probes import plans
from apps.probes.engine.runner import PreflightFailed, new_event_loop
from apps.probes.engine.runner import ProbeRun as EngineRun
from apps.probes.engine.stats import distribution
from apps.probes.models import ProbePlan, ProbeRecordBatch, ProbeRun, ProbeShard, RunStatus, ShardStatus
from apps.probes.tenant_keys import stored_tenant_keys
from apps.projects.models import Endpoint

log = logging.getLogger(__name__)
TICK_S = 1.0
FLUSH_EVERY_S = 3.0


class DatabaseAway(Exception):
    pass


class ShardRunner:
    def __init__(self, shard: ProbeShard, run: ProbeRun):
        self.shard = shard
        self.run = run
        self.loop = new_event_loop()
        self.cancel: asyncio.Event | None = None
        self.engine: EngineRun | None = None
        self.result = None
        self.error: BaseException | None = None
        self.flushed = 0
        self.itl_snapshot: dict = {}
        self.batches = 0
        self.preflight: dict | None = None
        self.ready = threading.Event()
        self.db_down_since: float | None = None

    # --- the engine's thread -------------------------------------------------------------

    def _engine_thread(self, config, driver) -> None:
        asyncio.set_event_loop(self.loop)

        async def main():
            self.cancel = asyncio.Event()
            try:
                self.engine = EngineRun(config, cancel=self.cancel)
            finally:
                self.ready.set()
            # One request before any load: a server that refuses it stops the shard with a diagnosis.
            self.preflight = await self.engine.preflight()
            delay = self.run.start_at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            return await self.engine.execute(driver)

        try:
            self.result = self.loop.run_until_complete(main())
        except BaseException as exc:  # reported by the task thread
            self.error = exc
            self.ready.set()
        finally:
            self.loop.close()

    def request_cancel(self) -> None:
        if self.cancel is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.cancel.set)

    # --- the task's thread ---------------------------------------------------------------

    def flush(self) -> None:
        engine = self.engine
        if engine is None:
            return
        records = engine.records
        end = len(records.seq)
        if end == self.flushed and not records.itl:
            return
        part = records.since(self.flushed, end, self.itl_snapshot)
        if len(part) == 0 and not part.itl:
            return
        self.itl_snapshot = records.itl_snapshot()
        ProbeRecordBatch.objects.create(shard=self.shard, sequence=self.batches, count=len(part), data=part.to_bytes())
        self.batches += 1
        self.flushed = end

    def report(self) -> bool:
        """Heartbeat and progress; returns False when the run was cancelled."""
        engine = self.engine
        fields = {"heartbeat_at": db_now()}
        if engine is not None:
            if engine.origin and self.shard.origin_wall is None:
                self.shard.origin_wall = time.time() - (time.monotonic() - engine.origin)
                fields["origin_wall"] = self.shard.origin_wall
            p95 = engine.recent_ttft_p95()
            fields.update(
                sent=engine.sent,
                completed=engine.completed,
                errors=engine.errors,
                ttft_p95_recent_ms=None if p95 != p95 else p95,
            )
        ProbeShard.objects.filter(pk=self.shard.pk).update(**fields)
        return not ProbeRun.objects.filter(pk=self.run.pk, cancel_requested_at__isnull=False).exists()

    def _db(self, step) -> tuple[bool, object]:
        """(done, result) of one database step; a failure is retried at the next tick until the
        database has been away longer than the heartbeat timeout, which raises `DatabaseAway`."""
        try:
            result = step()
        except DatabaseError as exc:
            connection.close()  # the next try opens a fresh connection
            now = time.monotonic()
            if self.db_down_since is None:
                self.db_down_since = now
                log.warning("probe shard %s: database unreachable (%s); retrying", self.shard.pk, exc)
            if now - self.db_down_since > settings.READINESS_PROBE_HEARTBEAT_TIMEOUT_S:
                raise DatabaseAway(
                    f"the database was unreachable for {now - self.db_down_since:.0f} s: the shard stopped its "
                    "load rather than send requests it could not record"
                ) from exc
            return False, None
        self.db_down_since = None
        return True, result

    def _db_until_done(self, step) -> None:
        while not self._db(step)[0]:
            time.sleep(TICK_S)

    def execute(self) -> tuple[str, str]:
        snap = self.run.config
        endpoint_key = None
        endpoint = Endpoint.objects.filter(pk=snap["endpoint_id"]).first()
        # The key is read now, the URL was fixed when the run started: a key entered since for
        # another origin (the endpoint moved back, say) must not go to the run's URL.
        if endpoint is not None and endpoint.api_key and same_origin(snap["base_url"], endpoint.base_url):
            endpoint_key = endpoint.api_key.reveal()
        tenant_keys = None
        if plans.tenant_spec(snap["profile"]) is not None:
            plan = ProbePlan.objects.filter(pk=self.run.plan_id).first()
            tenant_keys = stored_tenant_keys(plan, for_url=snap["base_url"]) if plan else {}
        try:
            config, driver = plans.engine_config(
                snap,
                api_key=endpoint_key,
                allow_private=settings.READINESS_ALLOW_PRIVATE_ENDPOINTS,
                shard_index=self.shard.index,
                shard_count=self.run.shard_count,
                tenant_keys=tenant_keys,
            )
        except ValueError as exc:  # e.g. a stored key with a line break in it: never sent
            return ShardStatus.FAILED, str(exc)
        if self.shard.index != 0:
            config.metrics_url = None  # one scraper per run is enough
        thread = threading.Thread(
            target=self._engine_thread, args=(config, driver), name=f"probe-shard-{self.shard.pk}"
        )
        thread.start()
        self.ready.wait(30)
        last_flush = time.monotonic()
        try:
            while thread.is_alive():
                thread.join(TICK_S)
                done, running = self._db(self.report)
                if done and not running:
                    self.request_cancel()
                if time.monotonic() - last_flush >= FLUSH_EVERY_S and self._db(self.flush)[0]:
                    last_flush = time.monotonic()
        except SoftTimeLimitExceeded:
            self.request_cancel()
            thread.join(10)
            self.flush()
            return ShardStatus.FAILED, "time limit exceeded"
        except DatabaseAway as exc:
            self.request_cancel()
            thread.join(10)
            return ShardStatus.FAILED, str(exc)
        self._db_until_done(self.report)
        self._db_until_done(self.flush)
        if self.error is not None:
            if isinstance(self.error, PreflightFailed):
                ProbeShard.objects.filter(pk=self.shard.pk).update(diagnosis=self.error.diagnosis)
                return ShardStatus.FAILED, self.error.diagnosis["message"]
            if isinstance(self.error, OutboundRefused):
                return ShardStatus.FAILED, f"refused: {self.error}"
            log.exception("probe shard %s failed", self.shard.pk, exc_info=self.error)
            return ShardStatus.FAILED, f"{type(self.error).__name__}: {self.error}"[:500]
        result = self.result
        extra = {k: v for k, v in result.summary.items() if k == "sweep"}
        # What the run sent: the optional parts kept, and those the preflight found refused.
        extra["request"] = {
            "parts": result.meta["request_parts"],
            "dropped": result.meta["dropped_parts"],
            "request_id": result.meta["request_id"],
        }
        ProbeShard.objects.filter(pk=self.shard.pk).update(
            windows=[asdict(w) for w in result.windows],
            extra=extra or None,
            server_metrics=result.server_metrics,
            loop_lag_ms=distribution(self.engine.measured_loop_lag_ms()),
        )
        if result.summary.get("failed_fast"):
            return ShardStatus.FAILED, result.summary["failed_fast"]
        return (ShardStatus.CANCELLED if result.summary.get("cancelled") else ShardStatus.DONE), ""


def shard_execute(*, shard_id: int, org_id: int, worker: str = "") -> None:
    """Claim the shard (once: a redelivered message finds it taken and returns), run it, finalize."""
    from apps.probes.services import probe_run_finalize

    now = db_now()  # the reaper judges heartbeats by the database's clock
    claimed = ProbeShard.objects.filter(pk=shard_id, run__organization_id=org_id, status=ShardStatus.QUEUED).update(
        status=ShardStatus.RUNNING, claimed_at=now, heartbeat_at=now, worker=worker[:200]
    )
    if claimed != 1:
        return
    shard = ProbeShard.objects.select_related("run").get(pk=shard_id)
    run = shard.run
    ProbeRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(status=RunStatus.RUNNING, started_at=now)
    if run.cancel_requested_at:
        status, message = ShardStatus.CANCELLED, ""
    else:
        try:
            status, message = ShardRunner(shard, run).execute()
        except Exception as exc:  # a bug must not leave the shard "running" until the reaper
            log.exception("probe shard %s crashed", shard_id)
            status, message = ShardStatus.FAILED, f"{type(exc).__name__}: {exc}"[:500]
    with transaction.atomic():
        ProbeShard.objects.filter(pk=shard_id, status=ShardStatus.RUNNING).update(
            status=status, error_message=message, finished_at=timezone.now()
        )
    probe_run_finalize(run.pk)
