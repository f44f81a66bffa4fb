"""The Polars fast path of the JSON Lines reader gives exactly what the line-by-line reader does.

``_read_jsonl_rows_exact`` (Python's json module, line by line) is the reference. The fast
path reads the lines of a file's common shapes with regular expressions and sends every other
line to the reference code; the frames (columns, dtypes, values, row order, ``_row_number``,
``_malformed``, ``_bad_type``, ``_raw``) and the ``UnreadableFile`` raised must be identical.
"""

from __future__ import annotations

import json

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from assets_pkg.contracts import SOURCES
from assets_pkg.lake import parsing
from assets_pkg.lake.parsing import (
    UnreadableFile,
    _common_shapes,
    _read_jsonl_rows_exact,
    _read_jsonl_rows_fast,
    read_jsonl_files,
    read_jsonl_rows,
)

JSONL_SOURCES = [s for s, c in SOURCES.items() if c.format == "jsonl"]

FAST = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def outcome(read, contract, text: str) -> tuple:
    """The frame read, or the exception raised (type, reason, detail or message)."""
    try:
        return ("frame", read(contract, text))
    except UnreadableFile as exc:
        return ("unreadable", exc.reason, exc.detail)
    except Exception as exc:  # the exact reader's failure is the reference
        return ("error", type(exc), str(exc))


def assert_same_as_exact(source: str, text: str, read=_read_jsonl_rows_fast) -> None:
    contract = SOURCES[source]
    expected = outcome(_read_jsonl_rows_exact, contract, text)
    got = outcome(read, contract, text)
    assert got[0] == expected[0], (got, expected)
    if expected[0] == "frame":
        assert_frame_equal(got[1], expected[1])
    else:
        assert got == expected


# --------------------------------------------------------------------------- generated lines

EXTRA_NAMES = ["extra", "x", "a:b", "a,b", " ", "", "é", "{", "}"]
# JSON text of a member name: plain, or spelled with escapes (the same name to the json module)
ESCAPED_NAMES = ['"event\\u005fid"', '"payment\\u005fid"', '"a\\"b"', '"\\u00e9"', '"\\ud800"']
STRING_CHARS = [*"abcAZ09 ,:{}[]-_./", '"', "\\", "\t", "\x00", "\x1f", "\x7f", "é", "€", "😀"]
RAW_NUMBERS = [
    "0",
    "-0",
    "7",
    "-12",
    "1.5",
    "-0.25",
    "1e3",
    "1E+5",
    "-2.50e-3",
    "12.50",
    "123456789012345678901234567890",
    "1.0e400",
    "0123",  # the rest are not JSON numbers
    "1.",
    ".5",
    "+1",
    "1e",
    "--1",
    "NaN",
    "Infinity",
    "-Infinity",
]
WHITESPACE_BITS = ["", "", "", " ", "\t", "  \t", "\r", "\x0b", "\x0c", "\u00a0"]


@st.composite
def json_string(draw) -> str:
    """A JSON string token: escape-free, escaped by json.dumps, or raw (maybe invalid)."""
    value = draw(st.text(st.sampled_from(STRING_CHARS), max_size=8))
    style = draw(st.sampled_from(["plain", "plain", "dumps", "ascii", "raw", "escape"]))
    if style == "plain":
        return '"' + "".join(c for c in value if c not in '"\\' and c >= " ") + '"'
    if style == "dumps":
        return json.dumps(value, ensure_ascii=False)
    if style == "ascii":
        return json.dumps(value)
    if style == "escape":
        return '"' + draw(st.sampled_from(["\\u00e9", "\\ud800", '\\"', "\\n", "\\/", "\\x"])) + '"'
    return '"' + value + '"'  # may hold a bare quote, backslash or control character


@st.composite
def json_value(draw, names: list[str]) -> str:
    kind = draw(st.sampled_from(["string", "string", "number", "literal", "nested", "name"]))
    if kind == "string":
        return draw(json_string())
    if kind == "number":
        return draw(
            st.one_of(
                st.sampled_from(RAW_NUMBERS),
                st.integers(-(10**30), 10**30).map(str),
                st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
            )
        )
    if kind == "literal":
        return draw(st.sampled_from(["true", "false", "null", "True", "nul", "truex"]))
    if kind == "name":  # a contract name as a value, so it can be mistaken for a member
        return json.dumps(draw(st.sampled_from(names)))
    return draw(st.sampled_from(['{"a": 1}', "[1, 2]", "{}", "[]", '{"event_id": "E"}']))


@st.composite
def object_line(draw, names: list[str], shape: list[str]) -> str:
    ws = st.sampled_from(WHITESPACE_BITS)
    members = []
    for name in shape:
        if draw(st.integers(0, 30)) == 0:
            name_text = draw(st.sampled_from(ESCAPED_NAMES))
        else:
            name_text = json.dumps(name, ensure_ascii=False)
        members.append(f"{name_text}{draw(ws)}:{draw(ws)}{draw(json_value(names))}")
    separator = f"{draw(ws)},{draw(ws)}"
    body = separator.join(members)
    if members and draw(st.integers(0, 40)) == 0:
        body += ","  # a trailing comma: not JSON
    return f"{draw(ws)}{{{draw(ws)}{body}{draw(ws)}}}{draw(ws)}"


OTHER_LINES = [
    "[1]",
    "5",
    '"x"',
    "null",
    "{bad",
    "{",
    "}",
    "x",
    '{"a": 1}{"b": 2}',
    "\ufeff{}",
    "{}",
    "{ }",
    '{"event_id": NaN}',
    '{"payment_id": "P1" "order_id": "O1"}',
    '{"a": 1, "a": 2}',
]
BLANK_LINES = ["", " ", "\t", "\r", " \x0b\x0c ", "\u00a0"]


@st.composite
def jsonl_text(draw, source: str) -> str:
    """A file whose lines mostly share a few shapes, with hostile lines mixed in."""
    names = SOURCES[source].column_names
    pool = [*names, *EXTRA_NAMES]
    contract_prefix = st.permutations(names).flatmap(
        lambda order: st.integers(0, len(order)).map(lambda k: list(order[:k]))
    )
    any_names = st.lists(st.sampled_from(pool), max_size=6)  # names may repeat: malformed
    shapes = draw(st.lists(st.one_of(contract_prefix, any_names), min_size=1, max_size=3))
    lines = []
    for _ in range(draw(st.integers(0, 40))):
        kind = draw(st.integers(0, 9))
        if kind < 7:
            lines.append(draw(object_line(names, draw(st.sampled_from(shapes)))))
        elif kind == 7:
            lines.append(draw(st.sampled_from(OTHER_LINES)))
        elif kind == 8:
            lines.append(draw(st.sampled_from(BLANK_LINES)))
        else:
            lines.append(draw(st.text(max_size=20)).replace("\n", ""))
    ends = st.sampled_from(["\n", "\n", "\r\n", "\r\r\n"])
    text = "".join(line + draw(ends) for line in lines)
    if draw(st.booleans()):
        text = text.rstrip("\n")
    return text


@st.composite
def simple_jsonl_text(draw, source: str) -> str:
    """A file of escape-free flat objects of contract fields: the fast path's own ground."""
    names = SOURCES[source].column_names
    shape = draw(st.permutations(names))
    plain = st.text(st.sampled_from([*"abc09 :,{}[]-é€😀", "\x7f"]), max_size=6)
    value = st.one_of(
        plain.map(lambda s: f'"{s}"'),
        st.sampled_from([*RAW_NUMBERS[:12], "true", "false", "null", '"null"', '""']),
        st.sampled_from([f'"{n}"' for n in names]),
    )
    lines = []
    for _ in range(draw(st.integers(1, 30))):
        kept = [n for n in shape if draw(st.integers(0, 5))]
        ws = st.sampled_from(["", " ", "\t"])
        members = [f'"{n}"{draw(ws)}:{draw(ws)}{draw(value)}' for n in kept]
        lines.append(draw(ws) + "{" + ",".join(members) + "}" + draw(ws))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("source", JSONL_SOURCES)
def test_fast_path_equals_the_exact_reader_on_hostile_files(source):
    @FAST
    @given(jsonl_text(source))
    def check(text: str) -> None:
        assert_same_as_exact(source, text)

    check()


@pytest.mark.parametrize("source", JSONL_SOURCES)
def test_fast_path_equals_the_exact_reader_on_simple_files(source):
    @FAST
    @given(simple_jsonl_text(source))
    def check(text: str) -> None:
        assert_same_as_exact(source, text)

    check()


@pytest.mark.parametrize("source", JSONL_SOURCES)
def test_read_jsonl_rows_equals_the_exact_reader_on_large_files(source):
    """Above the size threshold, the public reader takes the fast path."""

    @settings(FAST, max_examples=15)
    @given(st.lists(jsonl_text(source), min_size=1, max_size=3))
    def check(texts: list[str]) -> None:
        text = "\n".join(texts)
        text = "\n".join([text] * (parsing.FAST_MIN_LINES // max(1, text.count("\n")) + 1))
        assert text.count("\n") + 1 >= parsing.FAST_MIN_LINES
        assert_same_as_exact(source, text, read=read_jsonl_rows)

    check()


# --------------------------------------------------------------------------- examples

CASES = {
    "numbers as written": '{"payment_id": -0, "amount": 1.50e3, "order_id": 1234567890123456789}',
    "huge number": '{"payment_id": 123456789012345678901234567890123456789012345678901234567890}',
    "booleans and null": '{"payment_id": true, "amount": false, "order_id": null}',
    "missing and extra keys": '{"payment_id": "P1", "note": "x", "other": 1}',
    "name as a value": '{"note": "payment_id", "payment_id": "P1"}',
    "value holding ': '": '{"order_id": ": ", "payment_id": "P1"}',
    "duplicate contract key": '{"payment_id": "P1", "payment_id": "P2"}',
    "duplicate extra key": '{"x": 1, "payment_id": "P1", "x": 2}',
    "duplicate key of colons": '{":": "x", ":": 1}',
    "escaped quote": '{"payment_id": "a\\"b"}',
    "unicode escape": '{"payment_id": "caf\\u00e9"}',
    "escaped name": '{"payment\\u005fid": "P1"}',
    "lone surrogate escape": '{"payment_id": "\\ud800"}',
    "raw control character": '{"payment_id": "a\tb"}',
    "raw DEL and unicode": '{"payment_id": "a\x7fé€😀"}',
    "nested object": '{"payment_id": {"a": 1}}',
    "nested array": '{"payment_id": [1]}',
    "leading zero": '{"payment_id": 0123}',
    "NaN": '{"amount": NaN}',
    "trailing comma": '{"payment_id": "P1",}',
    "non-breaking space": '{"payment_id":\u00a0"P1"}',
    "vertical tab": '{"payment_id":\x0b"P1"}',
    "CR inside": '{"payment_id":\r"P1"}',
    "array line": "[1]",
    "number line": "5",
    "string line": '"x"',
    "two objects": '{"payment_id": "P1"}{"payment_id": "P2"}',
    "BOM": '\ufeff{"payment_id": "P1"}',
    "empty object": "{ }",
    "tabs and spaces": '\t{ "payment_id" :\t"P1" , "amount":1 }\t',
}
PLAIN = '{"payment_id": "P0", "order_id": "O0", "amount": 1, "currency": "USD"}'


@pytest.mark.parametrize("case", list(CASES))
def test_tricky_lines_read_as_the_exact_reader_reads_them(case):
    line = CASES[case]
    # many plain lines so the sample chooses their shape, the tricky line among them
    text = "\r\n".join([PLAIN] * 20 + [line, line.replace("P1", "P9")] + [PLAIN] * 20) + "\r\n"
    assert _common_shapes(text.split("\n"))
    assert_same_as_exact("payments", text)
    assert_same_as_exact("payments", line + "\n")


def test_a_tricky_line_alone_reads_alike_with_its_own_shape():
    for line in CASES.values():
        assert_same_as_exact("payments", "\n".join([line] * 8))


def test_most_lines_of_a_producer_file_take_the_fast_path():
    lines = [PLAIN.replace("P0", f"P{i}") for i in range(600)] + ['{"payment_id": [1]}']
    text = "\n".join(lines) + "\n\n   \n"
    shapes = _common_shapes(text.split("\n"))
    read = parsing._read_shapes(
        parsing._line_frame(pl.Series("_raw", text.split("\n"))),
        shapes,
        SOURCES["payments"].column_names,
    )
    assert read["_fast"].sum() == 600
    assert_same_as_exact("payments", text, read=read_jsonl_rows)
    got = read_jsonl_rows(SOURCES["payments"], text)
    assert got["_row_number"].to_list() == list(range(1, 602))
    assert got.filter(pl.col("_malformed") | pl.col("_bad_type").is_not_null()).height == 1


@pytest.mark.parametrize(
    "text",
    ["", "\n\n", " \r\n\t\n", "[1]\n5\n", '"x"\n{bad\n', "\n".join(["[1]"] * 700)],
)
def test_no_json_object_is_unreadable_alike(text):
    for read in (_read_jsonl_rows_fast, read_jsonl_rows):
        assert_same_as_exact("events", text, read=read)
    with pytest.raises(UnreadableFile, match="no_json_object"):
        _read_jsonl_rows_fast(SOURCES["events"], text)


def test_a_raw_lone_surrogate_fails_as_the_exact_reader_does():
    text = "\n".join([PLAIN] * 10 + ['{"payment_id": "a\ud800"}'])
    assert_same_as_exact("payments", text)


# --------------------------------------------------------------------------- many files at once


def assert_files_read_as_each_alone(source: str, texts: list[str]) -> None:
    """``read_jsonl_files`` gives each file the rows (or the failure) it has read alone."""
    contract = SOURCES[source]
    named = [(f"f{i:03d}.jsonl", text) for i, text in enumerate(texts)]
    rows, failed = read_jsonl_files(contract, named)
    for name, text in named:
        alone = outcome(_read_jsonl_rows_exact, contract, text)
        if alone[0] == "frame":
            assert name not in failed
            got = rows.filter(pl.col("_file_name") == name).drop("_file_name")
            assert_frame_equal(got, alone[1])
        else:
            assert (alone[1], alone[2]) == (failed[name].reason, failed[name].detail)
            assert rows.filter(pl.col("_file_name") == name).height == 0
    # rows come in the order of the files given, then of their lines
    order = rows.select(pl.col("_file_name"), pl.col("_row_number"))
    assert order.equals(order.sort("_file_name", "_row_number"))


@pytest.mark.parametrize("source", JSONL_SOURCES)
def test_many_files_read_together_equal_each_file_alone(source):
    @FAST
    @given(st.lists(jsonl_text(source), min_size=1, max_size=6))
    def check(texts: list[str]) -> None:
        texts = [t for t in texts if t.strip(parsing.WHITESPACE)]  # empty files: never read
        if texts:
            assert_files_read_as_each_alone(source, texts)

    check()


def test_small_producer_files_read_together_take_the_fast_path():
    files = [
        "\n".join(PLAIN.replace("P0", f"P{i}-{j}") for j in range(5)) + "\n" for i in range(40)
    ]
    files += ["[1]\n5\n", '{"payment_id": [1]}\r\n' + PLAIN + "\r\n", "\n\n" + PLAIN]
    assert_files_read_as_each_alone("payments", files)
    rows, failed = read_jsonl_files(
        SOURCES["payments"], [(f"f{i:03d}", t) for i, t in enumerate(files)]
    )
    assert list(failed) == ["f040"]  # no JSON object in it
    assert rows.height == 40 * 5 + 2 + 1


def test_shapes_that_are_prefixes_of_one_another_share_one_pattern():
    shapes = [("a", "b", "c"), ("a", "b"), ("x", "y"), ("a", "b", "c", "d"), ("x",), ("b", "a")]
    assert parsing._merged_shapes(shapes) == [
        (("a", "b", "c", "d"), 2),
        (("x", "y"), 1),
        (("b", "a"), 2),
    ]
    pattern = parsing._shape_pattern(("a", "b", "c"), ["a", "c"], 1)
    lines = pl.Series(
        [
            '{"a": 1}',
            '{"a": 1, "b": "x"}',
            '{ "a":1 ,"b":"x", "c" : null }',
            '{"a": 1, "c": 2}',  # b left out in the middle: not a prefix
            '{"b": "x"}',
            "{}",
            '{"a": 1, "b": "x", "c": 3, "d": 4}',
        ]
    )
    found = lines.str.extract_groups(pattern)
    assert found.struct.field("obj").is_not_null().to_list() == [1, 1, 1, 0, 0, 0, 0]
    assert found.struct.field("c0").to_list()[:3] == ["1", "1", "1"]
    assert found.struct.field("c1").to_list()[:3] == [None, None, "null"]


def test_a_rare_shape_is_read_fast_once_the_common_ones_leave_its_lines():
    # 1 line in 40 is a purchase with an order_id: too rare for the first sample to choose
    # its shape, common among the lines the first shapes leave
    def line(i: int) -> str:
        tail = f', "order_id": "O{i}"' if i % 40 == 0 else ""
        return (
            f'{{"event_id": "E{i}", "session_id": "S1", "user_id": "C1", "event_type": "view",'
            f' "event_ts": "2024-01-01T00:00:00Z", "page_url": "https://x/"{tail}}}'
        )

    lines = [line(i) for i in range(4000)] + ['{"event_id": "E1", "user_id": [1]}']
    text = "\n".join(lines) + "\n"
    shapes = _common_shapes(text.split("\n"))
    assert len(shapes) == 1  # the purchases' shape is not among them
    read = parsing._read_shapes(
        parsing._line_frame(pl.Series("_raw", text.split("\n"))),
        shapes,
        SOURCES["events"].column_names,
    )
    assert read["_fast"].to_list() == [True] * 4000 + [False]
    assert_same_as_exact("events", text, read=read_jsonl_rows)
    got = read_jsonl_rows(SOURCES["events"], text)
    assert got["order_id"].to_list()[:41:40] == ["O0", "O40"]


def test_events_with_and_without_a_product_are_read_in_one_pass_as_the_exact_reader_does():
    def line(i: int, tail: str) -> str:
        return (
            f'{{"event_id": "E{i}", "session_id": "S1", "user_id": "C1", "event_type": "view",'
            f' "event_ts": "2024-01-01T00:00:00Z", "page_url": "https://x/"{tail}}}'
        )

    lines = [line(i, f', "product_id": "P{i}"' if i % 3 else "") for i in range(600)]
    lines += [line(900, ', "product_id": "P1", "extra": 1'), '{"event_id": "E1", "user_id": "C"}']
    text = "\n".join(lines) + "\n"
    shapes = _common_shapes(text.split("\n"))
    assert len(shapes) == 2 and len(parsing._merged_shapes(shapes)) == 1
    read = parsing._read_shapes(
        parsing._line_frame(pl.Series("_raw", text.split("\n"))),
        shapes,
        SOURCES["events"].column_names,
    )
    assert read["_fast"].to_list() == [True] * 600 + [False, False]  # the blank end is no line
    assert_same_as_exact("events", text, read=read_jsonl_rows)
    got = read_jsonl_rows(SOURCES["events"], text)
    assert got["product_id"].to_list()[:4] == [None, "P1", "P2", None]
