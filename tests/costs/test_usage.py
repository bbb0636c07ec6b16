"""Usage-log analysis: parsing with bad rows, concentration, the per-minute peak, replay profiles, bounded memory."""

import io
import json
import os
import random
import subprocess
import sys
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest

from apps.costs.pricing import ReplicaSpec, Traffic, project_monthly
from apps.costs.usage import (
    IDLE_RATE_PER_S,
    analyze_usage,
    busiest_window,
    gini,
    probe_profile_from_curve,
    top_share,
)
from apps.probes.engine.profiles import Stage


def _csv(text: str):
    return io.StringIO(text, newline="")


CSV_WITH_BAD_ROWS = """timestamp,user,tenant,input_tokens,output_tokens
2026-11-01T10:00:05Z,alice,acme,100,50
2026-11-01T10:00:40.5Z,alice,acme,100,50
not-a-time,bob,acme,1,1
2026-11-01T10:01:00+02:00,bob,globex,10,5
2026-11-01T10:02:00Z,carol,globex,ten,5
2026-11-01T10:02:00Z,,globex,1,5
2026-11-01T10:02:00Z,dave

1793527330,carol,,7,3
1793527330000,carol,,7,3
2026-11-01T10:03:00Z,erin,globex,-1,3
2026-11-01T10:03:30,erin,globex,12.0,3
"""


def test_csv_bad_rows_are_reported_with_line_numbers_and_the_rest_is_counted():
    a = analyze_usage(_csv(CSV_WITH_BAD_ROWS))
    assert a.rows == 5
    assert a.bad_rows.count == 6
    by_line = {e["line"]: e["reason"] for e in a.bad_rows.examples}
    assert set(by_line) == {4, 6, 7, 8, 11, 12}
    assert "bad timestamp" in by_line[4]
    assert "bad token count" in by_line[6]
    assert by_line[7] == "missing user"
    assert "field(s)" in by_line[8]
    assert "milliseconds" in by_line[11]
    assert "bad token count" in by_line[12]  # negative
    assert a.users == 4 and a.tenants == 2
    assert a.requests == 5
    assert a.input_tokens == 100 + 100 + 10 + 7 + 12
    assert a.output_tokens == 50 + 50 + 5 + 3 + 3


def test_bad_row_examples_are_capped_but_all_are_counted():
    text = "timestamp,user,input_tokens,output_tokens\n" + "x,u,1,1\n" * 50 + "0,u,1,1\n"
    a = analyze_usage(_csv(text), max_bad_examples=3)
    assert a.bad_rows.count == 50
    assert [e["line"] for e in a.bad_rows.examples] == [2, 3, 4]
    assert a.rows == 1


def test_timestamps_with_an_offset_are_converted_and_naive_ones_are_utc():
    text = (
        "timestamp,user,input_tokens,output_tokens\n"
        "2026-11-01T12:00:30+02:00,a,1,1\n"  # 10:00 UTC
        "2026-11-01T10:00:59,b,1,1\n"  # no offset: UTC
        f"{int(datetime(2026, 11, 1, 10, 0, 1, tzinfo=UTC).timestamp())},c,1,1\n"
    )
    a = analyze_usage(_csv(text))
    assert a.per_minute["span_minutes"] == 1
    assert a.per_minute["peak_requests_per_minute"] == 3
    assert a.per_minute["peak_requests_minute"] == "2026-11-01T10:00:00Z"


def test_a_byte_order_mark_and_numeric_ids_are_accepted():
    a = analyze_usage(_csv("\ufefftimestamp,user,input_tokens,output_tokens\n0,a,1,2\n"))
    assert a.rows == 1 and a.bad_rows.count == 0
    b = analyze_usage(
        io.StringIO('\ufeff{"timestamp": 0, "user": 7, "tenant": 3, "input_tokens": 1, "output_tokens": 2}\n')
    )
    assert b.rows == 1 and b.top_users[0]["user"] == "7" and b.top_tenants[0]["tenant"] == "3"


def test_a_header_without_the_needed_columns_is_one_bad_row_not_an_exception():
    a = analyze_usage(_csv("when,who,input_tokens\n2026-11-01T10:00:00Z,a,1\n"))
    assert a.rows == 0
    assert a.bad_rows.count == 1 and a.bad_rows.examples[0]["line"] == 1
    assert "timestamp" in a.bad_rows.examples[0]["reason"]


def test_jsonl_gives_the_same_answer_as_csv_and_reports_its_bad_lines():
    csv_text = (
        "timestamp,user_id,tenant_id,input_tokens,output_tokens\n"
        "2026-11-01T10:00:05Z,alice,acme,100,50\n"
        "2026-11-01T10:00:06Z,bob,acme,200,70\n"
        "2026-11-01T10:05:00Z,alice,globex,300,90\n"
    )
    jsonl_lines = [
        {
            "timestamp": "2026-11-01T10:00:05Z",
            "user_id": "alice",
            "tenant_id": "acme",
            "input_tokens": 100,
            "output_tokens": 50,
        },
        {
            "timestamp": datetime(2026, 11, 1, 10, 0, 6, tzinfo=UTC).timestamp(),
            "user_id": "bob",
            "tenant_id": "acme",
            "input_tokens": 200,
            "output_tokens": 70,
        },
        {
            "timestamp": "2026-11-01T10:05:00Z",
            "user": "alice",
            "tenant": "globex",
            "input_tokens": 300,
            "output_tokens": 90,
        },
    ]
    jsonl = "\n".join(json.dumps(o) for o in jsonl_lines[:2]) + "\n{not json\n\n[1, 2]\n"
    jsonl += json.dumps(jsonl_lines[2]) + "\n" + json.dumps({"timestamp": True, "user": "x"}) + "\n"
    from_csv = analyze_usage(_csv(csv_text), usd_per_request=0.01)
    from_jsonl = analyze_usage(io.StringIO(jsonl), usd_per_request=0.01)
    assert [(e["line"], e["reason"]) for e in from_jsonl.bad_rows.examples] == [
        (3, "not valid JSON"),
        (5, "not a JSON object"),
        (7, "bad timestamp 'True'"),
    ]
    for key in (
        "rows",
        "users",
        "tenants",
        "requests",
        "input_tokens",
        "output_tokens",
        "top_users",
        "top_tenants",
        "concentration",
        "per_minute",
        "burstiness",
        "cost",
    ):
        assert getattr(from_jsonl, key) == getattr(from_csv, key), key


def test_the_format_is_guessed_from_the_file_name(tmp_path):
    path = tmp_path / "usage.jsonl"
    path.write_text('{"timestamp": 0, "user": "a", "input_tokens": 1, "output_tokens": 2}\n')
    assert analyze_usage(path).output_tokens == 2
    path = tmp_path / "usage.csv"
    path.write_text("timestamp,user,input_tokens,output_tokens\n0,a,1,2\n")
    assert analyze_usage(str(path)).output_tokens == 2


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 1, 1, 1], 0.0),
        ([0, 0, 0, 10], 0.75),  # one of n holds everything: (n − 1) / n
        ([1, 2, 3, 4], 0.25),  # 2·(1·1 + 2·2 + 3·3 + 4·4) / (4·10) − 5/4
        ([], 0.0),
    ],
)
def test_gini_on_known_distributions(values, expected):
    assert gini(values) == pytest.approx(expected)


def test_top_share_takes_at_least_one_holder():
    assert top_share([10] + [1] * 99) == pytest.approx(10 / 109)  # 1 % of 100 is one user
    assert top_share([5, 5]) == pytest.approx(0.5)


def _log(rows) -> io.StringIO:
    lines = ["timestamp,user,tenant,input_tokens,output_tokens"]
    lines += [f"{ts},{user},{tenant},{tin},{tout}" for ts, user, tenant, tin, tout in rows]
    return _csv("\n".join(lines) + "\n")


T0 = int(datetime(2026, 11, 2, 9, 0, tzinfo=UTC).timestamp())


def test_concentration_of_two_heavy_users_among_two_hundred():
    rows = [(T0 + i, f"heavy{i % 2}", "t", 10, 10) for i in range(100)]
    rows += [(T0 + 200 + i, f"light{i}", "t", 10, 10) for i in range(198)]
    a = analyze_usage(_log(rows))
    assert a.users == 200
    assert a.concentration["top_1pct_users"] == 2
    assert a.concentration["top_1pct_request_share"] == pytest.approx(100 / 298)
    assert a.concentration["gini_requests"] == pytest.approx(gini([50, 50] + [1] * 198))
    assert [u["user"] for u in a.top_users[:2]] == ["heavy0", "heavy1"]


def test_one_user_asking_50_in_a_minute_needs_more_capacity_than_500_users_asking_once_spread_out():
    # A replica keeps its SLOs up to 0.1 requests/s (6 a minute).
    burst = analyze_usage(_log((T0 + i, "eager", "t", 500, 200) for i in range(50)), replica_goodput_requests_per_s=0.1)
    spread = analyze_usage(
        _log((T0 + 60 * i, f"user{i}", "t", 500, 200) for i in range(500)), replica_goodput_requests_per_s=0.1
    )
    # Ten times the volume...
    assert spread.requests == 10 * burst.requests
    assert spread.output_tokens == 10 * burst.output_tokens
    # ...but the busiest minute is what capacity is sized for: 50 a minute is 0.83/s, 9 replicas;
    # one a minute is 0.017/s, one replica.
    assert burst.per_minute["peak_requests_per_minute"] == 50
    assert spread.per_minute["peak_requests_per_minute"] == 1
    assert burst.capacity["replicas_for_peak_minute"] == 9
    assert spread.capacity["replicas_for_peak_minute"] == 1
    assert burst.burstiness["max_requests_by_one_user_in_a_minute"] == 50
    assert burst.burstiness["peak_minute_top_user_share"] == 1.0
    assert spread.burstiness["max_requests_by_one_user_in_a_minute"] == 1
    assert spread.per_minute["peak_to_average_requests"] == 1.0
    # The same holds in the monthly projection built from each log's per-minute curve.
    spec = ReplicaSpec(usd_per_gpu_hour=1.0, gpus_per_replica=1, goodput_requests_per_s=0.1)
    shape = Traffic(requests_per_day=0, input_tokens_per_request=500, output_tokens_per_request=200)
    burst_cost = project_monthly(spec=spec, traffic=shape, demand=burst.demand_curve()).always_on_usd_per_month
    spread_cost = project_monthly(spec=spec, traffic=shape, demand=spread.demand_curve()).always_on_usd_per_month
    assert burst_cost == 9 * spread_cost


def test_burstiness_names_the_busiest_user_and_their_share_of_the_peak_minute():
    rows = [(T0 + i % 60, "bursty", "a", 1, 1) for i in range(30)]
    rows += [(T0 + i, f"calm{i}", "b", 1, 1) for i in range(10)]
    rows += [(T0 + 600 + i, f"calm{i}", "b", 1, 1) for i in range(10)]
    a = analyze_usage(_log(sorted(rows)))
    b = a.burstiness
    assert b["busiest_user"] == "bursty" and b["max_requests_by_one_user_in_a_minute"] == 30
    assert b["peak_minute_distinct_users"] == 11
    assert b["peak_minute_top_user_share"] == pytest.approx(30 / 40)
    assert b["peak_minute_top10_users_share"] == pytest.approx(39 / 40)
    assert a.per_minute["span_minutes"] == 11
    assert a.per_minute["peak_to_average_requests"] == pytest.approx(40 / (50 / 11))


def test_rows_out_of_time_order_are_still_counted():
    rows = [(T0 + 60 * m, "u", "t", 1, 1) for m in range(20)] + [(T0, "u", "t", 1, 1), (T0 + 1, "v", "t", 1, 1)]
    a = analyze_usage(_log(rows), reorder_window_minutes=5)
    assert a.requests == 22
    assert a.late_rows == 2
    assert a.per_minute["peak_requests_per_minute"] == 3


def test_cost_is_attributed_per_user_and_per_tenant():
    rows = [
        (T0, "alice", "acme", 1_000_000, 0),
        (T0 + 1, "alice", "acme", 0, 1_000_000),
        (T0 + 2, "bob", "globex", 500_000, 500_000),
        (T0 + 3, "carol", "", 0, 0),
    ]
    a = analyze_usage(_log(rows), usd_per_request=0.01, usd_per_mtok_input=1.0, usd_per_mtok_output=4.0)
    by_user = {u: usd for u, *_, usd in a.costs_by_user()}
    # alice: 2 requests × $0.01 + 1M input × $1/1M + 1M output × $4/1M.
    assert by_user == pytest.approx({"alice": 5.02, "bob": 2.51, "carol": 0.01})
    by_tenant = {t: usd for t, *_, usd in a.costs_by_tenant()}
    assert by_tenant == pytest.approx({"acme": 5.02, "globex": 2.51})
    assert a.cost["total_usd"] == pytest.approx(7.54)
    assert a.cost["untenanted_usd"] == pytest.approx(0.01)
    assert a.top_users[0]["user"] == "alice" and a.top_users[0]["usd"] == pytest.approx(5.02)
    assert a.top_tenants[0] == {
        "tenant": "acme",
        "requests": 2,
        "input_tokens": 1_000_000,
        "output_tokens": 1_000_000,
        "usd": pytest.approx(5.02),
    }


def test_probe_profile_replays_the_rate_of_each_minute_compressed_in_time():
    profile = probe_profile_from_curve([60, 60, 0, 120, 30], scale=2, seconds_per_minute=6)
    assert profile == {
        "stages": [
            {"kind": "poisson", "rate": 2.0, "duration": 12.0, "name": "usage m0"},
            {"kind": "poisson", "rate": IDLE_RATE_PER_S, "duration": 6.0, "name": "usage m2"},
            {"kind": "poisson", "rate": 4.0, "duration": 6.0, "name": "usage m3"},
            {"kind": "poisson", "rate": 1.0, "duration": 6.0, "name": "usage m4"},
        ]
    }
    # Every stage is one the probe engine accepts.
    for raw in profile["stages"]:
        Stage.from_dict(raw)


def test_probe_profile_merges_minutes_keeping_the_peak():
    profile = probe_profile_from_curve([6, 60, 12, 12], seconds_per_minute=5, minutes_per_stage=2)
    assert [(s["rate"], s["duration"]) for s in profile["stages"]] == [(1.0, 10.0), (0.2, 10.0)]


def test_probe_profile_from_a_usage_log():
    rows = [(T0 + i, "a", "t", 1, 1) for i in range(30)] + [(T0 + 120, "b", "t", 1, 1)]
    a = analyze_usage(_log(rows))
    assert a.requests_per_minute() == [30, 0, 1]
    stages = probe_profile_from_curve(a.requests_per_minute(), seconds_per_minute=10)["stages"]
    assert [s["rate"] for s in stages] == [0.5, IDLE_RATE_PER_S, round(1 / 60, 6)]


@pytest.mark.parametrize(
    "curve, minutes, expected",
    [
        ([0, 1, 5, 5, 0, 9, 0], 2, (4, [0, 9])),  # the busiest minute, though 5+5 is more in all
        ([4, 9, 1, 9, 5], 2, (0, [4, 9])),  # around the first busiest minute, the stretch with more
        ([3, 3, 3], 2, (0, [3, 3])),  # ties: the earliest
        ([1, 2], 5, (0, [1, 2])),  # shorter than the window: all of it
        ([], 60, (0, [])),
        ([0] * 100 + [7] + [0] * 100, 60, (41, [0] * 59 + [7])),
    ],  # the first window that holds the peak
)
def test_the_replayed_window_holds_the_busiest_minute_and_the_most_requests_around_it(curve, minutes, expected):
    assert busiest_window(curve, minutes) == expected


def test_the_busiest_hour_of_a_log_says_when_it_starts():
    rows = [(T0 + 60 * m, "a", "t", 1, 1) for m in range(90)] + [(T0 + 60 * 70 + i, "b", "t", 1, 1) for i in range(30)]
    hour = analyze_usage(_log(rows)).busiest_hour()
    assert len(hour["requests_per_minute"]) == 60 and sum(hour["requests_per_minute"]) == 90
    assert hour["requests_per_minute"][-1] == 31 and hour["from"] == "2026-11-02T09:11:00Z"
    with pytest.raises(ValueError):
        busiest_window([1], 0)


def _write_log(path, rows: int, *, users: int, rows_per_minute: int = 10_000) -> None:
    """A log written block by block, as the real ones are: never all in memory."""
    rng = random.Random(6)
    with open(path, "w", newline="") as out:
        out.write("timestamp,user,tenant,input_tokens,output_tokens\n")
        for start in range(0, rows, rows_per_minute):
            out.write(
                "".join(
                    f"{T0 + (start + i) * 60 // rows_per_minute},u{(start + i) % users},t{i % 7},"
                    f"{rng.randrange(900)},{rng.randrange(300)}\n"
                    for i in range(min(rows_per_minute, rows - start))
                )
            )


_CHILD = """
import json, resource, sys
from apps.costs.usage import analyze_usage
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
a = analyze_usage(sys.argv[1], replica_goodput_requests_per_s=2.0)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": a.rows, "users": a.users, "peak": a.per_minute["peak_requests_per_minute"],
                  "growth_kb": after - before}))
"""


def test_a_million_rows_are_analysed_in_bounded_memory(tmp_path):
    # Measured in a child process (max RSS, Linux kB): tracemalloc slows this loop ~20×, and
    # this process's own high-water mark would include whatever ran before.
    path = tmp_path / "usage.csv"
    _write_log(path, 1_000_000, users=5000)
    file_mb = path.stat().st_size / 1e6
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)], env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout)
    assert result["rows"] == 1_000_000 and result["users"] == 5000 and result["peak"] == 10_000
    growth_mb = result["growth_kb"] / 1024
    # Keeping the rows would take well over 100 MB; the per-user and per-minute tables take a few.
    assert growth_mb < 50, f"max RSS grew {growth_mb:.0f} MB analysing a {file_mb:.0f} MB file"


def test_traced_memory_does_not_grow_with_the_number_of_rows(tmp_path):
    peaks = {}
    for rows in (10_000, 50_000):
        path = tmp_path / f"usage-{rows}.csv"
        _write_log(path, rows, users=500, rows_per_minute=1000)
        tracemalloc.start()
        try:
            a = analyze_usage(path)
            peaks[rows] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert a.rows == rows and a.users == 500
    # Five times the rows, the same users: the same memory, give or take the per-minute table.
    assert peaks[50_000] < peaks[10_000] * 1.3 + 100_000, peaks
    assert peaks[50_000] < 5e6, peaks
