"""Per-request records, stored column-wise: about 50 bytes a request, merged exactly.

A run of 1,000,000 requests is ~50 MB in memory and less once compressed for storage.
Times are seconds from the run's start (monotonic clock); NaN means "did not happen".
Inter-token latencies are kept in a mergeable log histogram per stage (1 % buckets),
because keeping every gap of every request would cost ~15x more than all the rest.
"""

from __future__ import annotations

import math
import struct
import zlib
from array import array
from dataclasses import dataclass, field

import orjson

# error classes (DESIGN.md): index is what a record stores (new classes go at the end: stored
# records keep their meaning). "truncated": a 200 stream that ended ([DONE] or EOF) without a
# finish_reason, a cut-off answer, never counted as a completed one.
ERROR_CLASSES = ("ok", "timeout", "connect", "429", "5xx", "4xx", "malformed", "cancelled", "truncated")
OK, TIMEOUT, CONNECT, HTTP_429, HTTP_5XX, HTTP_4XX, MALFORMED, CANCELLED, TRUNCATED = range(len(ERROR_CLASSES))
MAX_SAMPLES = 3  # distinct sample bodies kept per error class
MAX_SAMPLE_CHARS = 500
TOKENS_USAGE, TOKENS_COUNTED = 0, 1  # where output/input token counts came from
CANARY_STAGE = 0xFFFF  # the stage index of canary requests (runner.Canary): never a real stage

NAN = float("nan")
_COLUMNS = (
    ("intended", "d"),
    ("sent", "d"),
    ("first", "d"),
    ("last", "d"),
    ("input_tokens", "I"),
    ("output_tokens", "I"),
    ("token_events", "I"),
    ("error", "B"),
    ("token_source", "B"),
    ("stage", "H"),
    ("status", "H"),
    ("seq", "I"),
)
_V1_COLUMNS = tuple(c for c in _COLUMNS if c[0] != "status")  # stored before HTTP statuses were kept
_V2 = b"RDY2"  # the head of a stored blob that has the status column and error samples


class LogHistogram:
    """Counts of values in buckets growing by 1 %, from 1 µs; merge = add the counts (exact)."""

    GROWTH = 1.01
    MIN = 1e-6
    SIZE = 2200  # up to ~ 1e-6 * 1.01**2200 ≈ 3e3 s

    __slots__ = ("counts",)

    def __init__(self, counts: array | None = None):
        self.counts = counts if counts is not None else array("Q", bytes(8 * self.SIZE))

    def add(self, value: float) -> None:
        if value != value:  # NaN
            return
        i = 0 if value <= self.MIN else int(math.log(value / self.MIN, self.GROWTH)) + 1
        self.counts[min(i, self.SIZE - 1)] += 1

    def merge(self, other: LogHistogram) -> None:
        counts = self.counts
        for i, c in enumerate(other.counts):
            if c:
                counts[i] += c

    @property
    def total(self) -> int:
        return sum(self.counts)

    def percentile(self, q: float) -> float:
        """Value at quantile q (0..100): the geometric middle of the bucket holding that rank."""
        n = self.total
        if n == 0:
            return NAN
        rank = max(1, math.ceil(q * n / 100 - 1e-9))  # 99.9 / 100 * 1000 is 999.0000000000001
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                if i == 0:
                    return self.MIN
                return self.MIN * self.GROWTH ** (i - 0.5)
        return NAN


@dataclass
class Records:
    intended: array = field(default_factory=lambda: array("d"))
    sent: array = field(default_factory=lambda: array("d"))
    first: array = field(default_factory=lambda: array("d"))
    last: array = field(default_factory=lambda: array("d"))
    input_tokens: array = field(default_factory=lambda: array("I"))
    output_tokens: array = field(default_factory=lambda: array("I"))
    token_events: array = field(default_factory=lambda: array("I"))
    error: array = field(default_factory=lambda: array("B"))
    token_source: array = field(default_factory=lambda: array("B"))
    stage: array = field(default_factory=lambda: array("H"))
    status: array = field(default_factory=lambda: array("H"))  # the HTTP status (0: no response)
    seq: array = field(default_factory=lambda: array("I"))  # send order in its shard (openai.RequestIds)
    itl: dict[int, LogHistogram] = field(default_factory=dict)  # stage -> histogram
    # error class -> up to MAX_SAMPLES distinct {"status", "body"} (bounded, redacted by the runner)
    samples: dict[int, list[dict]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.intended)

    def append(
        self,
        intended,
        sent,
        first,
        last,
        input_tokens,
        output_tokens,
        token_events,
        error,
        token_source,
        stage,
        seq,
        status=0,
    ):
        self.intended.append(intended)
        self.sent.append(sent)
        self.first.append(first)
        self.last.append(last)
        self.input_tokens.append(input_tokens)
        self.output_tokens.append(output_tokens)
        self.token_events.append(token_events)
        self.error.append(error)
        self.token_source.append(token_source)
        self.stage.append(stage)
        self.status.append(status)
        self.seq.append(seq)  # last: a reader on another thread takes len(seq) as the rows complete

    def add_sample(self, error: int, status: int, body: str) -> None:
        """Keep `body` as an example of `error` if it is new and there is room (bounded)."""
        kept = self.samples.setdefault(error, [])
        if len(kept) < MAX_SAMPLES and not any(s["body"] == body for s in kept):
            kept.append({"status": status or None, "body": body[:MAX_SAMPLE_CHARS]})

    def _merge_samples(self, other: Records) -> None:
        for error, kept in other.samples.items():
            for sample in kept:
                self.add_sample(error, sample["status"] or 0, sample["body"])

    def split(self, stage: int) -> tuple[Records, Records]:
        """(the other rows, the rows of `stage`), each with its ITL histograms: how a canary's
        requests are kept apart from the load they run beside. Without such rows (every run but an
        autoscaling one) nothing is copied: the records themselves are "the other rows"."""
        rows = self.stage
        if stage not in rows:
            return self, Records()
        rest, chosen = Records(), Records()
        for name, _ in _COLUMNS:
            column = getattr(self, name)
            getattr(rest, name).extend(v for v, st in zip(column, rows, strict=True) if st != stage)
            getattr(chosen, name).extend(v for v, st in zip(column, rows, strict=True) if st == stage)
        for st, hist in self.itl.items():
            (chosen if st == stage else rest).itl[st] = hist
        rest.samples = self.samples  # the examples are few: both halves keep them
        return rest, chosen

    def itl_for(self, stage: int) -> LogHistogram:
        hist = self.itl.get(stage)
        if hist is None:
            hist = self.itl[stage] = LogHistogram()
        return hist

    def extend(self, other: Records) -> None:
        """Merge another process's records (same time origin): exact, order-independent stats."""
        for name, _ in _COLUMNS:
            getattr(self, name).extend(getattr(other, name))
        for stage, hist in other.itl.items():
            self.itl_for(stage).merge(hist)
        self._merge_samples(other)

    def since(self, start: int, end: int, itl_before: dict[int, array] | None = None) -> Records:
        """Rows [start, end), with the ITL counts added since `itl_before` (a counts snapshot):
        what a periodic flush stores, so flushed batches add up to the whole without overlap.

        Safe while another thread appends: `seq` is the last column appended, so every
        column already holds the first len(seq) rows.
        """
        part = Records()
        for name, _ in _COLUMNS:
            setattr(part, name, getattr(self, name)[start:end])
        for stage, hist in self.itl.items():
            before = (itl_before or {}).get(stage)
            counts = array("Q", hist.counts) if before is None else array("Q", map(int.__sub__, hist.counts, before))
            if any(counts):
                part.itl[stage] = LogHistogram(counts)
        # Every flush carries the samples so far (a few small strings); merging drops repeats.
        part.samples = {error: list(kept) for error, kept in list(self.samples.items())}  # list(): atomic copy
        return part

    def itl_snapshot(self) -> dict[int, array]:
        return {stage: array("Q", hist.counts) for stage, hist in self.itl.items()}

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, n).itemsize * len(getattr(self, n)) for n, _ in _COLUMNS)

    def row(self, i: int) -> dict:
        return {name: getattr(self, name)[i] for name, _ in _COLUMNS}

    # --- storage: a compact binary blob (zlib), for a database column or a file ---------------

    def to_bytes(self) -> bytes:
        parts = [_V2, struct.pack("<II", len(self), len(self.itl))]
        for name, _ in _COLUMNS:
            parts.append(getattr(self, name).tobytes())
        for stage, hist in sorted(self.itl.items()):
            nz = [(i, c) for i, c in enumerate(hist.counts) if c]
            parts.append(struct.pack("<HI", stage, len(nz)))
            parts.extend(struct.pack("<HQ", i, c) for i, c in nz)
        samples = orjson.dumps({str(k): v for k, v in self.samples.items()})
        parts += [struct.pack("<I", len(samples)), samples]
        return zlib.compress(b"".join(parts), 6)

    @classmethod
    def from_bytes(cls, blob: bytes) -> Records:
        """Read a stored blob: this version's, or one stored before statuses and samples were kept."""
        raw = memoryview(zlib.decompress(blob))
        v2 = raw[:4] == _V2
        offset = 4 if v2 else 0
        n, n_hist = struct.unpack_from("<II", raw, offset)
        offset += 8
        rec = cls()
        for name, code in _COLUMNS if v2 else _V1_COLUMNS:
            col = array(code)
            size = col.itemsize * n
            col.frombytes(raw[offset : offset + size])
            setattr(rec, name, col)
            offset += size
        if not v2:
            rec.status = array("H", bytes(2 * n))
        for _ in range(n_hist):
            stage, nz = struct.unpack_from("<HI", raw, offset)
            offset += 6
            hist = rec.itl_for(stage)
            for _ in range(nz):
                i, c = struct.unpack_from("<HQ", raw, offset)
                offset += 10
                hist.counts[i] = c
        if v2:
            (size,) = struct.unpack_from("<I", raw, offset)
            stored = orjson.loads(bytes(raw[offset + 4 : offset + 4 + size]))
            rec.samples = {int(k): v for k, v in stored.items()}
        return rec
