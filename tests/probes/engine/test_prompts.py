"""Prompt sets: deterministic synthetic prompts of a given length, and JSONL files."""

import json

import pytest

from apps.probes.engine.prompts import Prompt, PromptSet

# --- synthetic -----------------------------------------------------------------------------------


def texts(prompt_set: PromptSet) -> list[str]:
    return [p.text for p in prompt_set.prompts]


def test_synthetic_prompts_are_the_same_for_the_same_seed():
    a = PromptSet.synthetic(prompt_tokens=64, count=20, seed=7)
    b = PromptSet.synthetic(prompt_tokens=64, count=20, seed=7)
    assert a.prompts == b.prompts


def test_synthetic_prompts_differ_for_a_different_seed():
    a = PromptSet.synthetic(prompt_tokens=64, count=20, seed=7)
    b = PromptSet.synthetic(prompt_tokens=64, count=20, seed=8)
    assert all(x != y for x, y in zip(texts(a), texts(b), strict=True))


@pytest.mark.parametrize("tokens", [1, 2, 16, 200, 1000])
def test_synthetic_prompts_have_the_requested_approx_tokens_and_about_that_many_words(tokens):
    prompt_set = PromptSet.synthetic(prompt_tokens=tokens, count=10, seed=1)
    assert len(prompt_set.prompts) == 10
    for prompt in prompt_set.prompts:
        assert prompt.approx_tokens == tokens
        assert abs(len(prompt.text.split()) - tokens) <= max(1, tokens // 10)


def test_synthetic_prompts_are_about_four_characters_per_token():
    for prompt in PromptSet.synthetic(prompt_tokens=500, count=5, seed=2).prompts:
        assert 3.5 <= len(prompt.text) / prompt.approx_tokens <= 6.5


def test_synthetic_prompts_with_a_spread_vary_within_it():
    prompt_set = PromptSet.synthetic(prompt_tokens=100, count=200, seed=3, spread=0.2)
    lengths = [p.approx_tokens for p in prompt_set.prompts]
    assert all(80 <= n <= 120 for n in lengths)
    assert len(set(lengths)) > 10
    for prompt in prompt_set.prompts:
        assert len(prompt.text.split()) == prompt.approx_tokens


def test_every_synthetic_prompt_has_a_unique_prefix():
    prompt_set = PromptSet.synthetic(prompt_tokens=8, count=300, seed=5)
    first_words = [t.split()[0] for t in texts(prompt_set)]
    assert len(set(first_words)) == 300
    assert len(set(texts(prompt_set))) == 300
    assert first_words[0] == "[5-0]"
    assert first_words[299] == "[5-299]"


def test_synthetic_prompt_sets_of_different_seeds_do_not_share_prefixes():
    a = {t.split()[0] for t in texts(PromptSet.synthetic(prompt_tokens=4, count=50, seed=1))}
    b = {t.split()[0] for t in texts(PromptSet.synthetic(prompt_tokens=4, count=50, seed=2))}
    assert not a & b


def test_synthetic_rejects_a_non_positive_length():
    with pytest.raises(ValueError, match="prompt_tokens must be at least 1"):
        PromptSet.synthetic(prompt_tokens=0)


def test_next_cycles_through_the_prompts_in_order():
    prompt_set = PromptSet([Prompt("a", 1), Prompt("b", 1), Prompt("c", 1)])
    assert [prompt_set.next().text for _ in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]


def test_an_empty_prompt_set_is_rejected():
    with pytest.raises(ValueError, match="the prompt set is empty"):
        PromptSet([])


# --- JSONL ---------------------------------------------------------------------------------------


def write_lines(tmp_path, lines: list[str], name: str = "prompts.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_from_jsonl_accepts_prompt_text_messages_and_plain_strings(tmp_path):
    path = write_lines(
        tmp_path,
        [
            json.dumps({"prompt": "Summarise this report."}),
            json.dumps({"text": "Translate to French: cheese"}),
            json.dumps(
                {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello?"}]}
            ),
            json.dumps("A plain string prompt"),
        ],
    )
    prompt_set = PromptSet.from_jsonl(path)
    assert texts(prompt_set) == [
        "Summarise this report.",
        "Translate to French: cheese",
        "Be brief.\nHello?",
        "A plain string prompt",
    ]


def test_from_jsonl_estimates_four_characters_per_token(tmp_path):
    path = write_lines(tmp_path, [json.dumps({"prompt": "x" * 400}), json.dumps({"prompt": "hi"})])
    assert [p.approx_tokens for p in PromptSet.from_jsonl(path).prompts] == [100, 1]


def test_from_jsonl_skips_blank_lines(tmp_path):
    path = write_lines(tmp_path, ["", json.dumps({"prompt": "one"}), "   ", "", json.dumps({"prompt": "two"}), ""])
    assert texts(PromptSet.from_jsonl(path)) == ["one", "two"]


def test_from_jsonl_accepts_crlf_files(tmp_path):
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(b'{"prompt": "one"}\r\n{"prompt": "two"}\r\n')
    assert texts(PromptSet.from_jsonl(path)) == ["one", "two"]


def test_from_jsonl_rejects_a_line_that_is_not_json_with_file_and_line(tmp_path):
    path = write_lines(tmp_path, [json.dumps({"prompt": "ok"}), "", "{not json"])
    with pytest.raises(ValueError, match=rf"^{path}:3: not JSON") as excinfo:
        PromptSet.from_jsonl(path)
    assert excinfo.value.__cause__ is None  # the message says it all; no JSON traceback chained


def test_from_jsonl_rejects_an_object_without_a_prompt_with_file_and_line(tmp_path):
    path = write_lines(tmp_path, [json.dumps({"prompt": "ok"}), json.dumps({"question": "where is it?"})])
    with pytest.raises(ValueError, match=rf'^{path}:2: expected a string or an object with "prompt"'):
        PromptSet.from_jsonl(path)


@pytest.mark.parametrize("line", ["42", "[1, 2]", "null", '{"prompt": 5}'])
def test_from_jsonl_rejects_values_that_are_not_prompts(tmp_path, line):
    path = write_lines(tmp_path, [line])
    with pytest.raises(ValueError, match=rf"^{path}:1: "):
        PromptSet.from_jsonl(path)


def test_from_jsonl_of_an_empty_file_is_rejected(tmp_path):
    path = write_lines(tmp_path, [""])
    with pytest.raises(ValueError, match="the prompt set is empty"):
        PromptSet.from_jsonl(path)


def test_from_jsonl_accepts_a_string_path(tmp_path):
    path = write_lines(tmp_path, [json.dumps({"prompt": "one"})])
    assert texts(PromptSet.from_jsonl(str(path))) == ["one"]


def test_from_jsonl_keeps_unicode_line_separators_inside_json_strings(tmp_path):
    path = write_lines(
        tmp_path,
        [json.dumps({"prompt": "a\u2028b"}, ensure_ascii=False), json.dumps({"text": "c\x85d"}, ensure_ascii=False)],
    )
    assert texts(PromptSet.from_jsonl(path)) == ["a\u2028b", "c\x85d"]
