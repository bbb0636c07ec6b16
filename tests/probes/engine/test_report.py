"""The console outputs: the figures table and the diagnosis of a failed preflight."""

from apps.probes.engine.report import format_diagnosis, table


def stage(name: str, scale: float) -> dict:
    dist = {"p50": 12551.9 * scale, "p95": 12551.9 * scale, "p99": 12551.9 * scale}
    return {
        "stage": name,
        "requests": int(300_000 * scale),
        "request_throughput": 5_012.3 * scale,
        "output_token_throughput": 80_196.0 * scale,
        "goodput": 4_990.1 * scale,
        "error_rate": 0.0123,
        "ttft_ms": dist,
        "tpot_ms": dist,
        "itl_ms": dist,
        "e2e_ms": dist,
        "schedule_lag_ms": dist,
    }


def test_wide_numbers_never_run_together_and_columns_line_up():
    lines = table([stage("a very long stage name", 1.0), stage("overall", 0.001)])
    header, wide, narrow = lines
    # Every value stands apart: splitting on two spaces gives back all 13 columns.
    for line in (wide, narrow):
        cells = [c for c in line.split("  ") if c.strip()]
        assert len(cells) == 13, line
    assert "12,551.912,551.9" not in wide
    # Right-aligned numbers: every row ends at the same column.
    assert len(header) == len(wide) == len(narrow)


def test_a_diagnosis_prints_status_body_hint_attempts_and_the_request():
    text = format_diagnosis(
        {
            "message": "preflight failed: HTTP 400: (empty body)",
            "status": 400,
            "content_type": "text/plain",
            "body": "",
            "hint": "The server refused a field or header.",
            "request": "POST /v1/chat/completions HTTP/1.1\r\n",
            "attempts": [
                {"parts": ["accept", "request_id"], "status": 400, "error_class": "4xx"},
                {"parts": [], "status": 400, "error_class": "4xx"},
            ],
        }
    )
    assert text.splitlines()[0] == "error: preflight failed: HTTP 400: (empty body)"
    assert "body          (empty body)" in text
    assert "tried         accept+request_id: 400; no optional parts: 400" in text
    assert "    POST /v1/chat/completions HTTP/1.1" in text
