"""CSV files with quoted fields read by Polars give exactly what the csv module gives.

``read_csv_rows`` hands a file to Polars when its quoting is simple (whole single-line
fields, no quote inside); everything else goes to the strict RFC 4180 reader. Generated
files mixing plain, simply quoted, doubled-quote, multi-line and malformed fields must
read the same either way, or fail the same way.
"""

from __future__ import annotations

import csv
import io
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from assets_pkg.contracts import SOURCES
from assets_pkg.lake import parsing
from assets_pkg.lake.parsing import UnreadableFile, read_csv_rows

ORDERS = SOURCES["orders"]
HEADER = ["order_id", "customer_id", "order_ts", "status", "channel", "note"]
CHARS = [*"abcO19 -:TZ.", ",", '"', "'", "\r", "\n", "\t", "é"]


@st.composite
def field(draw) -> str:
    value = draw(st.text(alphabet=st.sampled_from(CHARS), max_size=8))
    style = draw(st.sampled_from(["plain", "quoted", "quoted", "spaced", "broken"]))
    if style == "quoted" or (style == "plain" and any(c in value for c in ',"\r\n')):
        return '"' + value.replace('"', '""') + '"'
    if style == "spaced":
        return ' "' + value.replace('"', '""') + '" '
    if style == "broken":
        return '"' + value + '"x'
    return value


@st.composite
def csv_text(draw) -> str:
    header = draw(st.permutations(HEADER))
    # full rows and surplus fields; a short row's raw_record is spelled differently by the
    # two readers whatever the quoting ("1" vs "1,,,,,"), a known difference not tested here
    width = len(HEADER)
    rows = draw(st.lists(st.lists(field(), min_size=width, max_size=width + 2), max_size=6))
    ends = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [",".join(header)] + [",".join(r) for r in rows]
    return ends.join(lines) + draw(st.sampled_from(["", ends]))


def outcome(read, text: str) -> tuple:
    """Valid rows and rejects once validated (the readers may spell an empty field as "" or
    null; validation makes both null), or the reason the file is unreadable."""
    try:
        parsed = parsing.validate(ORDERS, "f.csv", read(text))
    except UnreadableFile as exc:
        return ("unreadable", exc.reason, exc.detail)
    return ("frame", parsed.valid, parsed.rejects, parsed.collapsed)


def assert_same(got: tuple, want: tuple) -> None:
    assert got[0] == want[0], (got, want)
    if got[0] == "frame":
        assert_frame_equal(got[1], want[1])
        assert_frame_equal(got[2], want[2])
        assert got[3] == want[3]
    else:
        assert got == want


def strict(text: str):
    header, _ = parsing._csv_header(text)
    parsing._check_header(ORDERS, header)
    return parsing._csv_slow(text, header)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_text())
def test_quoted_files_read_as_the_strict_reader_reads_them(text: str):
    assert_same(outcome(lambda t: read_csv_rows(ORDERS, t), text), outcome(strict, text))


@pytest.mark.parametrize(
    ("line", "fast"),
    [
        ('O1,C1,2024-01-01T00:00:00Z,placed,web,"exported, v2"', True),
        ('"O1","C1","2024-01-01T00:00:00Z","placed","web",""', True),
        ('O1,C1,2024-01-01T00:00:00Z,placed,web,"say ""hi"""', False),
        ('O1,C1,2024-01-01T00:00:00Z,placed,web, "spaced"', False),
        ('O1,C1,2024-01-01T00:00:00Z,placed,web,"two\nlines"', False),
        ('O1,C1,2024-01-01T00:00:00Z,placed,web,"text"after', False),
    ],
)
def test_only_simple_quoting_takes_the_fast_path(line: str, fast: bool):
    text = ",".join(HEADER) + "\n" + line + "\n"
    assert (parsing._csv_fast(text, HEADER) is not None) == fast
    assert_same(outcome(lambda t: read_csv_rows(ORDERS, t), text), outcome(strict, text))


@st.composite
def unquoted_text(draw) -> str:
    """Files without a quote: full rows, surplus fields, blank and whitespace records."""
    header = draw(st.permutations(HEADER))
    value = st.text(alphabet=st.sampled_from([*"abcO19 -:TZ.", "\t", "é"]), max_size=6)
    width = len(HEADER)
    rows = draw(st.lists(st.lists(value, min_size=width, max_size=width + 1), max_size=6))
    rows += draw(st.lists(st.sampled_from([[""], [" "], [""] * width, ["\t"] * width])))
    rows = draw(st.permutations(rows))
    ends = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [",".join(header)] + [",".join(r) for r in rows]
    return ends.join(lines) + draw(st.sampled_from(["", ends]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unquoted_text())
def test_files_without_quotes_read_as_the_strict_reader_reads_them(text: str):
    # the fast path joins such a file's values without quoting them, and looks for blank
    # records only where the first field is blank
    assert_same(outcome(lambda t: read_csv_rows(ORDERS, t), text), outcome(strict, text))


def whole_text_header(text: str) -> tuple:
    """The header as a reader over the whole text finds it (what ``_csv_header`` must give)."""
    try:
        return parsing._read_header(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        return ("bad_csv",)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["", " ", "\t,", "\r"]), max_size=3),
    st.lists(field(), min_size=1, max_size=4),
    csv_text(),
    st.integers(min_value=0, max_value=40),
)
def test_the_header_read_from_a_prefix_is_the_whole_texts(
    blanks: list[str], first: list[str], text: str, prefix: int
):
    """Any cut of the prefix (before the header, inside a quoted one, past it) reads the
    same header, blank records before it, or refusal as a reader over the whole text."""
    text = "".join(line + "\n" for line in blanks) + ",".join(first) + "\n" + text
    with mock.patch.object(parsing, "HEADER_PREFIX", prefix):
        try:
            got: tuple = parsing._csv_header(text)
        except UnreadableFile as exc:
            assert exc.reason == "bad_csv"
            got = ("bad_csv",)
    assert got == whole_text_header(text)
