"""Streaming parsers for training logs: the steps, times and token counts the scaling fits need.

Every parser takes an iterable of text lines (an open file works), so a 2 GB log is read a line at
a time and only the parsed points are kept. Lines may keep or drop their line endings. A bad line
(an unparseable or negative number, NaN or infinity, a missing step, a step that does not follow
the previous one) is skipped and reported by its 1-based line number; parsing never stops for one.

Formats (`LogFormat`):

- Hugging Face Trainer `trainer_state.json`: one JSON document whose "log_history" holds one dict
  per logging event. Training events carry "loss"; evaluation events ("eval_*" without "loss")
  and other custom events are skipped without a report, and the final summary event supplies
  `ParsedLog.runtime_s` ("train_runtime"). The document has to be read whole, so it is capped at
  `MAX_TRAINER_STATE_CHARS`; its entries are still decoded one at a time, so a truncated file
  (a run still writing) yields the entries before the cut.
- Hugging Face JSON lines: the same dicts, one per line, in JSON or as Python prints a dict
  (single quotes). Each needs a "step": the dicts the stock ProgressCallback prints carry none,
  and are reported, because a point without its step cannot be placed on the scaling curve.
- PyTorch Lightning CSVLogger `metrics.csv`: a header (`epoch,step,train_loss,...`) and rows with
  empty cells. Rows with no training value (validation or epoch-end rows) are skipped unreported,
  because Lightning writes them at the step of the last training row.
- Plain CSV: `step,time,tokens,gpus` (more columns are ignored).

A negative loss is kept, not reported: some objectives (log-likelihood ratios, contrastive and
reward losses) go below zero. Steps, times, counts and GPU counts cannot.

What a `StepPoint` holds: `time_s`, `tokens` and `samples` are counted from the first point that
reports them, which gets 0, so `tokens / time_s` is the throughput since then. Sources count them
in one of two ways, and both are turned into that running total:

- cumulative columns (`time`, `time_s`, `elapsed_s`: seconds since the start; `tokens_seen`,
  `num_input_tokens_seen`, ...) are made relative to their first value; a value below the
  previous one is reported (a restarted clock, or a resumed run appended to the same file);
- per-step columns (`train_step_time`, `step_time`, `tokens_per_step`, ...) are multiplied by the
  steps since the previous point, because logs record every k-th step and the logged step stands
  for the k steps before it. A per-step series with an empty cell stops there (later totals are
  None), since the steps of that gap cannot be counted;
- a bare `tokens` or `samples` column is cumulative when it rises strictly on every row and
  per-step otherwise: a fixed batch logs the same count every step, a running total never does.
"""

from __future__ import annotations

import ast
import csv
import itertools
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum, StrEnum

MAX_PROBLEMS_KEPT = 100
MAX_TRAINER_STATE_CHARS = 64 * 1024 * 1024
# A log record is a few hundred characters; a longer "line" is a binary file or a runaway print,
# and decoding it as a Python literal could take a long time.
MAX_JSON_LINE_CHARS = 1024 * 1024
# How far detection looks for the first non-blank line.
MAX_HEAD_LINES = 1000


class LogFormat(StrEnum):
    HF_TRAINER_STATE = "hf_trainer_state"
    HF_JSON_LINES = "hf_json_lines"
    LIGHTNING_CSV = "lightning_csv"
    PLAIN_CSV = "plain_csv"


@dataclass(frozen=True)
class StepPoint:
    """One logged training step. `time_s`, `tokens` and `samples` count from the first point (module docstring)."""

    step: int
    time_s: float | None = None
    tokens: int | None = None
    samples: int | None = None
    loss: float | None = None
    gpus: int | None = None


@dataclass
class ParsedLog:
    format: LogFormat
    points: list[StepPoint]
    problems: list[tuple[int, str]]  # (line number, message), the first MAX_PROBLEMS_KEPT
    problems_not_kept: int = 0
    runtime_s: float | None = None  # the trainer's own "train_runtime", when the log has one


def detect_format(first_lines: Iterable[str]) -> LogFormat:
    """The format of a log from its first non-blank line; ValueError when it is none of them.

    A pretty-printed trainer_state.json opens with a bare "{", which no JSON-lines record does.
    """
    first = next((line.strip().lstrip("\ufeff") for line in first_lines if line.strip()), None)
    if first is None:
        raise ValueError("the log is empty")
    if first == "{" or (first.startswith("{") and '"log_history"' in first):
        return LogFormat.HF_TRAINER_STATE
    if first.startswith("{"):
        return LogFormat.HF_JSON_LINES
    columns = _column_names(next(csv.reader([first])))
    if "step" in columns:
        is_lightning = "epoch" in columns or any(name.startswith(("train_", "val_")) for name in columns)
        return LogFormat.LIGHTNING_CSV if is_lightning else LogFormat.PLAIN_CSV
    raise ValueError(f"not a known training log format: {first[:80]!r}")


def parse(lines: Iterable[str], format: LogFormat | str | None = None) -> ParsedLog:
    """Parse a training log, detecting its format unless `format` is given."""
    lines = iter(lines)
    head = _head(lines)
    log_format = LogFormat(format) if format else detect_format(head)
    lines = itertools.chain(head, lines)
    sink = _Sink()
    if log_format is LogFormat.HF_TRAINER_STATE:
        kinds, rows = _HF_KINDS, _trainer_state_rows(lines, sink)
    elif log_format is LogFormat.HF_JSON_LINES:
        kinds, rows = _HF_KINDS, _json_line_rows(lines, sink)
    else:
        kinds, rows = _csv_rows(lines, sink, lightning=log_format is LogFormat.LIGHTNING_CSV)
    kept = list(_in_order(rows, kinds, sink))
    return ParsedLog(
        format=log_format,
        points=_points(kept, kinds),
        problems=sink.problems,
        problems_not_kept=sink.problems_not_kept,
        runtime_s=sink.runtime_s,
    )


# --- rows: what a source says, before it is turned into points ------------------------------------


class _Count(Enum):
    """How a source counts time, tokens or samples."""

    CUMULATIVE = "cumulative"
    PER_STEP = "per_step"
    DETECT = "detect"


_COUNTED = ("time", "tokens", "samples")


@dataclass(frozen=True)
class _Kinds:
    time: _Count = _Count.CUMULATIVE
    tokens: _Count = _Count.CUMULATIVE
    samples: _Count = _Count.CUMULATIVE


_HF_KINDS = _Kinds()  # the Trainer's only count is num_input_tokens_seen, a running total


@dataclass(frozen=True)
class _Row:
    line: int
    step: int
    loss: float | None = None
    gpus: int | None = None
    time: float | None = None
    tokens: float | None = None
    samples: float | None = None


class _BadLine(Exception):
    """A line to skip, with the reason to report."""


@dataclass
class _Sink:
    problems: list[tuple[int, str]] = field(default_factory=list)
    problems_not_kept: int = 0
    runtime_s: float | None = None

    def report(self, line: int, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append((line, message))
        else:
            self.problems_not_kept += 1


def _head(lines: Iterator[str]) -> list[str]:
    """The lines up to the first non-blank one, byte order mark removed, for detection."""
    head = []
    for line in itertools.islice(lines, MAX_HEAD_LINES):
        head.append(line.lstrip("\ufeff") if not head else line)
        if line.strip():
            break
    return head


def _number(value: object, name: str, *, signed: bool = False) -> float | None:
    """A finite number from a CSV cell or a JSON value; None when empty. Raises _BadLine."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _BadLine(f"{name} is not a number: {value!r:.40}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise _BadLine(f"{name} is not a number: {value!r:.40}") from None
    if not math.isfinite(number):
        raise _BadLine(f"{name} is {number}")
    if number < 0 and not signed:
        raise _BadLine(f"{name} is negative: {number:g}")
    return number


def _whole(value: object, name: str, *, minimum: int) -> int | None:
    number = _number(value, name)
    if number is None:
        return None
    if not number.is_integer():
        raise _BadLine(f"{name} is not a whole number: {number:g}")
    if number < minimum:
        raise _BadLine(f"{name} is {number:g}, below {minimum}")
    return int(number)


def _step(value: object) -> int:
    step = _whole(value, "step", minimum=0)
    if step is None:
        raise _BadLine("no step")
    return step


def _in_order(rows: Iterable[_Row], kinds: _Kinds, sink: _Sink) -> Iterator[_Row]:
    """The rows whose step rises and whose cumulative counts do not fall; the rest are reported."""
    cumulative = [name for name in _COUNTED if getattr(kinds, name) is _Count.CUMULATIVE]
    latest: dict[str, float] = {}  # the step and cumulative counts of the rows kept so far
    for row in rows:
        problem = _out_of_order(row, latest)
        if problem:
            sink.report(row.line, problem)
            continue
        for name in ("step", *cumulative):
            if getattr(row, name) is not None:
                latest[name] = getattr(row, name)
        yield row


def _out_of_order(row: _Row, latest: dict[str, float]) -> str | None:
    if "step" in latest and row.step <= latest["step"]:
        return f"step {row.step} does not follow step {latest['step']}"
    for name, before in latest.items():
        value = getattr(row, name)
        if name != "step" and value is not None and value < before:
            return f"{name} {value:g} is below the previous {before:g}"
    return None


# --- points ----------------------------------------------------------------------------------------


def _points(rows: list[_Row], kinds: _Kinds) -> list[StepPoint]:
    totals = {name: _running_totals(rows, name, getattr(kinds, name)) for name in _COUNTED}
    return [
        StepPoint(
            step=row.step,
            time_s=totals["time"][i],
            tokens=_rounded(totals["tokens"][i]),
            samples=_rounded(totals["samples"][i]),
            loss=row.loss,
            gpus=row.gpus,
        )
        for i, row in enumerate(rows)
    ]


def _rounded(value: float | None) -> int | None:
    return None if value is None else round(value)


def _running_totals(rows: list[_Row], name: str, kind: _Count) -> list[float | None]:
    values = [getattr(row, name) for row in rows]
    if kind is _Count.DETECT:
        kind = _Count.CUMULATIVE if _rises_strictly(values) else _Count.PER_STEP
    if kind is _Count.CUMULATIVE:
        return _since_first(values)
    return _accumulated(values, [row.step for row in rows])


def _rises_strictly(values: list[float | None]) -> bool:
    present = [value for value in values if value is not None]
    return len(present) >= 2 and all(later > earlier for earlier, later in itertools.pairwise(present))


def _since_first(values: list[float | None]) -> list[float | None]:
    first = next((value for value in values if value is not None), None)
    return [None if value is None else value - first for value in values]


def _accumulated(per_step: list[float | None], steps: list[int]) -> list[float | None]:
    totals: list[float | None] = []
    total: float | None = None
    previous_step = 0
    gap = False
    for value, step in zip(per_step, steps, strict=True):
        gap = gap or (value is None and total is not None)
        if value is None or gap:
            totals.append(None)
            continue
        total = 0.0 if total is None else total + value * (step - previous_step)
        previous_step = step
        totals.append(total)
    return totals


# --- Hugging Face ----------------------------------------------------------------------------------


def _hf_row(record: object, line: int, sink: _Sink) -> _Row | None:
    """A training point from one Trainer log dict; None for evaluation and summary events."""
    if not isinstance(record, dict):
        raise _BadLine("not a JSON object")
    if "train_runtime" in record:
        sink.runtime_s = _number(record["train_runtime"], "train_runtime")
        return None
    if "loss" not in record:
        return None
    return _Row(
        line=line,
        step=_step(record.get("step")),
        loss=_number(record["loss"], "loss", signed=True),
        tokens=_number(record.get("num_input_tokens_seen"), "num_input_tokens_seen"),
    )


def _json_line_rows(lines: Iterable[str], sink: _Sink) -> Iterator[_Row]:
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            row = _hf_row(_decode_record(text), number, sink)
        except _BadLine as bad:
            sink.report(number, str(bad))
            continue
        if row is not None:
            yield row


def _decode_record(text: str) -> object:
    if len(text) > MAX_JSON_LINE_CHARS:
        raise _BadLine(f"line is longer than {MAX_JSON_LINE_CHARS} characters")
    if not text.startswith("{"):
        raise _BadLine("not a log record")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    # The Trainer's console callback prints str(dict): single quotes, not JSON.
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise _BadLine("not a JSON or Python dict") from None


_LOG_HISTORY = re.compile(r'"log_history"\s*:\s*\[')
_WHITESPACE = re.compile(r"\s*")


def _trainer_state_rows(lines: Iterable[str], sink: _Sink) -> Iterator[_Row]:
    """The rows of log_history, decoded entry by entry so each keeps its line number."""
    text = _bounded_text(lines)
    start = _LOG_HISTORY.search(text)
    if start is None:
        sink.report(1, "no log_history array")
        return
    decoder = json.JSONDecoder()
    position = start.end()
    line, counted_to = 1, 0
    while True:
        position = _WHITESPACE.match(text, position).end()
        line, counted_to = line + text.count("\n", counted_to, position), position
        if text.startswith("]", position):
            return
        try:
            record, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            sink.report(error.lineno, f"log_history stops: {error.msg}")
            return
        except RecursionError:
            sink.report(line, "log_history stops: an entry is nested too deeply")
            return
        try:
            row = _hf_row(record, line, sink)
        except _BadLine as bad:
            sink.report(line, str(bad))
            row = None
        if row is not None:
            yield row
        position = _WHITESPACE.match(text, position).end()
        if text.startswith(",", position):
            position += 1


def _bounded_text(lines: Iterable[str]) -> str:
    parts, size = [], 0
    for line in lines:
        line = line.rstrip("\r\n")
        size += len(line) + 1
        if size > MAX_TRAINER_STATE_CHARS:
            raise ValueError(
                f"trainer_state.json is larger than {MAX_TRAINER_STATE_CHARS // (1024 * 1024)} MiB; "
                "parse the JSON-lines log of the run instead"
            )
        parts.append(line)
    return "\n".join(parts)


# --- CSV (Lightning and plain) ---------------------------------------------------------------------

# Column names by meaning; the first one present in the header is used.
_STEP_COLUMNS = ("step", "global_step")
_LOSS_COLUMNS = ("train_loss_step", "train_loss", "loss")
_GPU_COLUMNS = ("gpus", "num_gpus", "world_size")
_COUNTED_COLUMNS = {
    "time": {
        "time": _Count.CUMULATIVE,
        "time_s": _Count.CUMULATIVE,
        "elapsed_s": _Count.CUMULATIVE,
        "train_step_time": _Count.PER_STEP,
        "step_time": _Count.PER_STEP,
        "step_time_s": _Count.PER_STEP,
    },
    "tokens": {
        "tokens": _Count.DETECT,
        "num_input_tokens_seen": _Count.CUMULATIVE,
        "tokens_seen": _Count.CUMULATIVE,
        "total_tokens": _Count.CUMULATIVE,
        "tokens_per_step": _Count.PER_STEP,
    },
    "samples": {
        "samples": _Count.DETECT,
        "samples_seen": _Count.CUMULATIVE,
        "total_samples": _Count.CUMULATIVE,
        "samples_per_step": _Count.PER_STEP,
    },
}


def _column_names(header: list[str]) -> list[str]:
    return [name.strip().lower() for name in header]


@dataclass(frozen=True)
class _CsvLayout:
    """Which header column holds each value (None: absent) and how the counted ones count."""

    columns: list[str]
    step: int | None
    loss: int | None
    gpus: int | None
    counted: dict[str, int | None]
    kinds: _Kinds

    @classmethod
    def of(cls, columns: list[str]) -> _CsvLayout:
        counted, kinds = {}, {}
        for name, candidates in _COUNTED_COLUMNS.items():
            column = next((column for column in candidates if column in columns), None)
            counted[name] = None if column is None else columns.index(column)
            kinds[name] = _Count.CUMULATIVE if column is None else candidates[column]
        return cls(
            columns=columns,
            step=_first_index(columns, _STEP_COLUMNS),
            loss=_first_index(columns, _LOSS_COLUMNS),
            gpus=_first_index(columns, _GPU_COLUMNS),
            counted=counted,
            kinds=_Kinds(**kinds),
        )

    def training_cells(self, cells: list[str]) -> list[str]:
        indexes = [self.loss, *self.counted.values()]
        return [cells[index] for index in indexes if index is not None and cells[index].strip()]

    def cell(self, cells: list[str], index: int | None) -> tuple[str | None, str]:
        """The cell's text (None for an absent column) and its column's name, for messages."""
        return (None, "") if index is None else (cells[index].strip(), self.columns[index])


def _first_index(columns: list[str], candidates: tuple[str, ...]) -> int | None:
    return next((columns.index(name) for name in candidates if name in columns), None)


def _csv_rows(lines: Iterable[str], sink: _Sink, *, lightning: bool) -> tuple[_Kinds, Iterator[_Row]]:
    records = _csv_records(csv.reader(lines), sink)
    header = next((cells for _, cells in records if cells), None)
    layout = _CsvLayout.of(_column_names(header or []))
    return layout.kinds, _csv_data_rows(records, layout, sink, lightning=lightning)


def _csv_data_rows(
    records: Iterator[tuple[int, list[str]]], layout: _CsvLayout, sink: _Sink, *, lightning: bool
) -> Iterator[_Row]:
    for line, cells in records:
        if not cells:
            continue
        if len(cells) != len(layout.columns):
            sink.report(line, f"{len(cells)} cells where the header has {len(layout.columns)}")
            continue
        if lightning and not layout.training_cells(cells):
            continue  # a validation or epoch-end row
        try:
            yield _csv_row(cells, line, layout)
        except _BadLine as bad:
            sink.report(line, str(bad))


def _csv_row(cells: list[str], line: int, layout: _CsvLayout) -> _Row:
    def number(index: int | None, *, signed: bool = False) -> float | None:
        return _number(*layout.cell(cells, index), signed=signed)

    return _Row(
        line=line,
        step=_step(layout.cell(cells, layout.step)[0]),
        loss=number(layout.loss, signed=True),
        gpus=_whole(*layout.cell(cells, layout.gpus), minimum=1),
        **{name: number(index) for name, index in layout.counted.items()},
    )


def _csv_records(reader: Iterator[list[str]], sink: _Sink) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each record; a malformed one (an over-long field) is reported."""
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            sink.report(reader.line_num, f"not CSV: {error}")
            continue
        yield reader.line_num, cells
