"""Server metrics scraped while a probe runs: the known gauges' time series, failures recorded."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from apps.net.netguard import OutboundRefused, pin
from apps.probes.engine.http1 import ConnectError, ConnectionPool, ProtocolError, ResponseSink, request_head

# DESIGN.md "Server metrics understood". Label sets are summed (e.g. one series per model).
KNOWN_METRICS = (
    "vllm:num_requests_waiting",
    "vllm:num_requests_running",
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_cache_usage_perc",
    "tgi_queue_size",
    "tgi_batch_current_size",
    "jetstream_prefill_backlog_size",
    "jetstream_slots_used_percentage",
    "llamacpp:requests_processing",
    "llamacpp:requests_deferred",
    "kube_deployment_status_replicas_available",
    "kube_horizontalpodautoscaler_status_desired_replicas",
    "simulator_replicas_available",
    "simulator_replicas_desired",
)
MAX_METRICS_BYTES = 5_000_000
END_GRACE_S = 0.5


def parse_known(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in KNOWN_METRICS:
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


class MetricsScraper:
    def __init__(self, url: str, *, allow_private: bool, interval: float, origin: float, timeout: float = 5.0):
        self.url = url
        self.interval = interval
        self.origin = origin
        self.timeout = timeout
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.failures: list[tuple[float, str]] = []
        self.scrapes = 0
        parts = urlsplit(url)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.allow_private = allow_private
        self._pool: ConnectionPool | None = None
        self._host_header = parts.netloc.rpartition("@")[2]

    def _fail(self, message: str) -> None:
        self.failures.append((round(time.monotonic() - self.origin, 3), message[:300]))

    async def scrape_once(self) -> None:
        try:
            if self._pool is None:
                target = pin(self.url, allow_private=self.allow_private)
                self._pool = ConnectionPool(
                    target.address, target.port, tls=target.scheme == "https", server_hostname=target.host
                )
            conn = await self._pool.acquire()
            loop = asyncio.get_running_loop()
            sink = ResponseSink(loop.create_future(), max_body=MAX_METRICS_BYTES)
            conn.send(request_head("GET", self.path, self._host_header, {"Accept": "text/plain"}, b""), sink)
            try:
                await asyncio.wait_for(sink.future, self.timeout)
            finally:
                # After a timeout wait_for has cancelled the future: .exception() would raise CancelledError.
                fut = sink.future
                answered = fut.done() and not fut.cancelled() and fut.exception() is None
                self._pool.release(conn) if answered else conn.abort()
            now = round(time.monotonic() - self.origin, 3)
            if sink.status != 200:
                self._fail(f"HTTP {sink.status}")
                return
            values = parse_known(bytes(sink.body).decode("utf-8", "replace"))
            for name, value in values.items():
                self.series.setdefault(name, []).append((now, value))
            self.scrapes += 1
        except OutboundRefused as exc:
            self._fail(f"refused: {exc}")
        except (TimeoutError, ConnectError, ProtocolError, OSError) as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
        except ValueError as exc:  # the text parser's complaint about a malformed exposition
            self._fail(f"unparseable metrics: {exc}")

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            scrape = asyncio.ensure_future(self.scrape_once())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({scrape, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not scrape.done():
                # The run is over: a scrape under way gets a moment to land, but a slow
                # endpoint must not hold the end of the run.
                await asyncio.wait({scrape}, timeout=END_GRACE_S)
                if not scrape.done():
                    scrape.cancel()
                    await asyncio.gather(scrape, return_exceptions=True)
                    self._fail("no answer before the run ended")
                break
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except TimeoutError:
                pass
        if self._pool:
            self._pool.close()

    def to_dict(self) -> dict:
        return {
            "url": self.url,
            "interval_s": self.interval,
            "scrapes": self.scrapes,
            "series": self.series,
            "failures": self.failures,
        }
