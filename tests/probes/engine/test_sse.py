"""SSEParser: WHATWG line endings, comments, multi-line data, any chunking of the same bytes."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.probes.engine.sse import MalformedStream, SSEParser


def parse_whole(stream: bytes, **kwargs) -> list[tuple[bytes, bytes]]:
    parser = SSEParser(**kwargs)
    return parser.feed(stream) + parser.close()


def parse_chunks(chunks, **kwargs) -> list[tuple[bytes, bytes]]:
    parser = SSEParser(**kwargs)
    events = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events + parser.close()


def test_lf_line_endings_dispatch_one_event_per_blank_line():
    stream = b"data: one\n\ndata: two\n\n"
    assert parse_whole(stream) == [(b"message", b"one"), (b"message", b"two")]


def test_crlf_line_endings_dispatch_the_same_events_as_lf():
    stream = b"data: one\r\n\r\ndata: two\r\n\r\n"
    assert parse_whole(stream) == [(b"message", b"one"), (b"message", b"two")]


def test_lone_cr_line_endings_dispatch_the_same_events_as_lf():
    stream = b"data: one\r\rdata: two\r\r"
    assert parse_whole(stream) == [(b"message", b"one"), (b"message", b"two")]


def test_mixed_line_endings_in_one_stream_are_all_understood():
    stream = b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r"
    assert parse_whole(stream) == [(b"message", b"a\nb\nc"), (b"message", b"d")]


def test_feed_returns_events_as_soon_as_their_blank_line_arrives():
    parser = SSEParser()
    assert parser.feed(b"data: one\n") == []
    assert parser.feed(b"\n") == [(b"message", b"one")]
    assert parser.feed(b"data: two\n\n") == [(b"message", b"two")]
    assert parser.close() == []


def test_comment_and_keep_alive_lines_are_ignored():
    stream = b": ping\n\n:\n\ndata: x\n: ping in the middle\ndata: y\n\n: ping\r\n\r\n"
    assert parse_whole(stream) == [(b"message", b"x\ny")]


def test_a_blank_line_without_data_dispatches_nothing():
    assert parse_whole(b"\n\n\r\n\r\r\n") == []


def test_multi_line_data_is_joined_with_newlines():
    stream = b"data: first\ndata: second\ndata:third\n\n"
    assert parse_whole(stream) == [(b"message", b"first\nsecond\nthird")]


def test_only_one_leading_space_after_the_colon_is_removed():
    assert parse_whole(b"data:  two spaces\n\n") == [(b"message", b" two spaces")]
    assert parse_whole(b"data:no space\n\n") == [(b"message", b"no space")]


def test_a_data_field_with_an_empty_value_dispatches_empty_data():
    assert parse_whole(b"data:\n\n") == [(b"message", b"")]
    assert parse_whole(b"data\n\n") == [(b"message", b"")]


def test_event_names_are_reported_and_reset_after_each_dispatch():
    stream = b"event: error\ndata: {}\n\ndata: plain\n\nevent:update\ndata: u\n\n"
    assert parse_whole(stream) == [(b"error", b"{}"), (b"message", b"plain"), (b"update", b"u")]


def test_an_event_name_without_data_is_forgotten_at_the_blank_line():
    assert parse_whole(b"event: lonely\n\ndata: x\n\n") == [(b"message", b"x")]


def test_id_retry_and_unknown_fields_do_not_disturb_data():
    stream = b"id: 7\nretry: 1000\nfoo: bar\ndata: x\n\n"
    assert parse_whole(stream) == [(b"message", b"x")]


def test_a_cr_at_the_end_of_one_feed_followed_by_lf_in_the_next_is_one_line_ending():
    parser = SSEParser()
    events = []
    for chunk in (b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"):
        events += parser.feed(chunk)
    events += parser.close()
    # Were CR and LF two line endings, a blank line would split "a" and "b" into two events.
    assert events == [(b"message", b"a\nb")]


def test_a_crlf_split_across_feeds_inside_an_event_does_not_dispatch_it_early():
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\ndata: b\r\n") == []
    assert parser.feed(b"\r\n") == [(b"message", b"a\nb")]


def test_a_cr_at_the_end_of_one_feed_followed_by_other_bytes_is_a_line_ending():
    parser = SSEParser()
    events = parser.feed(b"data: a\r")
    events += parser.feed(b"\rdata: b\r")
    events += parser.feed(b"\r")
    events += parser.close()
    assert events == [(b"message", b"a"), (b"message", b"b")]


def test_an_event_whose_blank_line_ends_in_a_lone_cr_is_dispatched_by_the_feed_that_carries_it():
    parser = SSEParser()
    assert parser.feed(b"data: a\r\r") == [(b"message", b"a")]
    assert parser.feed(b"\ndata: b\r\r") == [(b"message", b"b")]  # the LF completes the CRLF: no extra line


def test_empty_feeds_change_nothing():
    parser = SSEParser()
    events = []
    for chunk in (b"", b"data: a\r", b"", b"\n", b"", b"\r\n", b""):
        events += parser.feed(chunk)
    assert events == [(b"message", b"a")]


MIXED_STREAM = (
    b': keep-alive\r\n\r\nevent: token\r\ndata: {"a": 1}\r\n\r\ndata: line one\rdata: line two\r\rdata: [DONE]\n\n'
)
MIXED_EVENTS = [(b"token", b'{"a": 1}'), (b"message", b"line one\nline two"), (b"message", b"[DONE]")]


def test_the_reference_stream_parses_as_expected_when_fed_whole():
    assert parse_whole(MIXED_STREAM) == MIXED_EVENTS


def test_a_stream_split_in_two_at_every_possible_byte_offset_gives_the_same_events():
    for cut in range(len(MIXED_STREAM) + 1):
        assert parse_chunks([MIXED_STREAM[:cut], MIXED_STREAM[cut:]]) == MIXED_EVENTS, cut


def test_a_stream_split_in_three_at_every_pair_of_offsets_gives_the_same_events():
    n = len(MIXED_STREAM)
    for a in range(n + 1):
        for b in range(a, n + 1):
            chunks = [MIXED_STREAM[:a], MIXED_STREAM[a:b], MIXED_STREAM[b:]]
            assert parse_chunks(chunks) == MIXED_EVENTS, (a, b)


def test_a_stream_fed_one_byte_at_a_time_gives_the_same_events():
    chunks = [MIXED_STREAM[i : i + 1] for i in range(len(MIXED_STREAM))]
    assert parse_chunks(chunks) == MIXED_EVENTS


@pytest.mark.parametrize("tail", [b"", b"\n", b"\r\n", b"\r"], ids=["none", "lf", "crlf", "cr"])
def test_close_flushes_an_event_that_lacks_its_final_blank_line(tail):
    parser = SSEParser()
    assert parser.feed(b"data: a\n\ndata: last" + tail) == [(b"message", b"a")]
    assert parser.close() == [(b"message", b"last")]


def test_close_flushes_a_named_multi_line_event_without_its_blank_line():
    parser = SSEParser()
    assert parser.feed(b"event: e\ndata: x\ndata: y") == []
    assert parser.close() == [(b"e", b"x\ny")]


def test_close_on_a_finished_stream_returns_nothing():
    parser = SSEParser()
    parser.feed(b"data: a\n\n")
    assert parser.close() == []


def test_close_ignores_a_trailing_comment():
    parser = SSEParser()
    assert parser.feed(b"data: a\n\n: bye") == [(b"message", b"a")]
    assert parser.close() == []


def test_an_unterminated_line_longer_than_max_line_raises_malformed_stream():
    parser = SSEParser(max_line=16)
    with pytest.raises(MalformedStream, match="longer than 16 bytes"):
        parser.feed(b"data: " + b"x" * 32)


def test_a_line_that_grows_past_max_line_across_feeds_raises_malformed_stream():
    parser = SSEParser(max_line=16)
    assert parser.feed(b"data: xxxx") == []
    assert parser.feed(b"xxxx") == []
    with pytest.raises(MalformedStream):
        parser.feed(b"xxxxxxxxxx")


def test_a_pending_line_of_exactly_max_line_bytes_is_accepted():
    parser = SSEParser(max_line=16)
    assert parser.feed(b"data: 0123456789") == []  # 16 bytes, no line ending yet
    assert parser.feed(b"\n\n") == [(b"message", b"0123456789")]


def test_many_short_lines_in_one_feed_do_not_count_against_max_line():
    parser = SSEParser(max_line=16)
    stream = b"data: 0123456789\n" * 50 + b"\n"
    assert parser.feed(stream) == [(b"message", b"\n".join([b"0123456789"] * 50))]


# --- properties ---------------------------------------------------------------------------------

line_text = st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20)
eol = st.sampled_from(["\n", "\r\n", "\r"])
event_name = st.one_of(st.none(), st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8))


@st.composite
def sse_streams(draw):
    """(bytes of a stream, the events it carries) with a random line ending on every line."""
    events = draw(
        st.lists(
            st.tuples(event_name, st.lists(line_text, min_size=1, max_size=4), st.booleans()),
            max_size=8,
        )
    )
    lines: list[str] = []
    expected = []
    for name, data_lines, with_comment in events:
        if with_comment:
            lines.append(": ping")
        if name is not None:
            lines.append(f"event: {name}")
        lines.extend(f"data: {d}" for d in data_lines)
        lines.append("")  # the blank line that dispatches
        expected.append(((name or "message").encode(), "\n".join(data_lines).encode()))
    drop_final_blank_line = bool(lines) and draw(st.booleans())
    if drop_final_blank_line:
        lines.pop()
    out = []
    previous = None
    for line in lines:
        ending = draw(eol)
        if previous == "\r" and line == "" and ending == "\n":
            # "\r" then an empty line ended by "\n" would serialise to one CRLF, i.e. one line ending.
            ending = "\r\n"
        out.append(line + ending)
        previous = ending
    if drop_final_blank_line and out and draw(st.booleans()):
        out[-1] = out[-1].rstrip("\r\n")  # and maybe the last line ending too
    return "".join(out).encode(), expected


@st.composite
def stream_and_chunks(draw):
    stream, expected = draw(sse_streams())
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    return stream, chunks, expected


@settings(max_examples=200, deadline=None, database=None)
@given(stream_and_chunks())
def test_any_chunking_of_a_stream_yields_the_same_events_as_the_whole_stream(case):
    stream, chunks, expected = case
    assert b"".join(chunks) == stream
    assert parse_chunks(chunks) == parse_whole(stream)


@settings(max_examples=200, deadline=None, database=None)
@given(stream_and_chunks())
def test_any_chunking_of_a_stream_yields_exactly_the_original_payloads(case):
    _, chunks, expected = case
    assert parse_chunks(chunks) == expected


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(line_text, max_size=10), eol, st.data())
def test_payload_lists_survive_serialisation_with_one_line_ending_and_any_chunking(payloads, ending, data):
    stream = "".join(f"data: {p}{ending}{ending}" for p in payloads).encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    expected = [(b"message", p.encode()) for p in payloads]
    assert parse_whole(stream) == expected
    assert parse_chunks(chunks) == expected
