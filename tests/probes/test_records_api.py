"""A run's per-request records over the API: paginated JSON read a page at a time, CSV through
`?format=csv`, and nothing of them for another organization.

The run here is built from stored batches (as shard runners flush them), two shards with
several batches each and one batch holding no rows (a flush of inter-token latencies only).
"""

import csv
import io

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.orgs import services as org_services
from apps.orgs.access import Access
from apps.probes import services
from apps.probes.engine.records import OK, TIMEOUT, TOKENS_USAGE, Records
from apps.probes.engine.report import request_rows
from apps.probes.models import ProbeRecordBatch
from apps.probes.selectors import run_record_rows, run_records
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

# rows per stored batch, shard by shard, in flush order; the 0 is a flush of inter-token latencies only
SHARD_BATCHES = ([30, 30, 0, 15], [25, 20])
TOTAL = sum(map(sum, SHARD_BATCHES))  # 120


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    cache.clear()
    yield
    cache.clear()


def stored_run(world, shard_batches=SHARD_BATCHES):
    """A two-shard run of org A with records stored batch by batch. Shard 1's requests were sent
    before shard 0's, so an order by send time would differ from the stored order."""
    plan = services.probe_plan_create(
        access=world.access(world.owner),
        endpoint=world.endpoint,
        name="stored",
        parallelism=2,
        profile={"stages": [{"kind": "poisson", "rate": 2, "duration": 5}]},
    )
    run = services.probe_run_start(access=world.access(world.owner), plan=plan)
    for shard, counts in zip(run.shards.order_by("index"), shard_batches, strict=True):
        seq = 0
        for sequence, count in enumerate(counts):
            part = Records()
            for _ in range(count):
                sent = 100.0 - shard.index * 50 + seq * 0.01
                error = TIMEOUT if seq % 7 == 3 else OK
                part.append(sent, sent, sent + 0.1, sent + 0.5, 10, 8, 8, error, TOKENS_USAGE, 0, seq)
                seq += 1
            part.itl_for(0).add(0.02)
            ProbeRecordBatch.objects.create(shard=shard, sequence=sequence, count=count, data=part.to_bytes())
    return run


def records_url(run) -> str:
    return reverse("api:proberun-records", kwargs={"pk": run.pk})


def expected_rows(run) -> list[dict]:
    """What the API has always answered: every row of the merged records, shard by shard, batch by batch."""
    return [{k: v for k, v in row.items()} for row in request_rows(run_records(run))]


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


# --- ?format=csv -----------------------------------------------------------------------------


def test_records_with_format_csv_is_a_csv_of_every_row_under_a_header(world):
    run = stored_run(world)

    response = api_client_for(world.owner).get(records_url(run), {"format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == f'attachment; filename="run-{run.pk}-requests.csv"'
    header, *rows = read_csv(response)
    assert header == list(expected_rows(run)[0])
    assert len(rows) == TOTAL
    assert rows[0][header.index("seq")] == "0" and rows[-1][header.index("seq")] == "44"


def test_records_as_csv_is_also_what_an_accept_text_csv_header_gets(world, tokens):
    run = stored_run(world)

    response = api_client_for(token=tokens["read"]).get(records_url(run), HTTP_ACCEPT="text/csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert len(read_csv(response)) == TOTAL + 1


def test_records_of_a_run_without_records_as_csv_is_empty(world):
    run = stored_run(world, shard_batches=([], []))

    response = api_client_for(world.owner).get(records_url(run), {"format": "csv"})

    assert response.status_code == 200
    assert read_csv(response) == []


@pytest.mark.parametrize("query", [{}, {"format": "json"}])
def test_records_are_paginated_json_by_default_and_with_format_json(world, query):
    run = stored_run(world)

    response = api_client_for(world.owner).get(records_url(run), {**query, "page_size": 50})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["count"] == TOTAL
    assert body["results"] == expected_rows(run)[:50]


@pytest.mark.parametrize("who", ["outsider", "outsider_token"])
@pytest.mark.parametrize("query", [{"format": "csv"}, {"format": "json"}, {}])
def test_outsider_gets_404_on_the_records_in_any_format(world, who, query):
    run = stored_run(world)
    if who == "outsider":
        client = api_client_for(world.outsider)
    else:
        _, plaintext = org_services.api_token_create(
            access=Access.for_user(world.outsider), org=world.other_org, name="b", scope="read_write"
        )
        client = api_client_for(token=plaintext)

    response = client.get(records_url(run), query)

    assert response.status_code == 404
    # An error is the one JSON error shape whatever format was asked for, and holds nothing of the run.
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_anonymous_gets_401_as_json_on_the_records_as_csv(world):
    run = stored_run(world)

    response = api_client_for().get(records_url(run), {"format": "csv"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


# --- pages read only the batches they show ---------------------------------------------------


def test_pages_of_records_are_the_stored_order_whatever_the_page_size(world):
    run = stored_run(world)
    client = api_client_for(world.owner)
    expected = expected_rows(run)

    for page_size in (7, 30, 45, 120, 500):
        rows, page = [], 1
        while True:
            body = client.get(records_url(run), {"page": page, "page_size": page_size}).json()
            rows += body["results"]
            if body["next"] is None:
                break
            page += 1
        assert rows == expected, page_size


def test_a_page_past_the_last_is_404_as_before(world):
    run = stored_run(world)

    response = api_client_for(world.owner).get(records_url(run), {"page": 3, "page_size": 100})

    assert response.status_code == 404


@pytest.mark.parametrize(
    "start, stop, batches",
    [(0, 10, 1), (25, 35, 2), (30, 60, 1), (55, 80, 3), (70, 100, 2), (0, TOTAL, 5), (TOTAL, TOTAL, 0)],
)
def test_a_slice_of_record_rows_decodes_only_the_batches_holding_it(world, start, stop, batches):
    run = stored_run(world)
    rows = run_record_rows(run)

    assert len(rows) == TOTAL
    assert rows[start:stop] == expected_rows(run)[start:stop]
    assert rows.batches_read == batches


def test_a_records_page_never_reads_the_batches_around_it(world, django_assert_max_num_queries):
    run = stored_run(world)
    # Rows 30..59 are shard 0's second batch: every other batch holds bytes that cannot be decoded,
    # so the page only works if nothing else is read.
    shard0 = run.shards.get(index=0)
    wanted = ProbeRecordBatch.objects.get(shard=shard0, sequence=1)
    ProbeRecordBatch.objects.filter(shard__run=run).exclude(pk=wanted.pk).update(data=b"not zlib")
    client = api_client_for(world.owner)
    client.get(reverse("api:proberun-list"))  # the session and throttle rows are warm

    with django_assert_max_num_queries(7), CaptureQueriesContext(connection) as queries:
        response = client.get(records_url(run), {"page": 2, "page_size": 30})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == TOTAL
    assert [row["seq"] for row in body["results"]] == list(range(30, 60))
    reads = [q["sql"] for q in queries.captured_queries if '"data"' in q["sql"]]
    assert len(reads) == 1
