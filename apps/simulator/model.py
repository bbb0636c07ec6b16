"""The simulated GPU deployment: replicas with batch slots, a waiting queue, an autoscaler.

Iteration-level batching as in vLLM: each replica runs decode steps; every active sequence
gets one token per step, and a step takes longer the more sequences share it. A new
sequence waits for a free slot (FIFO, or fair across tenants: apps.simulator.tenancy), then
for its prefill (proportional to prompt length), then emits its first token and joins the
batch. Step deadlines advance from the previous deadline, not from "now", so timing does not
drift under load; what the client really receives is what the ground truth records (the time
of each socket write).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable

from apps.simulator.scenarios import SimConfig
from apps.simulator.tenancy import label, waiting_queue

clock = time.monotonic


class Sequence:
    """One streamed request being served."""

    __slots__ = (
        "rid",
        "prompt_tokens",
        "max_tokens",
        "produced",
        "emit",
        "finish",
        "replica",
        "cancelled",
        "arrival",
        "first",
        "last",
        "fault",
        "tenant",
    )

    def __init__(
        self,
        rid,
        prompt_tokens,
        max_tokens,
        emit: Callable,
        finish: Callable,
        fault: str = "",
        arrival: float = 0.0,
        tenant: str = "",
    ):
        self.rid = rid
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.produced = 0
        self.emit = emit  # emit(seq, index) -> bool (False when the client is gone)
        self.finish = finish  # finish(seq)
        self.replica: Replica | None = None
        self.cancelled = False
        self.arrival = arrival or clock()
        self.first = math.nan
        self.last = math.nan
        self.fault = fault
        self.tenant = tenant


class Replica:
    def __init__(self, deployment: Deployment, ready_at: float):
        self.deployment = deployment
        self.ready_at = ready_at
        self.active: list[Sequence] = []
        self.prefilling = 0
        self.draining = False
        self._task: asyncio.Task | None = None

    @property
    def ready(self) -> bool:
        return clock() >= self.ready_at

    @property
    def used(self) -> int:
        return len(self.active) + self.prefilling

    def step_seconds(self) -> float:
        c = self.deployment.config
        n = max(len(self.active), 1)
        return c.decode_ms_per_token * (1 + c.decode_slowdown_per_seq * (n - 1)) / 1000

    def admit(self, seq: Sequence) -> None:
        c = self.deployment.config
        seq.replica = self
        self.prefilling += 1
        prefill = (c.base_ttft_ms + c.prefill_ms_per_1k_tokens * seq.prompt_tokens / 1000) / 1000
        asyncio.get_running_loop().call_later(prefill, self._join, seq)

    def _join(self, seq: Sequence) -> None:
        self.prefilling -= 1
        if seq.cancelled or not self._emit(seq):
            self.deployment.release(seq)
            return
        self.active.append(seq)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._steps())

    def _emit(self, seq: Sequence) -> bool:
        """One token to `seq`; finishes it when it has them all. False when it is done or gone
        (the caller then releases its slot, after taking it out of `active`)."""
        alive = not seq.cancelled and seq.emit(seq, seq.produced)
        if alive:
            seq.produced += 1
        if alive and seq.produced >= seq.max_tokens:
            seq.finish(seq)
            return False
        return alive

    async def _steps(self) -> None:
        deadline = clock()
        while self.active:
            deadline += self.step_seconds()
            delay = deadline - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                deadline = clock()  # fell behind (overloaded host): do not try to catch up
            still, done = [], []
            for seq in self.active:
                (still if self._emit(seq) else done).append(seq)
            self.active = still
            for seq in done:  # freed slots go straight to the queue
                self.deployment.release(seq)


class Deployment:
    def __init__(self, config: SimConfig):
        self.config = config
        now = clock()
        self.replicas = [Replica(self, now) for _ in range(max(config.replicas, 1))]
        self.queue = waiting_queue(config)
        self.desired = len(self.replicas)
        self._below_since: float | None = None
        self.rng = random.Random(config.seed)
        # counters for /metrics
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        self.requests_total: dict[str, int] = {}
        self.ttft_hist = Histogram(TTFT_BUCKETS)
        self.e2e_hist = Histogram(E2E_BUCKETS)
        self.ground_truth: dict[str, list] = {}
        self.tenant_requests: dict[tuple[str, str], int] = {}  # (tenant, outcome at the gateway) -> count

    # --- admission -------------------------------------------------------------------------

    def submit(self, seq: Sequence) -> None:
        self.queue.append(seq)
        self.dispatch()

    def dispatch(self) -> None:
        slots = self.config.slots
        while self.queue:
            candidates = [r for r in self.replicas if r.ready and not r.draining and r.used < slots]
            if not candidates:
                return
            seq = self.queue.popleft()
            if seq.cancelled:
                continue
            min(candidates, key=lambda r: r.used).admit(seq)

    def release(self, seq: Sequence) -> None:
        seq.replica = None
        self.dispatch()

    def cancel(self, seq: Sequence) -> None:
        """The client went away: free its slot at the next step (or now, if still queued)."""
        seq.cancelled = True
        if seq.replica is None:
            try:
                self.queue.remove(seq)
            except ValueError:
                pass

    # --- gauges ----------------------------------------------------------------------------

    @property
    def running(self) -> int:
        return sum(r.used for r in self.replicas)

    @property
    def available(self) -> int:
        return sum(1 for r in self.replicas if r.ready and not r.draining)

    # --- autoscaler ------------------------------------------------------------------------

    def autoscale_once(self) -> None:
        c = self.config
        # Drained replicas leave once their last sequence is done.
        self.replicas = [r for r in self.replicas if not (r.draining and r.used == 0)] or self.replicas[:1]
        ready = max(self.available, 1)
        waiting_per_replica = len(self.queue) / ready
        # HPA rule: desired = ceil(current * metric / target); an idle queue lets it fall back.
        wanted = math.ceil(ready * waiting_per_replica / c.target_waiting_per_replica) if self.queue else 0
        busy = math.ceil(self.running / c.slots) if c.slots else 0
        desired = min(max(wanted, busy, c.min_replicas), c.max_replicas)
        now = clock()
        current = len([r for r in self.replicas if not r.draining])
        if desired > current:
            for _ in range(desired - current):
                self.replicas.append(Replica(self, now + c.cold_start_s))
            # Queued work moves to the new replicas the moment they are ready.
            asyncio.get_running_loop().call_later(c.cold_start_s, self.dispatch)
            self._below_since = None
        elif desired < current:
            # Scale down only after the stabilisation window, like the HPA's default behaviour.
            self._below_since = self._below_since or now
            if now - self._below_since >= c.scale_down_window_s:
                for replica in sorted(self.replicas, key=lambda r: r.used)[: current - desired]:
                    replica.draining = True
                self._below_since = None
            else:
                # The HPA reports its stabilised recommendation: the highest of the window, so
                # desired replicas do not drop before the scale-down does.
                desired = current
        else:
            self._below_since = None
        self.desired = desired
        self.dispatch()  # a replica that just became ready can take queued work

    async def autoscaler(self) -> None:
        while True:
            await asyncio.sleep(self.config.decision_interval_s)
            self.autoscale_once()

    # --- ground truth ----------------------------------------------------------------------

    def record(self, seq: Sequence, status: str) -> None:
        self.requests_total[status] = self.requests_total.get(status, 0) + 1
        if seq.first == seq.first:
            self.ttft_hist.observe(seq.first - seq.arrival)
            self.e2e_hist.observe(seq.last - seq.arrival)
        self.generation_tokens_total += seq.produced
        self.prompt_tokens_total += seq.prompt_tokens
        self.remember(seq, status)

    def remember(self, seq: Sequence, status: str) -> None:
        """Ground truth only: also for requests the gateway refused, which the server never saw."""
        truth = self.ground_truth
        truth[seq.rid] = [seq.arrival, seq.first, seq.last, seq.produced, status, label(seq.tenant)]
        if len(truth) > self.config.ground_truth_limit:
            del truth[next(iter(truth))]

    def count_tenant(self, tenant: str, outcome: str) -> None:
        key = (label(tenant), outcome)
        self.tenant_requests[key] = self.tenant_requests.get(key, 0) + 1


TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)


class Histogram:
    def __init__(self, buckets):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        for i, b in enumerate(self.buckets):
            if value <= b:
                self.counts[i] += 1
                break

    def lines(self, name: str, labels: str) -> list[str]:
        out = [f"# TYPE {name} histogram"]
        cumulative = 0
        for b, c in zip(self.buckets, self.counts, strict=True):
            cumulative += c
            out.append(f'{name}_bucket{{{labels},le="{b}"}} {cumulative}')
        out.append(f'{name}_bucket{{{labels},le="+Inf"}} {self.total}')
        out.append(f"{name}_count{{{labels}}} {self.total}")
        out.append(f"{name}_sum{{{labels}}} {self.sum}")
        return out


def metrics_text(d: Deployment) -> str:
    c = d.config
    labels = f'model_name="{c.model}"'
    waiting, running = len(d.queue), d.running
    capacity = max(len(d.replicas) * c.slots, 1)
    lines = [
        "# TYPE vllm:num_requests_waiting gauge",
        f"vllm:num_requests_waiting{{{labels}}} {waiting}",
        "# TYPE vllm:num_requests_running gauge",
        f"vllm:num_requests_running{{{labels}}} {running}",
        "# TYPE vllm:kv_cache_usage_perc gauge",
        f"vllm:kv_cache_usage_perc{{{labels}}} {running / capacity:.4f}",
        "# TYPE vllm:prompt_tokens_total counter",
        f"vllm:prompt_tokens_total{{{labels}}} {d.prompt_tokens_total}",
        "# TYPE vllm:generation_tokens_total counter",
        f"vllm:generation_tokens_total{{{labels}}} {d.generation_tokens_total}",
        "# TYPE vllm:request_success_total counter",
    ]
    for status, n in sorted(d.requests_total.items()):
        lines.append(f'vllm:request_success_total{{{labels},finished_reason="{status}"}} {n}')
    lines += d.ttft_hist.lines("vllm:time_to_first_token_seconds", labels)
    lines += d.e2e_hist.lines("vllm:e2e_request_latency_seconds", labels)
    dep = 'deployment="sim",namespace="default"'
    lines += [
        "# TYPE kube_deployment_status_replicas_available gauge",
        f"kube_deployment_status_replicas_available{{{dep}}} {d.available}",
        "# TYPE kube_horizontalpodautoscaler_status_desired_replicas gauge",
        "kube_horizontalpodautoscaler_status_desired_replicas"
        f'{{horizontalpodautoscaler="sim",namespace="default"}} {d.desired}',
        "# TYPE simulator_replicas_available gauge",
        f"simulator_replicas_available {d.available}",
        "# TYPE simulator_replicas_desired gauge",
        f"simulator_replicas_desired {d.desired}",
    ]
    lines += tenant_lines(d)
    return "\n".join(lines) + "\n"


def tenant_lines(d: Deployment) -> list[str]:
    """Per-tenant gateway outcomes (ok: let through, throttled: 429 from its bucket) and waiting requests."""
    if not d.tenant_requests:
        return []
    lines = ["# TYPE sim_tenant_requests_total counter"]
    for (tenant, outcome), n in sorted(d.tenant_requests.items()):
        lines.append(f'sim_tenant_requests_total{{tenant="{escape(tenant)}",outcome="{outcome}"}} {n}')
    waiting = dict.fromkeys(sorted({tenant for tenant, _ in d.tenant_requests}), 0)
    for seq in d.queue:
        waiting[label(seq.tenant)] = waiting.get(label(seq.tenant), 0) + 1
    lines.append("# TYPE sim_tenant_requests_waiting gauge")
    lines += [f'sim_tenant_requests_waiting{{tenant="{escape(tenant)}"}} {n}' for tenant, n in waiting.items()]
    return lines


def escape(value: str) -> str:
    """A Prometheus label value: tenant names come from request headers, so quote what they hold."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
