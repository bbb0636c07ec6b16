"""A usage log cannot exhaust a worker: a sparse time axis, caps on bytes, rows, distinct keys and
line length, time limits, a heartbeat with a reaper, reclaiming after a dead worker, and storage
limits on uploads. Every cap is named in the error the user sees."""

import gzip
import io
import json
import os
import random
import subprocess
import sys
import tracemalloc
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.costs import services, usage
from apps.costs.models import UsageLog
from apps.costs.usage import Limits, UsageLimitExceeded, analyze_usage, busiest_window
from tests.conftest import api_client_for

HEADER = "timestamp,user,tenant,input_tokens,output_tokens\n"
ROOT = Path(__file__).resolve().parents[2]


def _csv(text: str):
    return io.StringIO(text, newline="")


def _rows(n: int, *, start: int = 1_790_000_000, step_s: int = 1, users: int = 10) -> str:
    return HEADER + "".join(f"{start + i * step_s},u{i % users},t,10,5\n" for i in range(n))


def _gzip_bomb(expanded_bytes: int) -> bytes:
    """A gzip of one valid row repeated: a few kilobytes per ten megabytes once expanded."""
    row = b"1790000000,a,t,1,1\n"
    chunk = row * (65536 // len(row))
    out = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip header and trailer
    parts = [out.compress(HEADER.encode())]
    for _ in range(expanded_bytes // len(chunk)):
        parts.append(out.compress(chunk))
    parts.append(out.flush())
    return b"".join(parts)


# --- the time axis ---------------------------------------------------------------------------------

# In a child process with its address space capped at 1 GB: without a sparse axis the analysis
# asks for ~40 GB and would take the test machine down with it.
_TWO_ROWS_CHILD = """
import json, resource, sys, tracemalloc
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from apps.costs.usage import analyze_usage
tracemalloc.start()
try:
    a = analyze_usage(sys.argv[1])
    hour = a.busiest_hour()
    chart = a.hourly_requests(24 * 62)
except MemoryError:
    print(json.dumps({"outcome": "MemoryError"}))
    raise SystemExit(0)
print(json.dumps({"outcome": "ok", "peak": tracemalloc.get_traced_memory()[1], "span": a.per_minute["span_minutes"],
                  "hour": hour, "chart_hours": len(chart), "chart_total": sum(chart)}))
"""


def test_two_rows_a_thousand_years_apart_cost_memory_for_two_rows_not_for_every_minute_between(tmp_path):
    path = tmp_path / "two-rows.csv"
    path.write_text(HEADER + "0,mallory,t,1,1\n99999999999,mallory,t,1,1\n")  # 1e11 s: ~1.7 billion minutes
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _TWO_ROWS_CHILD, str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(done.stdout)
    assert result["outcome"] == "ok", result
    assert result["span"] == 99999999999 // 60 + 1
    assert result["peak"] < 2_000_000, f"traced peak {result['peak']:,} bytes for two rows"
    # The replay hour is the first minute and the idle hour after it; the chart is capped at 62 days.
    assert result["hour"] == {"from": "1970-01-01T00:00:00Z", "requests_per_minute": [1] + [0] * 59}
    assert (result["chart_hours"], result["chart_total"]) == (24 * 62, 1)


def test_the_sparse_busiest_hour_and_chart_are_those_of_the_full_per_minute_curve():
    rng = random.Random(11)
    for _ in range(200):
        start = 1_790_000_000 + rng.randrange(3600)
        rows = [
            (start + rng.randrange(rng.choice([60, 3600, 4 * 3600, 3 * 86400])), f"u{rng.randrange(5)}")
            for _ in range(rng.randrange(1, 80))
        ]
        a = analyze_usage(_csv(HEADER + "".join(f"{ts},{u},t,1,1\n" for ts, u in rows)))
        dense = a.requests_per_minute()
        start_minute, counts = busiest_window(dense, usage.REPLAY_MINUTES)
        hour = a.busiest_hour()
        assert hour["requests_per_minute"] == counts
        assert hour["from"] == usage._minute_iso(min(a.minutes) + start_minute)
        for cap in (3, 10_000):
            assert a.hourly_requests(cap) == [sum(dense[i : i + 60]) for i in range(0, len(dense), 60)][:cap]


def test_the_full_per_minute_curve_is_refused_beyond_its_named_span():
    a = analyze_usage(_csv(HEADER + "0,a,t,1,1\n99999999999,a,t,1,1\n"))
    with pytest.raises(ValueError, match="at most"):
        a.requests_per_minute()


# --- caps while reading ----------------------------------------------------------------------------


def test_a_gzip_bomb_stops_at_the_decompressed_byte_cap_having_read_no_further(tmp_path, monkeypatch):
    bomb = _gzip_bomb(64_000_000)
    path = tmp_path / "bomb.csv.gz"
    path.write_bytes(bomb)
    assert len(bomb) < 200_000 and 64_000_000 / len(bomb) > 400  # expands more than 400×
    opened = []

    def gzip_open(name, mode):  # the real gzip reader, over a file whose position the test can see
        opened.append(open(name, "rb"))  # noqa: SIM115 - closed below
        return gzip.GzipFile(fileobj=opened[-1], mode=mode)

    monkeypatch.setattr(usage.gzip, "open", gzip_open)
    with pytest.raises(UsageLimitExceeded, match="more than 1,000,000 bytes") as caught:
        analyze_usage(path, limits=Limits(max_bytes=1_000_000))
    assert caught.value.limit == "bytes"
    # A megabyte is ~1/64 of it: the reader stopped near there, not at the end of the file.
    consumed = opened[0].tell()
    opened[0].close()
    assert consumed < len(bomb) / 8, (consumed, len(bomb))


def test_rows_beyond_the_cap_are_refused():
    assert analyze_usage(_csv(_rows(100)), limits=Limits(max_rows=100)).rows == 100
    with pytest.raises(UsageLimitExceeded, match="more than 100 rows") as caught:
        analyze_usage(_csv(_rows(101)), limits=Limits(max_rows=100))
    assert caught.value.limit == "rows"


def test_distinct_users_tenants_and_minutes_beyond_the_cap_are_refused():
    assert analyze_usage(_csv(_rows(10, users=8)), limits=Limits(max_distinct=8 + 1 + 1)).users == 8
    with pytest.raises(UsageLimitExceeded, match="more than 10 distinct") as caught:
        analyze_usage(_csv(_rows(10, users=9)), limits=Limits(max_distinct=10))
    assert caught.value.limit == "distinct"


def test_a_line_longer_than_the_cap_is_refused_without_being_read_whole(tmp_path):
    path = tmp_path / "one-line.csv.gz"
    path.write_bytes(gzip.compress(HEADER.encode() + b"1" * 50_000_000))  # 50 MB, no line break
    tracemalloc.start()
    try:
        with pytest.raises(UsageLimitExceeded, match="line 2 is longer than 1,000,000 characters"):
            analyze_usage(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, peak


def test_an_unreadable_csv_row_is_a_bad_row_and_the_rest_is_read():
    text = HEADER + "1790000000,a,t,1,1\n" + "x" * 200_000 + ",b,t,1,1\n1790000001,c,t,1,1\n"
    a = analyze_usage(_csv(text))
    assert a.rows == 2 and a.bad_rows.count == 1
    assert a.bad_rows.examples[0]["line"] == 3 and "field larger than field limit" in a.bad_rows.examples[0]["reason"]


# --- the service: what the user sees -----------------------------------------------------------------


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _upload(world, name: str, content: bytes, user=None) -> UsageLog:
    return services.usage_log_upload(
        access=world.access(user or world.owner), project=world.project, upload=SimpleUploadedFile(name, content)
    )


def test_a_gzip_bomb_fails_with_the_cap_named_on_the_page_and_in_the_api(client, world, media, settings):
    settings.READINESS_USAGE_LOG_MAX_DECOMPRESSED_BYTES = 1_000_000
    log = _upload(world, "usage.csv.gz", _gzip_bomb(20_000_000))
    services.usage_log_analyse(log.pk)
    log.refresh_from_db()
    assert log.status == "failed" and log.analysis is None
    assert "more than 1,000,000 bytes (READINESS_USAGE_LOG_MAX_DECOMPRESSED_BYTES)" in log.error, log.error
    body = api_client_for(world.member).get(f"/api/v1/usage-logs/{log.pk}/").json()
    assert body["status"] == "failed" and "READINESS_USAGE_LOG_MAX_DECOMPRESSED_BYTES" in body["error"]
    client.force_login(world.member)
    assert "READINESS_USAGE_LOG_MAX_DECOMPRESSED_BYTES" in client.get(f"/o/acme/usage-logs/{log.pk}/").content.decode()


@pytest.mark.parametrize(
    "setting, value, content, named",
    [
        ("READINESS_USAGE_LOG_MAX_ROWS", 100, _rows(150), "more than 100 rows (READINESS_USAGE_LOG_MAX_ROWS)"),
        (
            "READINESS_USAGE_LOG_MAX_DISTINCT",
            50,
            _rows(150, users=100),
            "more than 50 distinct users, tenants and minutes with requests (together)"
            " (READINESS_USAGE_LOG_MAX_DISTINCT)",
        ),
    ],
)
def test_a_log_beyond_a_cap_fails_naming_it(world, media, settings, setting, value, content, named):
    setattr(settings, setting, value)
    log = _upload(world, "usage.csv", content.encode())
    services.usage_log_analyse(log.pk)
    log.refresh_from_db()
    assert log.status == "failed" and named in log.error, log.error


def test_the_two_row_log_is_analysed_by_the_worker_and_charted_for_62_days(world, media):
    log = _upload(world, "usage.csv", (HEADER + "0,mallory,t,1,1\n99999999999,mallory,t,1,1\n").encode())
    services.usage_log_analyse(log.pk)
    log.refresh_from_db()
    assert log.status == "done" and log.analysis["per_minute"]["active_minutes"] == 2
    assert len(log.hourly_requests) == 24 * 62 and len(log.analysis["busiest_hour"]["requests_per_minute"]) == 60


# --- time limits, heartbeat, reaper, redelivery ---------------------------------------------------------


def test_the_analysis_task_has_a_soft_limit_below_its_hard_limit_and_is_redelivered_if_its_worker_dies(settings):
    from apps.costs.tasks import usage_log_analyse_task

    task = usage_log_analyse_task
    assert task.soft_time_limit == settings.READINESS_USAGE_LOG_SOFT_TIME_LIMIT_S
    assert task.time_limit == settings.READINESS_USAGE_LOG_TIME_LIMIT_S
    assert 0 < task.soft_time_limit < task.time_limit
    assert task.acks_late and task.reject_on_worker_lost


def test_past_the_soft_time_limit_the_analysis_fails_with_a_message(world, media, monkeypatch):
    log = _upload(world, "usage.csv", _rows(10).encode())

    def slow(path, **kwargs):
        if kwargs.get("progress"):
            kwargs["progress"]()
        raise SoftTimeLimitExceeded()  # what Celery raises in the task once the soft limit passes

    monkeypatch.setattr(usage, "analyze_usage", slow)
    assert services.usage_log_analyse(log.pk) is not None
    log.refresh_from_db()
    assert log.status == "failed"
    assert "took longer than 1,800 s (READINESS_USAGE_LOG_SOFT_TIME_LIMIT_S)" in log.error, log.error


def test_a_crash_in_the_analysis_fails_the_log_instead_of_leaving_it_analysing(world, media, monkeypatch):
    log = _upload(world, "usage.csv", _rows(10).encode())

    def broken(path, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(usage, "analyze_usage", broken)
    services.usage_log_analyse(log.pk)
    log.refresh_from_db()
    assert log.status == "failed" and "failed unexpectedly (KeyError)" in log.error


def test_the_analysis_heartbeats_while_it_reads(world, media, settings):
    settings.READINESS_USAGE_LOG_HEARTBEAT_TIMEOUT_S = 0  # report at every chance
    log = _upload(world, "usage.csv", _rows(35_000).encode())
    with CaptureQueriesContext(connection) as queries:
        services.usage_log_analyse(log.pk)
    beats = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE") and "heartbeat_at" in q["sql"]]
    # The claim, one before reading, one for every block read (~1 MB here) and one at the end.
    assert len(beats) >= 1 + 1 + 5 + 1, beats
    log.refresh_from_db()
    assert log.status == "done" and log.analysis["rows"] == 35_000 and log.claim == ""


def _analysing(world, *, beat_s_ago: float, claim: str = "other-worker", attempts: int = 1) -> UsageLog:
    log = UsageLog.objects.create(
        project=world.project,
        name="usage.csv",
        stored_name="",
        status="analysing",
        claim=claim,
        attempts=attempts,
        heartbeat_at=timezone.now() - timedelta(seconds=beat_s_ago),
    )
    return log


def test_the_reaper_fails_analyses_without_a_heartbeat_and_leaves_live_ones(world, settings):
    from apps.costs import tasks

    dead = _analysing(world, beat_s_ago=settings.READINESS_USAGE_LOG_HEARTBEAT_TIMEOUT_S + 1)
    live = _analysing(world, beat_s_ago=5)
    queued = UsageLog.objects.create(project=world.project, name="q.csv")
    tasks.usage_log_reaper_task()
    dead.refresh_from_db(), live.refresh_from_db(), queued.refresh_from_db()
    assert dead.status == "failed" and dead.claim == "" and dead.analysed_at is not None
    assert "no heartbeat for 120 s (READINESS_USAGE_LOG_HEARTBEAT_TIMEOUT_S)" in dead.error, dead.error
    assert live.status == "analysing" and queued.status == "queued"
    assert services.usage_logs_reap(now=timezone.now() + timedelta(minutes=5)) == 1  # live stops reporting
    # Beat runs it: the schedule names the task and Celery knows it.
    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "apps.costs.tasks.usage_log_reaper_task" in schedule
    assert tasks.usage_log_reaper_task.name == "apps.costs.tasks.usage_log_reaper_task"


def test_a_worker_that_comes_back_after_the_reaper_stores_nothing(world, media, settings, monkeypatch):
    settings.READINESS_USAGE_LOG_HEARTBEAT_TIMEOUT_S = 0
    log = _upload(world, "usage.csv", _rows(25_000).encode())
    real = usage.analyze_usage

    def paused_then_resumed(path, **kwargs):
        services.usage_logs_reap(now=timezone.now() + timedelta(minutes=5))  # it looked dead meanwhile
        return real(path, **kwargs)

    monkeypatch.setattr(usage, "analyze_usage", paused_then_resumed)
    assert services.usage_log_analyse(log.pk) is None
    log.refresh_from_db()
    assert log.status == "failed" and "no heartbeat" in log.error and log.analysis is None


def test_a_redelivered_message_reclaims_a_log_whose_worker_died_but_not_one_still_working(world, import_dir):
    stale_s = 121
    dead = _analysing(world, beat_s_ago=stale_s)
    live = _analysing(world, beat_s_ago=5)
    for log in (dead, live):
        UsageLog.objects.filter(pk=log.pk).update(stored_name="usage.csv")
    assert services.usage_log_analyse(live.pk) is None  # a live worker keeps it
    live.refresh_from_db()
    assert (live.status, live.claim, live.attempts) == ("analysing", "other-worker", 1)
    again = services.usage_log_analyse(dead.pk)
    assert again is not None and again.status == "done" and again.analysis["rows"] == 20
    assert (again.attempts, again.claim) == (2, "")
    assert services.usage_log_analyse(dead.pk) is None  # and only once


def test_a_log_that_stopped_its_worker_every_time_is_not_tried_again(world, import_dir):
    log = _analysing(world, beat_s_ago=121, attempts=services.USAGE_LOG_MAX_ATTEMPTS)
    UsageLog.objects.filter(pk=log.pk).update(stored_name="usage.csv")
    assert services.usage_log_analyse(log.pk) is None
    log.refresh_from_db()
    assert log.status == "failed" and "stopped its worker 3 times" in log.error


@pytest.fixture
def import_dir(settings, tmp_path):
    root = tmp_path / "imports"
    (root / "acme").mkdir(parents=True)
    (root / "acme" / "usage.csv").write_text(_rows(20))
    settings.READINESS_USAGE_LOG_IMPORT_DIR = root
    return root


# --- storage ------------------------------------------------------------------------------------------


def test_the_default_per_file_limit_is_below_the_orgs_quota(settings):
    assert settings.READINESS_USAGE_LOG_MAX_BYTES <= 1_000_000_000
    assert settings.READINESS_USAGE_LOG_MAX_BYTES < settings.READINESS_USAGE_LOG_ORG_QUOTA_BYTES


def test_the_service_refuses_a_file_over_the_per_file_limit_naming_it(world, media, settings):
    settings.READINESS_USAGE_LOG_MAX_BYTES = 1024
    with pytest.raises(ApplicationError) as caught:
        _upload(world, "usage.csv", b"x" * 1025)
    assert "1,025 bytes" in caught.value.message and "at most 1,024 bytes (READINESS_USAGE_LOG_MAX_BYTES)" in (
        caught.value.message
    )
    assert caught.value.detail == {"file": [caught.value.message]}
    assert not UsageLog.objects.exists()


def test_the_org_quota_refuses_an_upload_that_does_not_fit_and_deleting_a_log_frees_it(
    client, world, media, settings, import_dir, django_capture_on_commit_callbacks
):
    settings.READINESS_USAGE_LOG_MAX_BYTES = 2000
    settings.READINESS_USAGE_LOG_ORG_QUOTA_BYTES = 3000
    api = api_client_for(world.member)
    # Another org's logs and logs in the import folder do not count.
    services.usage_log_upload(
        access=world.access(world.outsider),
        project=world.other_project,
        upload=SimpleUploadedFile("theirs.csv", b"x" * 2000),
    )
    services.usage_log_from_stored(access=world.access(world.owner), project=world.project, name="usage.csv")
    first = _upload(world, "a.csv", b"x" * 1500)
    _upload(world, "b.csv", b"x" * 1500)  # exactly the quota
    one_more = {"project": world.project.pk, "file": SimpleUploadedFile("c.csv", b"x")}
    refused = api.post("/api/v1/usage-logs/", one_more, format="multipart")
    assert refused.status_code == 400
    message = refused.json()["error"]["message"]
    assert "already take 3,000 of its 3,000 bytes (READINESS_USAGE_LOG_ORG_QUOTA_BYTES)" in message, message
    assert refused.json()["error"]["detail"]["file"] == [message]
    client.force_login(world.member)
    page = client.post(
        "/o/acme/projects/support-copilot/usage-logs/", {"file": SimpleUploadedFile("c.csv", b"x")}, follow=True
    ).content.decode()
    assert "READINESS_USAGE_LOG_ORG_QUOTA_BYTES" in page
    assert UsageLog.objects.filter(project=world.project).count() == 3
    # Only writers of the org may delete; deleting frees the space and removes the file.
    path = Path(first.file.path)
    assert api_client_for(world.viewer).delete(f"/api/v1/usage-logs/{first.pk}/").status_code == 403
    assert api_client_for(world.outsider).delete(f"/api/v1/usage-logs/{first.pk}/").status_code == 404
    with pytest.raises(ApplicationError):
        _upload(world, "c.csv", b"x")
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/v1/usage-logs/{first.pk}/").status_code == 204
    assert not path.exists() and not UsageLog.objects.filter(pk=first.pk).exists()
    assert _upload(world, "c.csv", b"x" * 1500).size_bytes == 1500
