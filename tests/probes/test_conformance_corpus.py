"""Recorded streams of real OpenAI-compatible servers, replayed byte for byte through the engine.

Each file in corpus/ is one response as a server family writes it (field order, line endings,
keep-alives, where the usage and the finish_reason go), with its source, and the figures the
engine must record for it, derived by hand from docs/probes.md "What the numbers mean". Every
string in `chunks` is one TCP write (one HTTP chunk when the framing is chunked).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from apps.probes.engine.records import ERROR_CLASSES, TOKENS_COUNTED, TOKENS_USAGE
from tests.probes.test_stream_cases import CLOSE, LAST_CHUNK, ScriptedServer, chunk, e2e_ms, only, probe, ttft_ms

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.json"))
FAMILIES = {"vLLM", "SGLang", "TGI", "llama.cpp", "Ollama", "LM Studio", "OpenAI", "Azure OpenAI", "LiteLLM"}
QUIRKS = {
    "usage_empty_choices",
    "no_usage",
    "ping_comments",
    "data_without_space",
    "crlf_line_endings",
    "json_body_not_stream",
    "error_mid_stream",
    "html_200",
    "reasoning_content",
    "tool_calls",
    "cut_off_without_finish_reason",
}
TOKEN_SOURCES = {"usage": TOKENS_USAGE, "counted": TOKENS_COUNTED}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def script(response: dict) -> list:
    """The server's writes: the head with its framing header, then each recorded piece as it was sent."""
    pieces = [piece.encode() for piece in response["chunks"]]
    framing = response["framing"]
    head = [f"HTTP/1.1 {response['status']} OK", *(f"{name}: {value}" for name, value in response["headers"])]
    if framing == "chunked":
        head.append("Transfer-Encoding: chunked")
        body = [chunk(piece) for piece in pieces]
        end = [CLOSE] if response.get("cut") else [LAST_CHUNK]
    elif framing == "length":
        head.append(f"Content-Length: {sum(len(piece) for piece in pieces)}")
        body, end = pieces, []
    else:  # "close": the body ends when the server closes the connection
        body, end = pieces, [CLOSE]
    return [("\r\n".join(head) + "\r\n\r\n").encode(), *body, *end]


@pytest.mark.parametrize("path", CORPUS, ids=[path.stem for path in CORPUS])
def test_a_recorded_server_stream_gives_the_figures_derived_by_hand(path):
    case = load(path)
    expect = case["expect"]
    server = ScriptedServer(lambda _seen: script(case["response"]))
    try:
        row = only(probe(server))
    finally:
        server.close()
    assert ERROR_CLASSES[row["error"]] == expect["error"]
    assert row["status"] == case["response"]["status"]
    assert row["token_events"] == expect["token_events"]
    assert row["output_tokens"] == expect["output_tokens"]
    assert row["token_source"] == TOKEN_SOURCES[expect["token_source"]]
    if "input_tokens" in expect:
        assert row["input_tokens"] == expect["input_tokens"]
    if expect["token_events"]:
        assert 0 <= ttft_ms(row) <= e2e_ms(row)
    else:
        assert math.isnan(row["first"]) and math.isnan(row["last"])


def test_the_corpus_covers_every_server_family_and_quirk():
    cases = [load(path) for path in CORPUS]
    assert FAMILIES <= {case["family"] for case in cases}
    assert {quirk for case in cases for quirk in case["quirks"]} == QUIRKS


@pytest.mark.parametrize("path", CORPUS, ids=[path.stem for path in CORPUS])
def test_each_recorded_stream_names_its_source_and_only_known_quirks(path):
    case = load(path)
    assert case["source"] and case["notes"]
    assert set(case["quirks"]) <= QUIRKS
    assert case["response"]["framing"] in ("chunked", "length", "close")
    assert set(case["expect"]) <= {"error", "token_events", "output_tokens", "input_tokens", "token_source"}
    assert ("input_tokens" in case["expect"]) == (case["expect"]["token_source"] == "usage")
