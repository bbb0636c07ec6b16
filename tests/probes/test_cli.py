"""`manage.py probe` as a user (or CI) runs it: a real process against a simulator on 127.0.0.1."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from apps.probes.engine.openai import RequestIds
from apps.simulator.scenarios import SimConfig, scenario
from apps.simulator.server import start_in_thread

ROOT = Path(__file__).resolve().parents[2]


def probe(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "probe", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def file_server(tmp_path):
    """Not an inference server: what `python -m http.server` answers (404 on GET, 501 on POST)."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def custom_model_simulator():
    sim = start_in_thread(config=SimConfig(model="sim-custom-7b"))
    yield sim
    sim.shutdown()
    sim.server_close()


def test_a_poisson_probe_prints_the_summary_and_writes_json_and_csv(simulator, tmp_path):
    out_json, out_csv = tmp_path / "out.json", tmp_path / "out.csv"
    proc = probe(
        simulator.base_url,
        "--allow-private",
        "--profile",
        "poisson",
        "--rate",
        "20",
        "--duration",
        "2",
        "--max-tokens",
        "8",
        "--json",
        str(out_json),
        "--csv",
        str(out_csv),
        "--quiet",
        "--slo",
        "ttft_p95=5s,error_rate=1%",
    )
    assert proc.returncode == 0, proc.stderr
    assert "in-flight" not in proc.stderr and "Traceback" not in proc.stderr, "--quiet prints no progress"
    lines = proc.stdout.splitlines()
    assert lines[0] == f"target {simulator.base_url}  model sim-llama-3-8b  api chat"
    assert "TTFT p50" in lines[1] and "E2E p99" in lines[1]
    assert lines[2].startswith("poisson 20/s") and lines[3].startswith("overall")
    assert "SLO ok   ttft_p95_ms" in proc.stdout and "SLO ok   error_rate" in proc.stdout
    assert "MISS" not in proc.stdout

    data = json.loads(out_json.read_text())
    assert {"meta", "summary", "server_metrics", "requests"} <= set(data)
    summary = data["summary"]
    assert len(summary["stages"]) == 1 and summary["stages"][0]["stage"] == "poisson 20/s"
    assert summary["slo_met"] is True
    requests = data["requests"]
    assert 20 <= len(requests) <= 65
    assert summary["overall"]["requests"] == len(requests)
    assert {r["error"] for r in requests} == {"ok"}
    assert {r["token_source"] for r in requests} == {"usage"}
    assert all(r["output_tokens"] == 8 and r["first"] <= r["last"] for r in requests)
    assert data["meta"]["max_tokens"] == 8

    with out_csv.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(requests)
    assert set(rows[0]) >= {"intended", "sent", "first", "last", "output_tokens", "error", "token_source", "seq"}
    assert sorted(int(r["seq"]) for r in rows) == list(range(len(rows)))


def test_a_missed_slo_exits_1_and_prints_miss(simulator):
    proc = probe(
        simulator.base_url,
        "--allow-private",
        "--profile",
        "constant",
        "--rate",
        "10",
        "--duration",
        "1",
        "--max-tokens",
        "4",
        "--slo",
        "ttft_p95=0.001ms",
        "--quiet",
    )
    assert proc.returncode == 1, proc.stderr
    assert "SLO MISS ttft_p95_ms" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_a_url_without_v1_works_and_the_model_is_read_from_the_server(custom_model_simulator, tmp_path):
    sim = custom_model_simulator
    root = sim.base_url.removesuffix("/v1")
    out_json = tmp_path / "out.json"
    proc = probe(
        root,
        "--allow-private",
        "--profile",
        "synchronous",
        "--duration",
        "1",
        "--max-tokens",
        "4",
        "--json",
        str(out_json),
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"target {root}  model sim-custom-7b  api chat"
    data = json.loads(out_json.read_text())
    assert data["meta"]["model"] == "sim-custom-7b"
    assert {r["error"] for r in data["requests"]} == {"ok"}
    # The requests really went to /v1/chat/completions of that simulator, after one preflight request.
    shards = [RequestIds.parse(rid)[1] for rid in sim.deployment.ground_truth]
    assert shards.count(RequestIds.PREFLIGHT_SHARD) == 1
    assert len(shards) - 1 == len(data["requests"])


def test_progress_lines_go_to_stderr_without_quiet(simulator):
    proc = probe(
        simulator.base_url,
        "--allow-private",
        "--profile",
        "synchronous",
        "--duration",
        "1",
        "--max-tokens",
        "4",
        "--model",
        "sim-llama-3-8b",
    )
    assert proc.returncode == 0, proc.stderr
    assert "sent" in proc.stderr and "ttft p95" in proc.stderr
    assert "overall" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slo", "ttft_p95=500"], "needs a unit"),
        (["--slo", "latency=5ms"], "unknown SLO"),
        (["--profile", "poisson"], "needs a positive rate"),
        (["--profile", "constant", "--rate", "0"], "needs a positive rate"),
        (["--max-tokens", "0"], "--max-tokens must be at least 1"),
        (["--extra-body", "[1, 2]"], "--extra-body must be a JSON object"),
        (["--extra-body", "{not json"], "error:"),
    ],
    ids=[
        "slo-without-unit",
        "unknown-slo",
        "poisson-without-rate",
        "zero-rate",
        "zero-max-tokens",
        "extra-body-list",
        "extra-body-not-json",
    ],
)
def test_bad_usage_exits_2_with_an_error_message(simulator, args, message):
    proc = probe(simulator.base_url, "--allow-private", "--model", "m", "--duration", "1", *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert simulator.deployment.ground_truth == {}, "nothing was sent"


@pytest.mark.parametrize("model", [None, "m"], ids=["model-looked-up", "model-given"])
@pytest.mark.parametrize("url", ["http://169.254.169.254/v1", "http://169.254.169.254:8000"])
def test_a_metadata_url_is_refused_with_exit_2(url, model):
    args = [url, "--allow-private", "--profile", "synchronous", "--duration", "1", "--quiet"]
    proc = probe(*args, *(["--model", model] if model else []))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: refused: ") and "metadata" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_loopback_url_is_refused_unless_private_targets_are_allowed(simulator):
    proc = probe(
        simulator.base_url,
        "--model",
        "m",
        "--duration",
        "1",
        "--quiet",
        env={"READINESS_ALLOW_PRIVATE_ENDPOINTS": "false"},
    )
    assert proc.returncode == 2
    assert "error: refused: " in proc.stderr and "loopback" in proc.stderr
    assert simulator.deployment.ground_truth == {}


def test_an_unreachable_endpoint_without_model_exits_2(tmp_path):
    proc = probe(f"http://127.0.0.1:{closed_port()}/v1", "--allow-private", "--duration", "1", "--quiet")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: could not read /v1/models") and "--model" in proc.stderr


def test_an_unreachable_endpoint_with_a_model_stops_at_the_preflight_with_exit_2():
    proc = probe(
        f"http://127.0.0.1:{closed_port()}/v1",
        "--allow-private",
        "--model",
        "m",
        "--profile",
        "constant",
        "--rate",
        "5",
        "--duration",
        "1",
        "--quiet",
    )
    assert proc.returncode == 2
    assert proc.stdout == "", "no load was sent, so there is no summary"
    assert proc.stderr.startswith("error: preflight failed: connect")
    assert "Could not connect" in proc.stderr


def test_a_server_without_a_model_list_is_named_by_its_status_when_picking_the_model(file_server):
    proc = probe(file_server, "--allow-private", "--duration", "1", "--quiet")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: could not read /v1/models") and "HTTP 404" in proc.stderr
    assert "OpenAI-compatible" in proc.stderr and "--model" in proc.stderr


def test_a_server_that_refuses_the_preflight_stops_the_run_with_status_body_and_hint(file_server):
    proc = probe(
        file_server,
        "--allow-private",
        "--model",
        "m",
        "--profile",
        "constant",
        "--rate",
        "20",
        "--duration",
        "1",
        "--quiet",
        "--api-key",
        "sk-test-secret-0123456789",
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    err = proc.stderr
    assert err.startswith("error: preflight failed: HTTP 501")
    assert "status        501  content-type text/html" in err
    assert "Unsupported method" in err, "the body excerpt is shown"
    assert "hint" in err and "gateway" in err
    assert "POST /v1/chat/completions HTTP/1.1" in err, "the request as sent"
    assert "Authorization: Bearer [redacted]" in err and "sk-test-secret" not in err


def test_a_run_in_which_no_request_succeeded_exits_2_even_without_an_slo(file_server):
    proc = probe(
        file_server,
        "--allow-private",
        "--model",
        "m",
        "--profile",
        "constant",
        "--rate",
        "20",
        "--duration",
        "1",
        "--quiet",
        "--no-preflight",
    )
    assert "errors: 5xx" in proc.stdout, "the summary is still printed"
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no request succeeded:")
    assert "5xx: 501 x " in proc.stderr and "Unsupported method" in proc.stderr, "statuses and a sample body"


def test_a_wrong_api_key_stops_at_the_preflight_with_the_key_hint(started):
    sim = started(SimConfig(api_key="right-key"))
    proc = probe(sim.base_url, "--allow-private", "--model", "m", "--duration", "1", "--quiet", "--api-key", "wrong")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: preflight failed: HTTP 401")
    assert "invalid api key" in proc.stderr and "API key" in proc.stderr


def test_a_strict_server_is_probed_with_zero_refusals(started, tmp_path):
    """A server that refuses a non-UUID X-Request-Id (400, empty body) and `stream_options`: the engine
    sends a UUID, drops the refused field after the preflight, says so, and measures with no errors."""
    sim = started(scenario("strict"))
    out_json = tmp_path / "out.json"
    proc = probe(
        sim.base_url,
        "--allow-private",
        "--model",
        "m",
        "--profile",
        "concurrent",
        "--concurrency",
        "4",
        "--duration",
        "1",
        "--max-tokens",
        "4",
        "--quiet",
        "--json",
        str(out_json),
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out_json.read_text())
    assert data["summary"]["overall"]["errors"] == {}
    assert len(data["requests"]) >= 4 and {r["error"] for r in data["requests"]} == {"ok"}
    assert data["meta"]["dropped_parts"] == [{"part": "stream_options", "why": "HTTP 400 with it, 200 without"}]
    assert data["meta"]["request_parts"] == ["accept", "request_id"]
    assert "note: the server refuses stream_options" in proc.stderr
    assert "note: sent without stream_options" in proc.stdout
    # Every load request reached the server under a UUID that names its shard and sequence.
    load = [RequestIds.parse(rid) for rid in sim.deployment.ground_truth]
    assert sorted(ids[2] for ids in load if ids and ids[1] == 0) == sorted(r["seq"] for r in data["requests"])


@pytest.mark.parametrize(("header", "sent"), [("none", None), ("X-Correlation-Id", "X-Correlation-Id")])
def test_the_request_id_header_can_be_renamed_or_switched_off(simulator, tmp_path, header, sent):
    out_json = tmp_path / "out.json"
    proc = probe(
        simulator.base_url,
        "--allow-private",
        "--model",
        "m",
        "--profile",
        "synchronous",
        "--duration",
        "0.5",
        "--max-tokens",
        "2",
        "--quiet",
        "--request-id-header",
        header,
        "--json",
        str(out_json),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out_json.read_text())["meta"]["request_id"]["header"] == sent
    # The simulator keys its ground truth on X-Request-Id only: without one it names requests itself.
    assert all(rid.startswith("cmpl-") for rid in simulator.deployment.ground_truth)


def test_a_bad_request_id_header_name_is_a_usage_error(simulator):
    proc = probe(simulator.base_url, "--allow-private", "--model", "m", "--request-id-header", "Bad Header:")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "not an HTTP header name" in proc.stderr


def test_an_api_key_with_a_line_break_is_refused_before_anything_is_sent(simulator):
    proc = probe(simulator.base_url, "--allow-private", "--model", "m", "--api-key", "sk-a\r\nX-Evil: 1")
    assert proc.returncode == 2
    assert "control" in proc.stderr
    assert simulator.deployment.ground_truth == {}
