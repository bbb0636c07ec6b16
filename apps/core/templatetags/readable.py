"""How numbers, money, times and status keys read on every page: `{% load readable %}`.

One format per kind of value, so the same figure never reads two ways on two pages:
latencies with three significant digits and a unit, counts with thousands separators, money
as dollars and cents, timestamps as "2026-12-01 04:50 UTC" inside a `<time datetime>`.
Values arrive as numbers, Decimals, strings from a JSON snapshot, or None ("—").
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

register = template.Library()

MISSING = "—"


def _number(value) -> Decimal | None:
    """A finite Decimal, or None for anything that is not a number (None, "", "n/a", NaN)."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return number if number.is_finite() else None


def _round_significant(number: Decimal, digits: int) -> tuple[Decimal, int]:
    """`number` rounded to `digits` significant digits, and the decimal places that leaves."""
    if number == 0:
        return number, 0
    exponent = math.floor(math.log10(abs(float(number))))
    places = max(digits - 1 - exponent, 0)
    return number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP), places


def significant(value, digits: int = 3) -> str:
    """`value` rounded to `digits` significant digits, with thousands separators and no
    trailing zeros after the point: 0.04567 → "0.0457", 1234.5 → "1,235", 12.0 → "12"."""
    number = _number(value)
    if number is None:
        return MISSING
    if number == 0:
        return "0"
    rounded, places = _round_significant(number, digits)
    text = f"{rounded:,.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


@register.filter
def sig3(value) -> str:
    """Three significant digits, no unit (ratios, rates)."""
    return significant(value, 3)


@register.filter
def ms(value) -> str:
    """A latency given in milliseconds: "183 ms", "4.25 ms", "1.23 s" from 1,000 ms on."""
    number = _number(value)
    if number is None:
        return MISSING
    # Rounded first, so 999.6 ms reads "1 s", not "1,000 ms".
    if abs(_round_significant(number, 3)[0]) >= 1000:
        return f"{significant(number / 1000)} s"
    return f"{significant(number)} ms"


@register.filter
def seconds(value) -> str:
    """A duration given in seconds: "43 s", "2.5 s", "0.125 s"."""
    number = _number(value)
    return MISSING if number is None else f"{significant(number)} s"


@register.filter
def count(value) -> str:
    """A count with thousands separators: 12345 → "12,345" (a fraction is rounded to a whole)."""
    number = _number(value)
    if number is None:
        return MISSING
    return f"{number.quantize(Decimal(1), rounding=ROUND_HALF_UP):,f}"


@register.filter
def money(value, places=2) -> str:
    """US dollars: 1234.5 → "$1,234.50"; `money:4` for small unit prices ("$0.0123")."""
    number = _number(value)
    if number is None:
        return MISSING
    places = int(places)
    rounded = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    return f"{sign}${abs(rounded):,.{places}f}"


@register.filter
def percent(value, places=0) -> str:
    """A fraction as a percentage: 0.953 → "95%" (`percent:1` → "95.3%")."""
    number = _number(value)
    if number is None:
        return MISSING
    places = int(places)
    return f"{(number * 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):,.{places}f}%"


def _moment(value) -> datetime | date | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        text = value.strip().replace("Z", "+00:00")
        try:
            return datetime.fromisoformat(text) if ("T" in text or " " in text) else date.fromisoformat(text)
        except ValueError:
            return None
    return None


def moment_text(value) -> str:
    """The site's one timestamp format, in UTC: "2026-12-01 04:50 UTC" (a date alone: "2026-12-01")."""
    moment = _moment(value)
    if moment is None:
        return MISSING if value in (None, "") else str(value)
    if not isinstance(moment, datetime):
        return moment.isoformat()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # stored times are UTC (USE_TZ, TIME_ZONE = UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@register.filter
def when(value):
    """A timestamp as `<time datetime="ISO">2026-12-01 04:50 UTC</time>`: readable on the page,
    exact for a machine (and in the tooltip)."""
    moment = _moment(value)
    if moment is None:
        return moment_text(value)
    if isinstance(moment, datetime) and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    iso = moment.isoformat()
    return format_html('<time datetime="{}" title="{}">{}</time>', iso, iso, moment_text(moment))


@register.filter
def ago(value) -> str:
    """How long ago, in words: "less than a minute ago" (Django's timesince says "0 minutes")."""
    moment = _moment(value)
    if not isinstance(moment, datetime):
        return MISSING
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if (timezone.now() - moment).total_seconds() < 60:
        return "less than a minute ago"
    return f"{timesince(moment)} ago"


@register.filter
def when_text(value) -> str:
    """The same format as `when`, as plain text (for attributes and chart labels)."""
    return moment_text(value)


@register.filter
def label(value) -> str:
    """A status key as words: "approved_with_conditions" → "approved with conditions"."""
    if value is None:
        return MISSING
    return str(value).replace("_", " ").strip()
