"""Which secret values may go in an HTTP header: every boundary named."""

import pytest

from apps.core.headers import header_value_problem


@pytest.mark.parametrize(
    "value",
    ["", "sk-abc", "rdy_0123456789", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", " !~", "a b", "x" * 4096],
)
def test_printable_ascii_is_a_safe_header_value(value):
    assert header_value_problem(value) is None


@pytest.mark.parametrize(
    "value, words",
    [
        ("sk-abc\r\nX-Evil: 1", "character 7 is a line break"),
        ("sk-abc\nX-Evil: 1", "character 7 is a line break"),
        ("\rsk", "character 1 is a line break"),
        ("sk\x00", "character 3 is a control character"),
        ("sk\tabc", "character 3 is a control character"),
        ("sk\x1fabc", "character 3 is a control character"),
        ("sk\x7fabc", "character 3 is a control character"),
        ("sk-é", "character 4 is not ASCII"),
        ("sk-\x80", "character 4 is not ASCII"),
        ("sk-\u2028", "character 4 is not ASCII"),
        ("sk-🔑", "character 4 is not ASCII"),
    ],
)
def test_control_characters_and_non_ascii_are_refused_by_position_without_the_value(value, words):
    problem = header_value_problem(value)
    assert words in problem
    assert "sk" not in problem
