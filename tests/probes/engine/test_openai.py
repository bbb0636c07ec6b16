"""classify(): what one streamed event means for the timing rules; request_body(): what is sent."""

import json

import pytest

from apps.probes.engine import openai
from apps.probes.engine.openai import EV_DONE, EV_EMPTY, EV_ERROR, EV_MALFORMED, EV_TOKEN, classify, request_body


def chunk(**delta) -> bytes:
    return json.dumps(
        {"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
    ).encode()


def test_a_role_only_opening_chat_chunk_is_not_a_token():
    assert classify(chunk(role="assistant")) == (EV_EMPTY, None)


def test_a_role_chunk_with_empty_content_is_not_a_token():
    assert classify(chunk(role="assistant", content="")) == (EV_EMPTY, None)


def test_a_chat_chunk_with_content_is_a_token():
    assert classify(chunk(content="Hello")) == (EV_TOKEN, None)


def test_a_chat_chunk_with_empty_string_content_is_not_a_token():
    assert classify(chunk(content="")) == (EV_EMPTY, None)


def test_a_chat_chunk_with_null_content_is_not_a_token():
    assert classify(chunk(content=None)) == (EV_EMPTY, None)


def test_a_whitespace_only_content_chunk_is_still_a_token():
    assert classify(chunk(content=" ")) == (EV_TOKEN, None)


def test_reasoning_content_is_a_token():
    assert classify(chunk(content=None, reasoning_content="Let me think")) == (EV_TOKEN, None)


def test_reasoning_is_a_token():
    assert classify(chunk(reasoning="step 1")) == (EV_TOKEN, None)


def test_a_tool_call_delta_is_a_token():
    tool_calls = [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]
    assert classify(chunk(content=None, tool_calls=tool_calls)) == (EV_TOKEN, None)


def test_an_empty_tool_calls_list_is_not_a_token():
    assert classify(chunk(tool_calls=[])) == (EV_EMPTY, None)


def test_an_empty_delta_with_a_finish_reason_is_not_a_token():
    data = json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}).encode()
    assert classify(data) == (EV_EMPTY, None)


def test_a_completions_chunk_with_text_is_a_token():
    data = json.dumps({"object": "text_completion", "choices": [{"index": 0, "text": "Hi"}]}).encode()
    assert classify(data) == (EV_TOKEN, None)


def test_a_completions_chunk_with_empty_text_is_not_a_token():
    data = json.dumps({"choices": [{"index": 0, "text": "", "finish_reason": "length"}]}).encode()
    assert classify(data) == (EV_EMPTY, None)


def test_any_choice_carrying_a_token_makes_the_event_a_token_event():
    data = json.dumps({"choices": [{"index": 0, "delta": {}}, {"index": 1, "delta": {"content": "x"}}]}).encode()
    assert classify(data)[0] == EV_TOKEN


def test_a_usage_only_chunk_is_not_a_token_but_reports_usage():
    data = json.dumps(
        {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 34, "total_tokens": 46}}
    ).encode()
    assert classify(data) == (EV_EMPTY, (12, 34))


def test_usage_on_a_content_chunk_is_a_token_with_usage():
    data = json.dumps(
        {"choices": [{"index": 0, "delta": {"content": "end"}}], "usage": {"prompt_tokens": 5, "completion_tokens": 7}}
    ).encode()
    assert classify(data) == (EV_TOKEN, (5, 7))


def test_null_usage_on_a_content_chunk_reports_no_usage():
    data = json.dumps({"choices": [{"index": 0, "delta": {"content": "a"}}], "usage": None}).encode()
    assert classify(data) == (EV_TOKEN, None)


def test_usage_without_completion_tokens_is_ignored():
    data = json.dumps({"choices": [], "usage": {"prompt_tokens": 5}}).encode()
    assert classify(data) == (EV_EMPTY, None)


def test_usage_without_prompt_tokens_counts_them_as_zero():
    data = json.dumps({"choices": [], "usage": {"completion_tokens": 9}}).encode()
    assert classify(data) == (EV_EMPTY, (0, 9))


def test_the_done_sentinel_ends_the_stream():
    assert classify(b"[DONE]") == (EV_DONE, None)


@pytest.mark.parametrize(
    "data",
    [b"{not json", b'{"choices": [', b"", b"[1, 2, 3]", b'"just a string"', b"42", b"null"],
    ids=["broken", "truncated", "empty", "json-list", "json-string", "json-number", "json-null"],
)
def test_anything_that_is_not_a_json_object_is_malformed(data):
    assert classify(data) == (EV_MALFORMED, None)


def test_an_error_object_inside_the_stream_is_an_error_event():
    data = json.dumps({"error": {"message": "overloaded", "type": "server_error", "code": 503}}).encode()
    assert classify(data) == (EV_ERROR, None)


def test_an_error_string_inside_the_stream_is_an_error_event():
    assert classify(b'{"error": "boom"}') == (EV_ERROR, None)


def test_chat_request_body_streams_with_usage_and_sends_messages():
    body = json.loads(request_body(openai.CHAT, "m", "Hello there", 64))
    assert body == {
        "model": "m",
        "max_tokens": 64,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "Hello there"}],
    }


def test_completions_request_body_streams_with_usage_and_sends_a_prompt():
    body = json.loads(request_body(openai.COMPLETIONS, "m", "Once upon", 16))
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["prompt"] == "Once upon"
    assert "messages" not in body
    assert body["max_tokens"] == 16
    assert body["model"] == "m"


def test_request_body_merges_extra_body_fields():
    body = json.loads(request_body(openai.CHAT, "m", "p", 8, {"temperature": 0.2, "top_p": 0.9, "seed": 1}))
    assert body["temperature"] == 0.2
    assert body["top_p"] == 0.9
    assert body["seed"] == 1
    assert body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "p"}]


def test_extra_body_may_override_a_default_field():
    body = json.loads(request_body(openai.COMPLETIONS, "m", "p", 8, {"max_tokens": 99}))
    assert body["max_tokens"] == 99


@pytest.mark.parametrize("extra", [None, {}], ids=["none", "empty"])
def test_request_body_without_extra_has_no_other_fields(extra):
    body = json.loads(request_body(openai.CHAT, "m", "p", 8, extra))
    assert set(body) == {"model", "max_tokens", "stream", "stream_options", "messages"}


def test_request_paths_follow_the_api():
    assert openai.request_path(openai.CHAT) == "/chat/completions"
    assert openai.request_path(openai.COMPLETIONS) == "/completions"
