"""Load profiles: who sends when. Open-loop arrival times are computed up front from a seed."""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass

SYNCHRONOUS, CONCURRENT, CONSTANT, POISSON = "synchronous", "concurrent", "constant", "poisson"
KINDS = (SYNCHRONOUS, CONCURRENT, CONSTANT, POISSON)
OPEN_LOOP = (CONSTANT, POISSON)


@dataclass(frozen=True)
class Stage:
    """One stage of a run: a profile held for `duration` seconds.

    A ramp is a `constant`/`poisson` stage with `rate_end`: the rate moves linearly from
    `rate` to `rate_end` over the stage. On an open-loop stage, `concurrency` caps the
    requests in flight (sends wait for a free slot, and their schedule lag shows it).
    """

    kind: str
    duration: float
    rate: float | None = None
    rate_end: float | None = None
    concurrency: int | None = None
    name: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown profile {self.kind!r}; expected one of {', '.join(KINDS)}")
        for name in ("duration", "rate", "rate_end"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number")
        if not self.duration or self.duration <= 0:
            raise ValueError("a stage needs a positive duration")
        if self.kind in OPEN_LOOP and not (self.rate and self.rate > 0):
            raise ValueError(f"a {self.kind} stage needs a positive rate (requests/s)")
        if self.rate_end is not None and self.rate_end < 0:
            raise ValueError("rate_end must not be negative")
        if self.kind == CONCURRENT and not (self.concurrency and self.concurrency >= 1):
            raise ValueError("a concurrent stage needs concurrency >= 1")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.kind in OPEN_LOOP:
            ramp = f"→{self.rate_end:g}" if self.rate_end is not None else ""
            return f"{self.kind} {self.rate:g}{ramp}/s"
        if self.kind == CONCURRENT:
            return f"concurrent {self.concurrency}"
        return "synchronous"

    @property
    def workers(self) -> int:
        return 1 if self.kind == SYNCHRONOUS else (self.concurrency or 0)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}

    @classmethod
    def from_dict(cls, data: dict) -> Stage:
        unknown = set(data) - {"kind", "duration", "rate", "rate_end", "concurrency", "name"}
        if unknown:
            raise ValueError(f"unknown stage field(s): {', '.join(sorted(unknown))}")
        return cls(**data)


def arrival_times(stage: Stage, *, seed: int, start: float = 0.0) -> list[float]:
    """Send times (seconds from `start`) of an open-loop stage; the same for the same seed.

    Poisson: exponential inter-arrival gaps at the (possibly ramping) rate; constant: evenly
    spaced. A ramp integrates the rate, so the count matches ∫rate dt.
    """
    if stage.kind not in OPEN_LOOP:
        raise ValueError("only open-loop stages have an arrival schedule")
    rng = random.Random(seed)
    r0 = stage.rate
    r1 = stage.rate_end if stage.rate_end is not None else r0

    def rate_at(t: float) -> float:
        return max(r0 + (r1 - r0) * (t / stage.duration), 1e-9)

    times = []
    t = 0.0
    if stage.kind == CONSTANT:
        # The k-th send is where the integrated rate Λ(t) = r0·t + a·t² reaches k: computed from k,
        # not accumulated, so there is no float drift (10/s over 1 s is 10 sends, not 11).
        a = (r1 - r0) / (2 * stage.duration)
        k = 0
        while True:
            disc = r0 * r0 + 4 * a * k
            if disc < 0:  # ramping down: Λ never reaches k
                break
            t = 2 * k / (r0 + math.sqrt(disc))  # the stable root of a·t² + r0·t − k = 0
            if t >= stage.duration * (1 - 1e-12):
                break
            times.append(round(start + t, 9))  # to the ns: 0.6 + 0.3 is 0.9, not 0.8999999999999999
            k += 1
    else:
        while True:
            t += rng.expovariate(rate_at(t))
            if t >= stage.duration:
                break
            times.append(start + t)
    return times


def shard(items: list, index: int, count: int) -> list:
    """Every count-th item from `index`: shards interleave, so each sees the whole time span."""
    return items[index::count]


def shard_concurrency(concurrency: int, index: int, count: int) -> int:
    return concurrency // count + (1 if index < concurrency % count else 0)
