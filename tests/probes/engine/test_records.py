"""Records: exact merging across processes, compact storage, and the ITL log histogram."""

import math
import random

import pytest

from apps.probes.engine.records import (
    _COLUMNS,
    ERROR_CLASSES,
    OK,
    TIMEOUT,
    TOKENS_COUNTED,
    TOKENS_USAGE,
    LogHistogram,
    Records,
)
from apps.probes.engine.stats import SLO, Window, histogram_distribution, summarize

NAN = math.nan
WINDOWS = [Window(0, "warm a", 2.0, 12.0), Window(1, "b", 22.0, 32.0)]
SLO_ALL = SLO(ttft_p95_ms=300, tpot_p95_ms=40, e2e_p99_ms=6000, error_rate=0.05, min_output_tps=10)


def simulated_requests(seed: int, n: int) -> list[tuple[tuple, list[float]]]:
    """(append arguments, inter-token gaps) of `n` plausible requests over two stages."""
    rng = random.Random(seed)
    out = []
    for seq in range(n):
        stage = rng.choice((0, 1))
        intended = stage * 20 + rng.uniform(0.0, 14.0)
        sent = intended + rng.expovariate(400)
        error = OK if rng.random() < 0.9 else rng.randrange(1, len(ERROR_CLASSES))
        gaps: list[float] = []
        if error == OK:
            n_out = rng.randint(1, 120)
            first = sent + rng.uniform(0.05, 0.5)
            gaps = [rng.uniform(0.005, 0.06) for _ in range(n_out - 1)]
            last = first + sum(gaps)
        else:
            n_out, first, last = 0, NAN, NAN
        source = TOKENS_COUNTED if rng.random() < 0.2 else TOKENS_USAGE
        args = (intended, sent, first, last, rng.randint(10, 900), n_out, n_out, error, source, stage, seq)
        out.append((args, gaps))
    return out


def build(requests) -> Records:
    rec = Records()
    for args, gaps in requests:
        rec.append(*args)
        if args[7] == OK and gaps:
            hist = rec.itl_for(args[9])
            for gap in gaps:
                hist.add(gap)
    return rec


def columns(rec: Records) -> dict:
    return {name: (getattr(rec, name).typecode, getattr(rec, name).tobytes()) for name, _ in _COLUMNS}


def histograms(rec: Records) -> dict:
    return {stage: list(h.counts) for stage, h in rec.itl.items()}


# --- merging -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_two_processes_records_merged_summarize_exactly_like_one_process(seed):
    requests = simulated_requests(seed, 1500)
    rng = random.Random(seed + 100)
    part_a, part_b = [], []
    for r in requests:
        (part_a if rng.random() < 0.5 else part_b).append(r)
    merged = build(part_a)
    merged.extend(build(part_b))
    whole = build(requests)
    assert len(merged) == len(whole) == 1500
    expected = summarize(whole, WINDOWS, SLO_ALL, loop_lag_ms=[0.5, 1.0])
    assert summarize(merged, WINDOWS, SLO_ALL, loop_lag_ms=[0.5, 1.0]) == expected
    assert expected["overall"]["itl_ms"]["n"] > 1000  # the ITL histogram (and its p99.9) is part of the comparison
    assert "p99.9" in expected["overall"]["itl_ms"]


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)], ids=["0-1-2", "2-1-0", "1-2-0"])
def test_interleaved_shards_merged_in_any_order_summarize_like_the_whole(order):
    requests = simulated_requests(7, 900)
    shards = [build(requests[i::3]) for i in range(3)]
    merged = Records()
    for i in order:
        merged.extend(shards[i])
    assert summarize(merged, WINDOWS, SLO_ALL) == summarize(build(requests), WINDOWS, SLO_ALL)


def test_merged_itl_histograms_have_exactly_the_summed_counts():
    requests = simulated_requests(11, 600)
    a, b = build(requests[:300]), build(requests[300:])
    whole = build(requests)
    a.extend(b)
    assert histograms(a) == histograms(whole)
    for stage in whole.itl:
        for q in (50, 90, 95, 99):
            assert a.itl[stage].percentile(q) == whole.itl[stage].percentile(q)


def test_extend_with_an_empty_records_changes_nothing():
    rec = build(simulated_requests(5, 50))
    before_cols, before_hist = columns(rec), histograms(rec)
    rec.extend(Records())
    assert columns(rec) == before_cols
    assert histograms(rec) == before_hist


def test_extend_adds_a_stage_histogram_the_receiver_did_not_have():
    a, b = Records(), Records()
    b.append(0.0, 0.0, 0.1, 0.2, 1, 2, 2, OK, TOKENS_USAGE, 3, 0)
    b.itl_for(3).add(0.1)
    a.extend(b)
    assert set(a.itl) == {3}
    assert a.itl[3].total == 1
    assert a.itl[3] is not b.itl[3]  # merging copies counts, it does not alias the other's histogram


def test_row_returns_every_column_of_one_request():
    rec = Records()
    rec.append(1.0, 1.5, 2.0, 3.0, 10, 20, 15, OK, TOKENS_COUNTED, 2, 7, 200)
    assert rec.row(0) == {
        "intended": 1.0,
        "sent": 1.5,
        "first": 2.0,
        "last": 3.0,
        "input_tokens": 10,
        "output_tokens": 20,
        "token_events": 15,
        "error": OK,
        "token_source": TOKENS_COUNTED,
        "stage": 2,
        "status": 200,
        "seq": 7,
    }


# --- storage -------------------------------------------------------------------------------------


def test_to_bytes_and_from_bytes_round_trip_every_column_and_histogram():
    rec = build(simulated_requests(21, 700))
    assert any(math.isnan(v) for v in rec.first)  # NaN "did not happen" must survive too
    back = Records.from_bytes(rec.to_bytes())
    assert len(back) == len(rec)
    assert columns(back) == columns(rec)
    assert histograms(back) == histograms(rec)
    assert summarize(back, WINDOWS, SLO_ALL) == summarize(rec, WINDOWS, SLO_ALL)


def test_an_empty_records_round_trips():
    back = Records.from_bytes(Records().to_bytes())
    assert len(back) == 0
    assert back.itl == {}
    assert columns(back) == columns(Records())


def test_a_round_trip_keeps_extreme_column_values_and_histogram_counts():
    rec = Records()
    rec.append(NAN, math.inf, -0.0, 1e-300, 2**32 - 1, 0, 2**32 - 1, len(ERROR_CLASSES) - 1, 1, 2**16 - 1, 2**32 - 1)
    hist = rec.itl_for(2**16 - 1)
    hist.counts[0] = 2**40
    hist.counts[LogHistogram.SIZE - 1] = 3
    back = Records.from_bytes(rec.to_bytes())
    assert columns(back) == columns(rec)
    assert histograms(back) == histograms(rec)


def test_storage_costs_at_most_54_bytes_per_record():
    rec = build(simulated_requests(3, 1000))
    assert rec.nbytes / len(rec) <= 54  # 52 + the HTTP status, kept for the error details
    assert len(rec.to_bytes()) < rec.nbytes  # and compresses


# --- LogHistogram --------------------------------------------------------------------------------


def nearest_rank(sorted_values: list[float], q: int) -> float:
    n = len(sorted_values)
    rank = max(1, -(-q * n // 100))  # ceil(q * n / 100) in integers
    return sorted_values[rank - 1]


@pytest.mark.parametrize(
    "values",
    [
        [i / 1000 for i in range(1, 2001)],  # 1 ms .. 2 s, evenly
        [1e-5 * 1.05**k for k in range(300)],  # 10 µs .. ~22 s, spread over orders of magnitude
        [0.02] * 500 + [0.05] * 300 + [0.3] * 150 + [2.5] * 50,  # a few repeated values
    ],
    ids=["linear", "geometric", "clustered"],
)
def test_log_histogram_percentiles_are_within_one_percent_of_the_exact_value(values):
    hist = LogHistogram()
    for v in values:
        hist.add(v)
    values = sorted(values)
    assert hist.total == len(values)
    for q in (1, 5, 10, 25, 50, 75, 90, 95, 99, 100):
        exact = nearest_rank(values, q)
        assert abs(hist.percentile(q) - exact) / exact <= 0.01, (q, hist.percentile(q), exact)


def test_histogram_distribution_reports_milliseconds():
    hist = LogHistogram()
    for _ in range(10):
        hist.add(0.025)
    dist = histogram_distribution(hist)
    assert dist["n"] == 10
    assert dist["p50"] == pytest.approx(25.0, rel=0.01)
    assert "p99.9" not in dist


def test_nan_is_ignored_by_log_histogram_add():
    hist = LogHistogram()
    hist.add(NAN)
    assert hist.total == 0
    assert math.isnan(hist.percentile(50))
    hist.add(0.01)
    hist.add(NAN)
    assert hist.total == 1


def test_values_at_or_below_one_microsecond_land_in_the_first_bucket():
    hist = LogHistogram()
    for v in (0.0, -1.0, 1e-9, 1e-6):
        hist.add(v)
    assert hist.counts[0] == 4
    assert hist.percentile(100) == LogHistogram.MIN


def test_values_beyond_the_last_bucket_are_clamped_not_lost():
    hist = LogHistogram()
    hist.add(1e9)
    assert hist.total == 1
    assert hist.counts[LogHistogram.SIZE - 1] == 1


def test_merging_histograms_equals_adding_all_values_to_one():
    rng = random.Random(4)
    values = [rng.lognormvariate(-4, 1) for _ in range(5000)]
    a, b, whole = LogHistogram(), LogHistogram(), LogHistogram()
    for i, v in enumerate(values):
        (a if i % 2 else b).add(v)
        whole.add(v)
    a.merge(b)
    assert list(a.counts) == list(whole.counts)


def test_log_histogram_p99_9_of_a_thousand_values_is_not_the_single_outlier():
    hist = LogHistogram()
    for _ in range(999):
        hist.add(0.010)
    hist.add(1.0)
    # nearest rank 999 of 1000 is 10 ms; numpy-style interpolation would give 10.99 ms.
    assert hist.percentile(99.9) == pytest.approx(0.010, rel=0.01)


def test_split_parts_one_stage_from_the_rest_with_its_histogram_and_loses_no_row():
    requests = simulated_requests(4, 400)
    rec = build(requests)
    rest, chosen = rec.split(1)
    assert len(rest) + len(chosen) == len(rec) and set(chosen.stage) == {1} and set(rest.stage) == {0}
    assert list(chosen.itl) == [1] and list(rest.itl) == [0]
    assert sorted(rest.seq.tolist() + chosen.seq.tolist()) == list(range(400))
    only_stage_1 = build([r for r in requests if r[0][9] == 1])
    assert columns(chosen) == columns(only_stage_1) and histograms(chosen) == histograms(only_stage_1)
    nothing, everything = rec.split(0xFFFF)[1], rec.split(0xFFFF)[0]
    assert len(nothing) == 0 and columns(everything) == columns(rec)


def test_a_blob_stored_before_statuses_were_kept_still_reads_with_status_zero():
    import struct
    import zlib
    from array import array

    # The layout of the first storage format: no head, no status column, no samples.
    columns = [
        ("d", [0.5]),
        ("d", [0.6]),
        ("d", [0.7]),
        ("d", [0.9]),
        ("I", [12]),
        ("I", [3]),
        ("I", [3]),
        ("B", [OK]),
        ("B", [TOKENS_USAGE]),
        ("H", [0]),
        ("I", [41]),
    ]
    raw = struct.pack("<II", 1, 0) + b"".join(array(code, values).tobytes() for code, values in columns)
    rec = Records.from_bytes(zlib.compress(raw))
    assert rec.row(0)["seq"] == 41
    assert rec.row(0)["output_tokens"] == 3
    assert rec.row(0)["status"] == 0
    assert rec.samples == {}


def test_error_samples_are_kept_distinct_bounded_and_survive_storage_and_merging():
    from apps.probes.engine.records import HTTP_4XX, MAX_SAMPLE_CHARS, MAX_SAMPLES

    a, b = Records(), Records()
    for i in range(5):
        a.add_sample(HTTP_4XX, 400, f"body {i}")
    a.add_sample(HTTP_4XX, 400, "body 0")
    assert [s["body"] for s in a.samples[HTTP_4XX]] == ["body 0", "body 1", "body 2"]
    b.add_sample(HTTP_4XX, 422, "x" * 10_000)
    b.add_sample(TIMEOUT, 0, "no answer")
    stored = Records.from_bytes(b.to_bytes())
    assert stored.samples[TIMEOUT] == [{"status": None, "body": "no answer"}]
    assert len(stored.samples[HTTP_4XX][0]["body"]) == MAX_SAMPLE_CHARS
    merged = Records()
    merged.extend(stored)
    merged.extend(Records.from_bytes(a.to_bytes()))
    assert len(merged.samples[HTTP_4XX]) == MAX_SAMPLES
    assert merged.samples[TIMEOUT][0]["body"] == "no answer"
