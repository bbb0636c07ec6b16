"""Traffic shape from a usage log, streamed. Plain Python, no Django.

A usage log is CSV (header: timestamp, user or user_id, optional tenant or tenant_id,
input_tokens, output_tokens) or JSONL with the same keys; timestamps are ISO-8601 (a missing
offset means UTC) or epoch seconds. Bad rows are counted and the first few kept with their
line numbers; they never stop the analysis.

Memory: rows are never kept. What grows is
- one small record per distinct user (requests, tokens, busiest minute): needed for the Gini
  coefficient and the top-1% share, which depend on every user's total; ~150 bytes a user;
- one record per minute that has requests: the time axis is sparse, so two rows a thousand
  years apart cost two records, not a slot for every minute between them (idle minutes are
  only filled in for the few stretches that are shown: the busiest hour, the hourly chart);
- the per-user counts of the last few minutes (`reorder_window_minutes`), to find each user's
  busiest minute. Logs are written roughly in time order; a row older than the window is
  still counted in every total, but its minute's per-user split is then approximate
  (reported as `late_rows`).

Caps (`Limits`): a log is refused with `UsageLimitExceeded`, naming the cap, once it has expanded
to more than `max_bytes` (a gzip bomb stops there, not at the end of the file), holds more than
`max_rows` lines, more than `max_distinct` users, tenants and minutes together (what the memory
above grows with), or one line longer than `MAX_LINE_CHARS` (a line is read whole).

Why per minute: capacity is sized for the busiest minute, so one user asking 50 questions in
a minute needs more replicas than 500 users asking one each spread over the day, though the
latter is ten times the volume.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import io
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from apps.costs.pricing import DemandCurve

try:
    import orjson

    _json_loads = orjson.loads
    _JSONError: tuple[type[Exception], ...] = (orjson.JSONDecodeError,)
except ImportError:  # pragma: no cover - orjson is a dependency, json is the fallback
    import json

    _json_loads = json.loads
    _JSONError = (ValueError,)

SECONDS_PER_MINUTE = 60
MINUTES_PER_HOUR = 60
TOKENS_PER_MTOK = 1_000_000
# Epoch seconds beyond this (year 5138) are almost surely milliseconds: refused, not guessed.
_MAX_EPOCH_S = 1e11
USER_KEYS = ("user", "user_id")
TENANT_KEYS = ("tenant", "tenant_id")
# A probe stage needs a positive rate: an idle minute replays at this trickle (≈ nothing).
IDLE_RATE_PER_S = 0.001
REPLAY_MINUTES = 60
# One line is read into memory whole: a usage row is ~100 characters, a "line" of a gigabyte is an attack.
MAX_LINE_CHARS = 1_000_000
# requests_per_minute() fills in every idle minute: it is refused beyond this span (~4 years,
# ~17 MB). The analysis itself never needs it (see the module docstring).
MAX_DENSE_MINUTES = 4 * 366 * 24 * 60
# The progress callback (the worker's heartbeat) is called every this many lines, and for a file
# at every block read from it too (a few long lines must not silence it).
PROGRESS_EVERY_LINES = 10_000


class UsageLimitExceeded(ValueError):
    """The log is beyond one of the caps; `limit` names which ("bytes", "rows", "distinct", "line")."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass(frozen=True)
class Limits:
    """Caps on one analysis; None means no cap (a caller that trusts its input, such as a bench)."""

    max_bytes: int | None = None  # bytes read from the file, after decompression
    max_rows: int | None = None  # lines, bad ones and the header included
    max_distinct: int | None = None  # distinct users + tenants + minutes with requests
    max_line_chars: int = MAX_LINE_CHARS


@dataclass
class BadRows:
    count: int = 0
    examples: list[dict] = field(default_factory=list)
    max_examples: int = 20

    def add(self, line: int, reason: str) -> None:
        self.count += 1
        if len(self.examples) < self.max_examples:
            self.examples.append({"line": line, "reason": reason})


@dataclass
class UsageAnalysis:
    rows: int
    bad_rows: BadRows
    users: int
    tenants: int
    requests: int
    input_tokens: int
    output_tokens: int
    top_users: list[dict]
    top_tenants: list[dict]
    concentration: dict
    per_minute: dict
    burstiness: dict
    capacity: dict | None
    cost: dict | None
    late_rows: int
    # Kept for the methods below, not part of to_dict(): minute (epoch minutes) -> [requests,
    # input tokens, output tokens]; user / tenant -> [requests, input tokens, output tokens, ...].
    minutes: dict[int, list[int]] = field(repr=False, default_factory=dict)
    user_totals: dict[str, list[int]] = field(repr=False, default_factory=dict)
    tenant_totals: dict[str, list[int]] = field(repr=False, default_factory=dict)
    prices: tuple[float, float, float] = (0.0, 0.0, 0.0)  # $/request, $/1M input, $/1M output

    def demand_curve(self, *, scale: float = 1.0) -> DemandCurve:
        """The per-minute arrival curve as requests/s, for `pricing.project_monthly(demand=...)`.

        The curve is repeated to fill a month there, so a log of whole days (or weeks) projects best.
        """
        return DemandCurve.per_minute([n / SECONDS_PER_MINUTE * scale for n in self.requests_per_minute()])

    def _usd(self, rec) -> float:
        per_request, per_mtok_in, per_mtok_out = self.prices
        return rec[0] * per_request + (rec[1] * per_mtok_in + rec[2] * per_mtok_out) / TOKENS_PER_MTOK

    def costs_by_user(self) -> Iterator[tuple[str, int, int, int, float]]:
        """(user, requests, input tokens, output tokens, usd) for every user, unordered."""
        for user, rec in self.user_totals.items():
            yield user, rec[0], rec[1], rec[2], self._usd(rec)

    def costs_by_tenant(self) -> Iterator[tuple[str, int, int, int, float]]:
        """(tenant, requests, input tokens, output tokens, usd) for every tenant, unordered."""
        for tenant, rec in self.tenant_totals.items():
            yield tenant, rec[0], rec[1], rec[2], self._usd(rec)

    def requests_per_minute(self) -> list[int]:
        """Requests in every minute from the first to the last, idle minutes as 0. Dense: refused
        (ValueError) for a log spanning more than MAX_DENSE_MINUTES."""
        if not self.minutes:
            return []
        lo, hi = min(self.minutes), max(self.minutes)
        if hi - lo + 1 > MAX_DENSE_MINUTES:
            raise ValueError(
                f"the log spans {hi - lo + 1:,} minutes; a per-minute curve is drawn for at most "
                f"{MAX_DENSE_MINUTES:,} (about four years)"
            )
        return self._counts(lo, hi)

    def _counts(self, lo: int, hi: int) -> list[int]:
        get = self.minutes.get
        return [get(m, (0,))[0] for m in range(lo, hi + 1)]

    def busiest_hour(self) -> dict:
        """The hour around the log's busiest minute (busiest_window): the curve a replay plan sends.

        Only the minutes within an hour of the busiest one are filled in: every window that holds
        it lies there, so the answer is busiest_window(requests_per_minute()) at any span."""
        if not self.minutes:
            return {"from": None, "requests_per_minute": []}
        lo, hi = min(self.minutes), max(self.minutes)
        peak_count = max(m[0] for m in self.minutes.values())
        peak = min(k for k, m in self.minutes.items() if m[0] == peak_count)  # the first, as curve.index() finds
        first = max(lo, peak - REPLAY_MINUTES + 1)
        start, counts = busiest_window(self._counts(first, min(hi, peak + REPLAY_MINUTES - 1)), REPLAY_MINUTES)
        return {"from": _minute_iso(first + start), "requests_per_minute": counts}

    def hourly_requests(self, max_hours: int) -> list[int]:
        """Requests per hour from the first minute on (the chart), at most `max_hours` of them."""
        if not self.minutes:
            return []
        lo, hi = min(self.minutes), max(self.minutes)
        hours = [0] * min(max_hours, (hi - lo) // MINUTES_PER_HOUR + 1)
        for minute, m in self.minutes.items():
            hour = (minute - lo) // MINUTES_PER_HOUR
            if hour < len(hours):
                hours[hour] += m[0]
        return hours

    def to_dict(self) -> dict:
        # Not asdict(self): that would deep-copy the per-user and per-minute tables first.
        skip = ("minutes", "user_totals", "tenant_totals", "prices")
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        d["bad_rows"] = asdict(self.bad_rows)
        return d


def gini(values: Sequence[float]) -> float:
    """Gini coefficient of non-negative values: 0 when all are equal, → 1 when one holds everything."""
    xs = sorted(values)
    n = len(xs)
    total = sum(xs)
    if n == 0 or total == 0:
        return 0.0
    weighted = sum(i * x for i, x in enumerate(xs, 1))
    return 2 * weighted / (n * total) - (n + 1) / n


def top_share(values: Sequence[float], fraction: float = 0.01) -> float:
    """Share of the total held by the top `fraction` of holders (at least one holder)."""
    n = len(values)
    total = sum(values)
    if n == 0 or total == 0:
        return 0.0
    k = max(1, math.ceil(n * fraction))
    return sum(heapq.nlargest(k, values)) / total


# --- reading -------------------------------------------------------------------------------------

Row = tuple[int, object, object, object, object, object]  # line, timestamp, user, tenant, input, output


class _CountedReader(io.RawIOBase):
    """The file's bytes after decompression, counted: past `cap` it raises, so a gzip bomb stops
    at the cap instead of expanding until the disk, the memory or the time runs out."""

    def __init__(self, raw, cap: int | None, progress: Callable[[], None] | None) -> None:
        self._raw, self._cap, self._progress, self.count = raw, cap, progress, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._raw.readinto(buffer)
        self.count += n
        if self._cap is not None and self.count > self._cap:
            raise UsageLimitExceeded("bytes", f"the log expands to more than {self._cap:,} bytes")
        if self._progress is not None:
            self._progress()
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def _open_text(path: Path, max_bytes: int | None, progress: Callable[[], None] | None = None):
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb", buffering=0)  # noqa: SIM115
    counted = io.BufferedReader(_CountedReader(raw, max_bytes, progress), buffer_size=1 << 16)
    return io.TextIOWrapper(counted, encoding="utf-8", newline="")


def _capped_lines(lines: Iterable[str], limits: Limits, progress: Callable[[], None] | None) -> Iterator[str]:
    """The lines, counted: past `max_rows` (the header is one more) or one longer than
    `max_line_chars` it raises; `progress()` every PROGRESS_EVERY_LINES lines."""
    max_lines = limits.max_rows + 1 if limits.max_rows is not None else float("inf")
    longest = limits.max_line_chars
    beat = PROGRESS_EVERY_LINES
    n = 0
    for line in lines:
        n += 1
        if n > max_lines:
            raise UsageLimitExceeded("rows", f"the log has more than {limits.max_rows:,} rows")
        if len(line) > longest and len(line.rstrip("\r\n")) > longest:
            raise UsageLimitExceeded("line", f"line {n} is longer than {longest:,} characters")
        if n == beat:
            beat += PROGRESS_EVERY_LINES
            if progress is not None:
                progress()
        yield line


def _readlines(handle, max_line_chars: int) -> Iterator[str]:
    # readline(limit) rather than iterating the file: iteration reads a line whole, however long.
    return iter(partial(handle.readline, max_line_chars + 2), "")


def _guess_format(path: Path | None, first_line: str) -> str:
    if path is not None:
        suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
        if suffixes and suffixes[-1] in (".jsonl", ".ndjson", ".json"):
            return "jsonl"
        if suffixes and suffixes[-1] == ".csv":
            return "csv"
    return "jsonl" if first_line.lstrip().startswith("{") else "csv"


def _csv_rows(lines: Iterator[str], bad: BadRows) -> Iterator[Row]:
    reader = csv.reader(lines)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return
    index = {name: i for i, name in enumerate(header)}
    missing = [k for k in ("timestamp", "input_tokens", "output_tokens") if k not in index]
    user_i = next((index[k] for k in USER_KEYS if k in index), None)
    tenant_i = next((index[k] for k in TENANT_KEYS if k in index), None)
    if user_i is None and tenant_i is None:
        missing.append("user (or tenant)")
    if missing:
        bad.add(1, f"header lacks {', '.join(missing)}; nothing read")
        return
    if user_i is None:
        user_i = tenant_i  # a tenant-only log: each tenant is one "user"
    ts_i, in_i, out_i = index["timestamp"], index["input_tokens"], index["output_tokens"]
    width = max(ts_i, in_i, out_i, user_i, tenant_i if tenant_i is not None else 0) + 1
    while True:
        try:
            rec = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a field over csv's size limit, an unclosed quote: that row, not the log
            bad.add(reader.line_num, f"unreadable CSV row: {exc}")
            continue
        if len(rec) < width:
            if rec:  # blank lines are not rows
                bad.add(reader.line_num, f"{len(rec)} field(s), expected {len(header)}")
            continue
        yield (
            reader.line_num,
            rec[ts_i],
            rec[user_i],
            rec[tenant_i] if tenant_i is not None else None,
            rec[in_i],
            rec[out_i],
        )


def _jsonl_rows(lines: Iterable[str], bad: BadRows) -> Iterator[Row]:
    for line_no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = _json_loads(line)
        except _JSONError:
            bad.add(line_no, "not valid JSON")
            continue
        if not isinstance(obj, dict):
            bad.add(line_no, "not a JSON object")
            continue
        get = obj.get
        user = get("user")
        if user is None:
            user = get("user_id")
        tenant = get("tenant")
        if tenant is None:
            tenant = get("tenant_id")
        if user is None:
            user = tenant
        yield line_no, get("timestamp"), user, tenant, get("input_tokens"), get("output_tokens")


def _tokens(value) -> int:
    if type(value) is int:
        n = value
    elif isinstance(value, str):
        try:
            n = int(value)
        except ValueError:
            f = float(value)  # "12.0" from a spreadsheet export is 12; "12.5" is not a count
            if not f.is_integer():
                raise
            n = int(f)
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    else:
        raise ValueError
    if n < 0:
        raise ValueError
    return n


# --- analysis ------------------------------------------------------------------------------------


def analyze_usage(
    source: str | Path | Iterable[str],
    *,
    fmt: str | None = None,
    top_n: int = 10,
    max_bad_examples: int = 20,
    replica_goodput_requests_per_s: float | None = None,
    replica_goodput_output_tokens_per_s: float | None = None,
    usd_per_request: float = 0.0,
    usd_per_mtok_input: float = 0.0,
    usd_per_mtok_output: float = 0.0,
    reorder_window_minutes: int = 5,
    limits: Limits | None = None,
    progress: Callable[[], None] | None = None,
) -> UsageAnalysis:
    """Stream a usage log (a path, or an iterable of text lines) and describe its traffic shape.

    `fmt` is "csv" or "jsonl" (guessed from the suffix or the first line when None). Given a
    replica's goodput, `capacity` says how many replicas the busiest minute needs; given prices
    (per request and/or per 1M input/output tokens), `cost` attributes spend per user and tenant.
    Past one of `limits` it raises UsageLimitExceeded (`max_bytes` applies to files only: an
    iterable is already in the caller's hands). `progress()` is called now and then
    while it reads (a worker's heartbeat); whatever it raises stops the analysis.
    """
    limits = limits or Limits()
    bad = BadRows(max_examples=max_bad_examples)
    path = Path(source) if isinstance(source, str | Path) else None
    handle = _open_text(path, limits.max_bytes, progress) if path is not None else None
    try:
        raw_lines = _readlines(handle, limits.max_line_chars) if handle is not None else source
        lines: Iterator[str] = _capped_lines(raw_lines, limits, progress)
        first = next(lines, None)
        if first is None:
            rows: Iterator[Row] = iter(())
        else:
            fmt = fmt or _guess_format(path, first.removeprefix("\ufeff"))
            if fmt not in ("csv", "jsonl"):
                raise ValueError("fmt must be 'csv' or 'jsonl'")
            first = first.removeprefix("\ufeff")  # the byte-order mark spreadsheet exports start with
            chained = _chain_first(first, lines)
            rows = _csv_rows(chained, bad) if fmt == "csv" else _jsonl_rows(chained, bad)
        acc = _accumulate(rows, bad, reorder_window_minutes, limits.max_distinct)
    finally:
        if handle is not None:
            handle.close()
    if progress is not None:
        progress()
    return _summarise(
        acc,
        bad,
        top_n=top_n,
        goodput_rps=replica_goodput_requests_per_s,
        goodput_tps=replica_goodput_output_tokens_per_s,
        usd_per_request=usd_per_request,
        usd_per_mtok_input=usd_per_mtok_input,
        usd_per_mtok_output=usd_per_mtok_output,
    )


def _chain_first(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


@dataclass
class _Acc:
    users: dict
    tenants: dict
    minutes: dict
    rows: int
    late_rows: int
    busiest_user_minute: tuple[int, str | None, int | None]  # count, user, minute
    peak_split: tuple[int, int | None, list[int], int]  # total, minute, top user counts, distinct users


def _accumulate(rows: Iterator[Row], bad: BadRows, window: int, max_distinct: int | None = None) -> _Acc:
    users: dict[str, list[int]] = {}  # user -> [requests, input, output, most requests in one minute]
    tenants: dict[str, list[int]] = {}
    minutes: dict[int, list[int]] = {}
    open_minutes: dict[int, dict[str, int]] = {}  # minute -> user -> requests, the last `window` minutes
    state = {"busiest": (0, None, None), "peak": (0, None, [], 0)}
    newest = horizon = -(1 << 62)
    late = 0
    good = 0
    fromiso = datetime.fromisoformat

    def flush(minute: int) -> None:
        counts = open_minutes.pop(minute)
        top_count = 0
        top_user = None
        for u, c in counts.items():
            rec = users[u]
            if c > rec[3]:
                rec[3] = c
            if c > top_count:
                top_count, top_user = c, u
        if top_count > state["busiest"][0]:
            state["busiest"] = (top_count, top_user, minute)
        total = sum(counts.values())
        if total > state["peak"][0]:
            state["peak"] = (total, minute, heapq.nlargest(10, counts.values()), len(counts))

    def check_distinct() -> None:
        # Called only when a user, tenant or minute is new; the tables are what memory grows with.
        if len(users) + len(tenants) + len(minutes) > distinct_cap:
            raise UsageLimitExceeded(
                "distinct",
                f"the log has more than {distinct_cap:,} distinct users, tenants and minutes with requests (together)",
            )

    distinct_cap = max_distinct if max_distinct is not None else float("inf")
    cur_minute = None
    cur_counts: dict[str, int] = {}
    for line, ts_raw, user, tenant, in_raw, out_raw in rows:
        try:
            if type(ts_raw) is str and len(ts_raw) > 4 and ts_raw[4] == "-":
                dt = fromiso(ts_raw)
                if dt.tzinfo is None:
                    dt = dt.replace(tzinfo=UTC)
                ts = dt.timestamp()
            elif type(ts_raw) is bool or ts_raw is None:
                raise ValueError
            else:
                ts = float(ts_raw)
        except (ValueError, TypeError):
            bad.add(line, f"bad timestamp {str(ts_raw)[:40]!r}")
            continue
        if not 0 <= ts < _MAX_EPOCH_S:  # also refuses NaN
            bad.add(line, f"timestamp {str(ts_raw)[:40]!r} out of range (epoch milliseconds?)")
            continue
        try:
            tin = _tokens(in_raw)
            tout = _tokens(out_raw)
        except (ValueError, TypeError, OverflowError):
            bad.add(line, f"bad token count(s) {str(in_raw)[:20]!r}, {str(out_raw)[:20]!r}")
            continue
        if user is None or user == "":
            bad.add(line, "missing user")
            continue
        if type(user) is not str:
            user = str(user)
        good += 1
        minute = int(ts // SECONDS_PER_MINUTE)

        u = users.get(user)
        if u is None:
            users[user] = [1, tin, tout, 0]
            check_distinct()
        else:
            u[0] += 1
            u[1] += tin
            u[2] += tout
        if tenant is not None and tenant != "":
            if type(tenant) is not str:
                tenant = str(tenant)
            t = tenants.get(tenant)
            if t is None:
                tenants[tenant] = [1, tin, tout]
                check_distinct()
            else:
                t[0] += 1
                t[1] += tin
                t[2] += tout
        m = minutes.get(minute)
        if m is None:
            minutes[minute] = [1, tin, tout]
            check_distinct()
        else:
            m[0] += 1
            m[1] += tin
            m[2] += tout

        if minute != cur_minute:
            if cur_minute is not None and cur_minute < horizon and cur_minute in open_minutes:
                # Leaving a late minute: close it now. Its split is approximate anyway, and kept open
                # a log written backwards would hold every (minute, user) pair it has.
                flush(cur_minute)
            if minute > newest:
                newest = minute
                horizon = newest - window
                for old in [k for k in open_minutes if k < horizon]:
                    flush(old)
            cur_counts = open_minutes.get(minute)
            if cur_counts is None:
                cur_counts = open_minutes[minute] = {}
            cur_minute = minute
        if minute < horizon:
            late += 1
        cur_counts[user] = cur_counts.get(user, 0) + 1
    for old in sorted(open_minutes):
        flush(old)
    return _Acc(users, tenants, minutes, good, late, state["busiest"], state["peak"])


def _minute_iso(minute: int | None) -> str | None:
    if minute is None:
        return None
    return datetime.fromtimestamp(minute * SECONDS_PER_MINUTE, UTC).isoformat().replace("+00:00", "Z")


def _summarise(
    acc: _Acc,
    bad: BadRows,
    *,
    top_n,
    goodput_rps,
    goodput_tps,
    usd_per_request,
    usd_per_mtok_input,
    usd_per_mtok_output,
) -> UsageAnalysis:
    users, minutes = acc.users, acc.minutes
    requests = sum(m[0] for m in minutes.values())
    input_tokens = sum(m[1] for m in minutes.values())
    output_tokens = sum(m[2] for m in minutes.values())

    def usd(rec) -> float:
        return rec[0] * usd_per_request + (rec[1] * usd_per_mtok_input + rec[2] * usd_per_mtok_output) / TOKENS_PER_MTOK

    priced = bool(usd_per_request or usd_per_mtok_input or usd_per_mtok_output)
    top_users = [
        {
            "user": u,
            "requests": r[0],
            "input_tokens": r[1],
            "output_tokens": r[2],
            "request_share": r[0] / requests,
            "max_requests_in_a_minute": r[3],
            **({"usd": usd(r)} if priced else {}),
        }
        for u, r in heapq.nlargest(top_n, users.items(), key=lambda kv: kv[1][0])
    ]
    tenant_key = (lambda kv: usd(kv[1])) if priced else (lambda kv: kv[1][0])
    top_tenants = [
        {
            "tenant": t,
            "requests": r[0],
            "input_tokens": r[1],
            "output_tokens": r[2],
            **({"usd": usd(r)} if priced else {}),
        }
        for t, r in heapq.nlargest(top_n, acc.tenants.items(), key=tenant_key)
    ]

    per_user_requests = [r[0] for r in users.values()]
    per_user_tokens = [r[1] + r[2] for r in users.values()]
    concentration = {
        "top_1pct_users": max(1, math.ceil(len(users) * 0.01)) if users else 0,
        "top_1pct_request_share": top_share(per_user_requests),
        "top_1pct_token_share": top_share(per_user_tokens),
        "gini_requests": gini(per_user_requests),
        "gini_tokens": gini(per_user_tokens),
    }
    del per_user_requests, per_user_tokens

    if minutes:
        first, last = min(minutes), max(minutes)
        span = last - first + 1
        peak_req_minute = max(minutes, key=lambda k: minutes[k][0])
        peak_out_minute = max(minutes, key=lambda k: minutes[k][2])
        peak_req = minutes[peak_req_minute][0]
        peak_out = minutes[peak_out_minute][2]
        peak_in = max(m[1] for m in minutes.values())
    else:
        first = last = peak_req_minute = peak_out_minute = None
        span = peak_req = peak_out = peak_in = 0
    avg_req = requests / span if span else 0.0
    avg_out = output_tokens / span if span else 0.0
    per_minute = {
        "first_minute": _minute_iso(first),
        "last_minute": _minute_iso(last),
        "span_minutes": span,
        "active_minutes": len(minutes),
        "peak_requests_per_minute": peak_req,
        "peak_requests_minute": _minute_iso(peak_req_minute),
        "average_requests_per_minute": avg_req,
        "peak_to_average_requests": peak_req / avg_req if avg_req else None,
        "peak_output_tokens_per_minute": peak_out,
        "peak_output_tokens_minute": _minute_iso(peak_out_minute),
        "peak_input_tokens_per_minute": peak_in,
        "average_output_tokens_per_minute": avg_out,
        "peak_to_average_output_tokens": peak_out / avg_out if avg_out else None,
    }

    busiest_count, busiest_user, busiest_minute = acc.busiest_user_minute
    split_total, split_minute, split_top, split_users = acc.peak_split
    burstiness = {
        "max_requests_by_one_user_in_a_minute": busiest_count,
        "busiest_user": busiest_user,
        "busiest_user_minute": _minute_iso(busiest_minute),
        "peak_minute_distinct_users": split_users,
        "peak_minute_top_user_share": split_top[0] / split_total if split_total else 0.0,
        "peak_minute_top10_users_share": sum(split_top) / split_total if split_total else 0.0,
    }

    capacity = None
    if goodput_rps or goodput_tps:
        capacity = {
            "peak_requests_per_s": peak_req / SECONDS_PER_MINUTE,
            "peak_output_tokens_per_s": peak_out / SECONDS_PER_MINUTE,
        }
        needs = []
        if goodput_rps:
            capacity["replicas_for_peak_minute_by_requests"] = _ceil(peak_req / SECONDS_PER_MINUTE / goodput_rps)
            capacity["replicas_for_average_by_requests"] = _ceil(avg_req / SECONDS_PER_MINUTE / goodput_rps)
            needs.append(capacity["replicas_for_peak_minute_by_requests"])
        if goodput_tps:
            capacity["replicas_for_peak_minute_by_output_tokens"] = _ceil(peak_out / SECONDS_PER_MINUTE / goodput_tps)
            capacity["replicas_for_average_by_output_tokens"] = _ceil(avg_out / SECONDS_PER_MINUTE / goodput_tps)
            needs.append(capacity["replicas_for_peak_minute_by_output_tokens"])
        capacity["replicas_for_peak_minute"] = max(needs)

    cost = None
    if priced:
        total_usd = usd((requests, input_tokens, output_tokens))
        cost = {
            "usd_per_request": usd_per_request,
            "usd_per_mtok_input": usd_per_mtok_input,
            "usd_per_mtok_output": usd_per_mtok_output,
            "total_usd": total_usd,
            "untenanted_usd": total_usd - sum(usd(r) for r in acc.tenants.values()),
        }

    return UsageAnalysis(
        rows=acc.rows,
        bad_rows=bad,
        users=len(users),
        tenants=len(acc.tenants),
        requests=requests,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        top_users=top_users,
        top_tenants=top_tenants,
        concentration=concentration,
        per_minute=per_minute,
        burstiness=burstiness,
        capacity=capacity,
        cost=cost,
        late_rows=acc.late_rows,
        minutes=minutes,
        user_totals=users,
        tenant_totals=acc.tenants,
        prices=(usd_per_request, usd_per_mtok_input, usd_per_mtok_output),
    )


def _ceil(x: float) -> int:
    return max(0, math.ceil(x - 1e-9))


# --- replay as a probe profile -------------------------------------------------------------------


def busiest_window(requests_per_minute: Sequence[int], minutes: int = 60) -> tuple[int, list[int]]:
    """(first minute, counts) of the `minutes`-long stretch a replay should send: one that holds the
    busiest minute (capacity is sized for peaks, and one user's burst can out-weigh a busy hour of
    spread-out traffic), with the most requests among those; ties go to the earliest."""
    if minutes < 1:
        raise ValueError("the window must be at least a minute")
    curve = list(requests_per_minute)
    if len(curve) <= minutes:
        return 0, curve
    peak = curve.index(max(curve))
    first, last = max(0, peak - minutes + 1), min(peak, len(curve) - minutes)
    total = sum(curve[first : first + minutes])
    best_start, best = first, total
    for start in range(first + 1, last + 1):
        total += curve[start + minutes - 1] - curve[start - 1]
        if total > best:
            best_start, best = start, total
    return best_start, curve[best_start : best_start + minutes]


def probe_profile_from_curve(
    requests_per_minute: Sequence[float],
    *,
    scale: float = 1.0,
    seconds_per_minute: float = 6.0,
    minutes_per_stage: int = 1,
    name: str = "usage",
) -> dict:
    """A multi-stage Poisson probe profile that replays a per-minute arrival curve.

    Each minute of the log becomes `seconds_per_minute` seconds of load at the minute's *rate*
    (requests ÷ 60 × `scale`): compressing time keeps the rate, which is what capacity sees,
    and sends fewer requests in all. `minutes_per_stage` > 1 merges minutes into one stage at
    the busiest of them (peaks are what a replay must keep). Consecutive stages at the same
    rate are merged. Idle minutes replay at IDLE_RATE_PER_S, since a stage needs a rate.
    """
    if scale <= 0 or seconds_per_minute <= 0 or minutes_per_stage < 1:
        raise ValueError("scale, seconds_per_minute and minutes_per_stage must be positive")
    stages: list[dict] = []
    for i in range(0, len(requests_per_minute), minutes_per_stage):
        chunk = requests_per_minute[i : i + minutes_per_stage]
        rate = round(max(chunk) / SECONDS_PER_MINUTE * scale, 6)
        rate = rate if rate > 0 else IDLE_RATE_PER_S
        duration = seconds_per_minute * len(chunk)
        if stages and stages[-1]["rate"] == rate:
            stages[-1]["duration"] = round(stages[-1]["duration"] + duration, 6)
            continue
        stages.append({"kind": "poisson", "rate": rate, "duration": round(duration, 6), "name": f"{name} m{i}"})
    if not stages:
        raise ValueError("the curve is empty")
    return {"stages": stages}


def noisy_neighbour_plan(
    analysis: dict, *, quiet: int = 3, duration_s: float = 180.0, burst_at_s: float = 60.0, scale: float = 1.0
) -> dict:
    """A noisy-neighbour plan (`manage.py probe --tenants`, engine/tenants.py) from an analysed log.

    The user with the busiest minute is the noisy tenant: it sends its average rate throughout,
    and bursts its busiest minute's requests over 60 s from `burst_at_s`. The next `quiet` users by
    requests are the quiet tenants, each at its own average rate over the log's span. Every tenant
    asks with its own average prompt and completion sizes. Rates and the burst are multiplied by
    `scale`. Each tenant is named by its user and sent as the tenant header's value; keys are for
    the operator to add (they are not in a log).
    """
    if not (quiet >= 1 and duration_s > burst_at_s + 60 and burst_at_s >= 0 and scale > 0):
        raise ValueError("quiet >= 1, scale > 0, and the run must last beyond the burst (burst_at_s + 60 s)")
    users = list(analysis.get("top_users") or [])
    span_s = max((analysis.get("per_minute") or {}).get("span_minutes") or 0, 1) * SECONDS_PER_MINUTE
    if len(users) < 2:
        raise ValueError("the log needs at least two users: one to burst and one to be measured")
    noisy = max(users, key=lambda u: (u["max_requests_in_a_minute"], u["requests"]))
    others = sorted((u for u in users if u is not noisy), key=lambda u: -u["requests"])[:quiet]

    def steady(user) -> list[dict]:
        rate = round(user["requests"] / span_s * scale, 6)
        return [{"kind": "poisson", "rate": rate, "duration": duration_s}] if rate > 0 else []

    def sizes(user) -> dict:
        """The user's own average prompt and completion sizes, when the log has them."""
        if not user.get("requests") or "input_tokens" not in user or "output_tokens" not in user:
            return {}
        return {
            "prompt_tokens": max(1, round(user["input_tokens"] / user["requests"])),
            "max_tokens": max(1, round(user["output_tokens"] / user["requests"])),
        }

    burst = max(1, round(noisy["max_requests_in_a_minute"] * scale))
    return {
        "tenants": [
            {
                "name": str(noisy["user"]),
                "stages": steady(noisy),
                "burst": {"at": burst_at_s, "requests": burst},
                **sizes(noisy),
            },
            *({"name": str(u["user"]), "stages": steady(u), **sizes(u)} for u in others),
        ],
    }
