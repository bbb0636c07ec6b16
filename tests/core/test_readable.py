"""The one way each kind of value reads on a page (apps/core/templatetags/readable.py)."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.template import Context, Template

from apps.core.templatetags import readable


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (183.456, "183 ms"),
        (4.2549, "4.25 ms"),
        (0.04567, "0.0457 ms"),
        (12.0, "12 ms"),
        (999.6, "1 s"),
        (1234.5, "1.23 s"),
        (61234, "61.2 s"),
        (None, "—"),
        ("n/a", "—"),
        (float("nan"), "—"),
        (0, "0 ms"),
    ],
)
def test_latencies_read_with_three_significant_digits_and_a_unit(value, text):
    assert readable.ms(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(12345, "12,345"), (1234567.4, "1,234,567"), (0, "0"), ("42", "42"), (None, "—"), (2.5, "3")],
)
def test_counts_have_thousands_separators(value, text):
    assert readable.count(value) == text


@pytest.mark.parametrize(
    ("value", "places", "text"),
    [
        (422.40000000000003, 2, "$422.40"),
        (Decimal("1234.5"), 2, "$1,234.50"),
        ("0.80", 2, "$0.80"),
        (0.012345, 4, "$0.0123"),
        (-3.5, 2, "-$3.50"),
        (None, 2, "—"),
        (1e6, 2, "$1,000,000.00"),
    ],
)
def test_money_reads_as_dollars_and_cents(value, places, text):
    assert readable.money(value, places) == text


def test_a_timestamp_reads_in_utc_with_the_exact_value_in_a_time_element():
    moment = datetime(2026, 12, 1, 6, 50, 7, tzinfo=timezone(timedelta(hours=2)))
    html = str(readable.when(moment))
    assert ">2026-12-01 04:50 UTC</time>" in html
    assert 'datetime="2026-12-01T06:50:07+02:00"' in html


def test_a_timestamp_from_a_json_snapshot_reads_the_same_way():
    assert readable.when_text("2026-12-01T04:50:59.123456+00:00") == "2026-12-01 04:50 UTC"
    assert readable.when_text("2026-12-01") == "2026-12-01"
    assert readable.when_text(None) == "—"


def test_a_status_key_reads_as_words_in_a_template():
    html = Template("{% load readable %}{{ s|label }} · {{ n|count }} · {{ v|money }}").render(
        Context({"s": "approved_with_conditions", "n": 9876, "v": 422.40000000000003})
    )
    assert html == "approved with conditions · 9,876 · $422.40"


def test_a_timestamp_filter_escapes_what_it_cannot_parse():
    assert readable.when("<b>soon</b>") == "<b>soon</b>"  # plain str: autoescaped by the template
    html = Template("{% load readable %}{{ v|when }}").render(Context({"v": "<b>soon</b>"}))
    assert html == "&lt;b&gt;soon&lt;/b&gt;"
