"""Tenancy: who sent a request, and how a shared deployment keeps one tenant from starving the rest.

Several customers share one deployment behind a gateway. `SimConfig.isolation` picks what stands
between a noisy tenant's burst and everyone else:

- `fifo`: nothing. One waiting queue for all, as a plain vLLM has it; a burst queues ahead of
  every later request, whoever sent it.
- `bucket`: a token bucket per tenant at the gateway. A request that finds its tenant's bucket
  empty is refused with 429 and `Retry-After` at once; other tenants' buckets are untouched.
- `fair`: weighted fair queueing of the waiting requests (`FairQueue`): a freed slot goes to the
  backlogged tenant that is furthest behind its share, so a deep backlog delays a quiet tenant by
  about one request, not by the whole backlog.

The tenant is the bearer key's (`tenant_keys`) when keys are mapped, else the `tenant_header`
value; a request naming none belongs to "" (shown as "default").
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apps.simulator.model import Sequence
    from apps.simulator.scenarios import SimConfig

ISOLATION_MODES = ("fifo", "bucket", "fair")
DEFAULT_TENANT = "default"


def label(tenant: str) -> str:
    """The name a tenant is shown under (ground truth, metrics, weights)."""
    return tenant or DEFAULT_TENANT


def parse_pairs(text: str, field: str) -> dict[str, str]:
    """`"a:1,b:2"` -> {"a": "1", "b": "2"}; the last colon splits, so a key may contain colons."""
    pairs: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.rpartition(":")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{field}: expected comma-separated key:value pairs, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def parse_weights(text: str) -> dict[str, float]:
    weights = {}
    for tenant, value in parse_pairs(text, "tenant_weights").items():
        try:
            weight = float(value)
        except ValueError:
            weight = 0.0
        if not weight > 0:
            raise ValueError(f"tenant_weights: the weight of {tenant!r} must be a positive number, got {value!r}")
        weights[tenant] = weight
    return weights


def validate(config: SimConfig) -> None:
    """Raise ValueError for tenancy settings the simulator could not honour."""
    if config.isolation not in ISOLATION_MODES:
        raise ValueError(f"isolation must be one of {', '.join(ISOLATION_MODES)}; got {config.isolation!r}")
    parse_pairs(config.tenant_keys, "tenant_keys")
    parse_weights(config.tenant_weights)
    if config.isolation == "bucket" and not (config.tenant_rate > 0 and config.tenant_burst >= 1):
        # A bucket that never refills, or holds less than one request, would refuse everyone.
        raise ValueError("isolation 'bucket' needs tenant_rate > 0 and tenant_burst >= 1")


class TokenBucket:
    __slots__ = ("rate", "burst", "tokens", "updated")

    def __init__(self, rate: float, burst: float, now: float):
        self.rate, self.burst = rate, burst
        self.tokens = burst  # a tenant starts with a full bucket
        self.updated = now

    def take(self, now: float) -> float:
        """Spend one token and return 0, or return the seconds until a token will be there."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class Gateway:
    """What sits in front of the deployment: it names each request's tenant and, in bucket mode,
    throttles tenants one by one."""

    def __init__(self, config: SimConfig):
        self.config = config
        self.header = config.tenant_header.lower()  # the server keeps header names lower-case
        self.keys = parse_pairs(config.tenant_keys, "tenant_keys")
        self.buckets: dict[str, TokenBucket] = {}

    def tenant(self, headers: dict) -> str | None:
        """The request's tenant; None when keys are mapped and its bearer key is not one of them."""
        if self.keys:
            scheme, _, key = headers.get("authorization", "").partition(" ")
            return self.keys.get(key.strip()) if scheme.lower() == "bearer" else None
        return headers.get(self.header, "")

    def throttle(self, tenant: str, now: float) -> float:
        """0 when the request may pass, else the seconds until its tenant's bucket has a token."""
        c = self.config
        if c.isolation != "bucket":
            return 0.0
        bucket = self.buckets.get(tenant)
        if bucket is None:
            bucket = self.buckets[tenant] = TokenBucket(c.tenant_rate, c.tenant_burst, now)
        return bucket.take(now)


class FairQueue:
    """Waiting requests queued per tenant and served by start-time fair queueing (SFQ).

    On arrival a request is stamped with a virtual start tag, the later of the queue's virtual time
    and its tenant's previous finish tag, and a finish tag one request's worth (1 / weight) after
    it. A freed slot takes the tenant head with the smallest finish tag (earliest arrival on a
    tie), and the virtual time moves up to that request's start tag. A tenant that was idle thus
    starts at the current virtual time (no credit saved up while idle), while a tenant with a deep
    backlog has tags far ahead: a quiet tenant's new request overtakes all but about one request
    per other backlogged tenant. Weight 2 gets twice the slots of weight 1 while both are backlogged.

    It has the operations the deployment uses on its FIFO deque: append, popleft, remove, len.
    """

    def __init__(self, weights: dict[str, float]):
        self.weights = weights
        self.queues: dict[str, deque[tuple[float, int, float, Sequence]]] = {}
        self.last_finish: dict[str, float] = {}
        self.virtual_time = 0.0
        self.size = 0
        self._arrivals = itertools.count()

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[Sequence]:
        for queue in self.queues.values():
            for *_, seq in queue:
                yield seq

    def append(self, seq: Sequence) -> None:
        tenant = seq.tenant
        start = max(self.virtual_time, self.last_finish.get(tenant, 0.0))
        finish = start + 1.0 / self.weights.get(label(tenant), 1.0)
        self.last_finish[tenant] = finish
        self.queues.setdefault(tenant, deque()).append((finish, next(self._arrivals), start, seq))
        self.size += 1

    def popleft(self) -> Sequence:
        if not self.size:
            raise IndexError("pop from an empty queue")
        tenant = min(self.queues, key=lambda t: self.queues[t][0][:2])
        queue = self.queues[tenant]
        _, _, start, seq = queue.popleft()
        if not queue:
            del self.queues[tenant]
        self.size -= 1
        self.virtual_time = max(self.virtual_time, start)
        return seq

    def remove(self, seq: Sequence) -> None:
        """Take out a request whose client went away (ValueError if it is not waiting, as deque's)."""
        queue = self.queues.get(seq.tenant, ())
        for entry in queue:
            if entry[3] is seq:
                queue.remove(entry)
                if not queue:
                    del self.queues[seq.tenant]
                self.size -= 1
                return
        raise ValueError("not waiting")


def waiting_queue(config: SimConfig) -> deque | FairQueue:
    if config.isolation == "fair":
        return FairQueue(parse_weights(config.tenant_weights))
    return deque()  # fifo and bucket: one queue for all (the bucket acts before it)
