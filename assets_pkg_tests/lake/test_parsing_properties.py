"""Property tests of landing-file parsing (Hypothesis, derandomized: the same examples every run).

Generated files stay inside what the contract allows where the property needs it, and are
arbitrary where the property is about robustness.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from assets_pkg.contracts import SOURCES, Column
from assets_pkg.lake.parsing import (
    EARLIEST_UTC,
    LATEST_UTC,
    TIMESTAMP_PATTERN,
    UnreadableFile,
    _canonical_timestamps,
    decode,
    decode_many,
    parse_file,
    parse_money,
    parse_timestamp,
)

CSV_SOURCES = [s for s, c in SOURCES.items() if c.format == "csv"]
JSONL_SOURCES = [s for s, c in SOURCES.items() if c.format == "jsonl"]
REASONS = {
    "malformed_record",
    "bad_type",
    "missing_required",
    "bad_timestamp",
    "bad_number",
    "out_of_domain",
    "duplicate_key",
}
UNREADABLE_REASONS = {
    "not_utf8",
    "empty",
    "missing_column",
    "duplicate_column",
    "bad_csv",
    "no_json_object",
}


def fast(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --------------------------------------------------------------------------- timestamps

MAX_OFFSET = 14 * 60


@st.composite
def timestamps(draw) -> tuple[str, dt.datetime]:
    """A contract spelling of a random instant, and that instant in naive UTC."""
    local = draw(st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2200, 1, 1)))
    with_seconds = draw(st.booleans())
    fraction = draw(st.text("0123456789", min_size=1, max_size=9)) if with_seconds else ""
    with_fraction = with_seconds and draw(st.booleans())
    if not with_seconds:
        local = local.replace(second=0, microsecond=0)
    elif not with_fraction:
        local = local.replace(microsecond=0)
    else:
        local = local.replace(microsecond=int(fraction[:6].ljust(6, "0")))
    text = local.strftime("%Y-%m-%d") + draw(st.sampled_from("T ")) + local.strftime("%H:%M")
    if with_seconds:
        text += local.strftime(":%S")
    if with_fraction:
        text += "." + fraction
    style = draw(st.sampled_from(["none", "Z", "colon", "plain"]))
    minutes = 0
    if style == "Z":
        text += "Z"
    elif style in ("colon", "plain"):
        minutes = draw(st.integers(-MAX_OFFSET, MAX_OFFSET))
        sign = "-" if minutes < 0 or (minutes == 0 and draw(st.booleans())) else "+"
        hh, mm = divmod(abs(minutes), 60)
        text += f"{sign}{hh:02d}:{mm:02d}" if style == "colon" else f"{sign}{hh:02d}{mm:02d}"
    return text, local - dt.timedelta(minutes=minutes)


@fast(400)
@given(timestamps())
def test_timestamp_spellings_parse_to_the_same_utc_instant_as_python(case):
    text, expected = case
    got = pl.select(parse_timestamp(pl.lit(text, pl.String))).item()
    assert got == expected


@fast(300)
@given(st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2200, 1, 1)))
def test_python_isoformat_parses_back(value):
    got = pl.select(parse_timestamp(pl.lit(value.isoformat(), pl.String))).item()
    assert got == value


def _near_timestamps() -> st.SearchStrategy[str]:
    """Text shaped like a timestamp, every piece sometimes wrong: width, range, separators."""

    def digits(n: int) -> st.SearchStrategy[str]:
        return st.text("0123456789", min_size=max(0, n - 1), max_size=n + 1)

    pieces = st.tuples(
        st.sampled_from(["0001", "1969", "1970", "2024", "9999", "0000"]) | digits(4),
        st.sampled_from(["-"]) | st.sampled_from(["/", ""]),
        st.sampled_from(["01", "02", "12", "13", "00"]) | digits(2),
        st.just("-"),
        st.sampled_from(["01", "28", "29", "30", "31", "00"]) | digits(2),
        st.sampled_from(["T", " ", "t", "  ", ""]),
        st.sampled_from(["00", "09", "23", "24"]) | digits(2),
        st.sampled_from([":"]) | st.sampled_from([".", ""]),
        st.sampled_from(["00", "30", "59", "60"]) | digits(2),
        st.sampled_from(["", ":00", ":59", ":60", ":5", ":30."]),
        st.sampled_from(["", ".5", ".123456", ".1234567", ".999999999", ".0000015"])
        | digits(12).map(lambda d: "." + d),
        st.sampled_from(
            [
                "",
                "Z",
                "z",
                "+00:00",
                "-00:00",
                "+0900",
                "-05:30",
                "+14:00",
                "+2359",
                "+25:00",
                "+05:99",
                "+02",
                " Z",
            ]
        ),
    )
    return pieces.map("".join)


def _canonical_reading(text: pl.Series) -> pl.Series:
    """Every value through the canonical route alone, gated and range-checked."""
    utc = _canonical_timestamps(text).set(~text.str.contains(TIMESTAMP_PATTERN), None)
    return utc.set(~utc.is_between(EARLIEST_UTC, LATEST_UTC).fill_null(False), None)


@fast(600)
@given(st.lists(_near_timestamps() | st.text(max_size=30), min_size=1, max_size=40))
def test_timestamp_fast_formats_read_exactly_what_the_canonical_route_reads(texts):
    column = pl.Series("ts", texts, dtype=pl.String)
    got = pl.select(parse_timestamp(pl.lit(column))).to_series()
    assert got.to_list() == _canonical_reading(column).to_list()


# --------------------------------------------------------------------------- money

MONEY_LIMIT = Decimal("9999999999999999.99")


@st.composite
def money_texts(draw) -> tuple[str, Decimal]:
    value = draw(st.decimals(min_value=-MONEY_LIMIT, max_value=MONEY_LIMIT, places=2))
    text = f"{value:f}"
    if value == value.to_integral_value() and draw(st.booleans()):
        text = f"{value.to_integral_value():f}"
    elif text.endswith("0") and "." in text and draw(st.booleans()):
        text = text[:-1]
    if not text.startswith("-"):
        # a leading zero only where it keeps the 16-integer-digit limit
        prefixes = ["", "+", "0"] if len(text.split(".")[0]) < 16 else ["", "+"]
        text = draw(st.sampled_from(prefixes)) + text
    return text, value


@fast(400)
@given(money_texts())
def test_money_with_at_most_two_decimals_round_trips_exactly(case):
    text, value = case
    got = pl.select(parse_money(pl.lit(text, pl.String))).item()
    assert got == value
    assert got.as_tuple().exponent == -2


@fast(200)
@given(
    st.decimals(min_value=-(10**6), max_value=10**6, places=3).filter(
        lambda d: d != d.quantize(Decimal("0.01"))
    )
)
def test_money_with_three_decimals_is_rejected(value):
    assert pl.select(parse_money(pl.lit(f"{value:f}", pl.String))).item() is None


# --------------------------------------------------------------------------- robustness

CSV_BITS = [",", '"', "\n", "\r\n", " ", "\t", "x", "é", "1", "2024-03-01T10:00", "placed"]
JSON_BITS = ["{", "}", "[", "]", ":", ",", '"', "\n", " ", "1", "null", "true", '"a"', "1e3"]


def header_text(source: str) -> str:
    return ",".join(SOURCES[source].column_names) + "\n"


@st.composite
def landed_bytes(draw, source: str) -> bytes:
    kind = draw(st.sampled_from(["bytes", "csv", "jsonl", "text"]))
    if kind == "bytes":
        data = draw(st.binary(max_size=200))
    elif kind == "csv":
        body = "".join(draw(st.lists(st.sampled_from(CSV_BITS), max_size=40)))
        data = (draw(st.sampled_from([header_text(source), ""])) + body).encode()
    elif kind == "jsonl":
        data = "".join(draw(st.lists(st.sampled_from(JSON_BITS), max_size=40))).encode()
    else:
        data = draw(st.text(max_size=100)).encode()
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data


#: byte runs where UTF-8 decoders are known to differ, and whitespace only some count
TRICKY_BYTES = [
    b"\xed\xa0\x80",  # a surrogate
    b"\xc0\xaf",  # an overlong slash
    b"\xf4\x90\x80\x80",  # past U+10FFFF
    b"\xe2\x82",  # a truncated sequence
    b"\xef\xbb\xbf",  # a (second) BOM
    b"\xc2\x85",  # NEL: Unicode whitespace, not the contract's
    b"\xc2\xa0",  # no-break space
    b"\x00",
    b" \t\r\n\x0b\x0c",
    b'{"a": "\xc3\xa9"}\n',
]


@st.composite
def landed_files(draw) -> list[tuple[str, bytes]]:
    """Files as a chunk of a pass holds them: arbitrary, blank, broken or fine."""
    bodies = draw(
        st.lists(
            landed_bytes("events")
            | st.lists(st.sampled_from(TRICKY_BYTES), max_size=4).map(b"".join),
            max_size=6,
        )
    )
    return [(f"f{i}.jsonl", body) for i, body in enumerate(bodies)]


@fast(300)
@given(landed_files())
def test_decode_many_reads_and_refuses_each_file_as_decode_does(files):
    names, texts, failed = decode_many(files)
    expected_texts, expected_failed = {}, {}
    for name, data in files:
        try:
            expected_texts[name] = decode(data)
        except UnreadableFile as exc:
            expected_failed[name] = (exc.reason, str(exc))
    assert dict(zip(names, texts.to_list(), strict=True)) == expected_texts
    assert names == list(expected_texts)
    assert texts.dtype == pl.String
    assert {n: (e.reason, str(e)) for n, e in failed.items()} == expected_failed


@pytest.mark.parametrize("source", list(SOURCES))
def test_arbitrary_bytes_raise_nothing_but_unreadable_file(source):
    @fast(120)
    @given(landed_bytes(source))
    def check(data: bytes) -> None:
        try:
            parsed = parse_file(SOURCES[source], "f", data)
        except UnreadableFile as exc:
            assert exc.reason in UNREADABLE_REASONS
            return
        assert set(parsed.rejects["reason"].to_list()) <= REASONS
        numbers = parsed.valid["_row_number"].to_list() + parsed.rejects["row_number"].to_list()
        assert len(numbers) == len(set(numbers))
        assert all(n >= 1 for n in numbers)

    check()


# --------------------------------------------------------------------------- row accounting

# small pools, so keys repeat: duplicate_key and collapsed rows happen often
CELL_VALUES: dict[str, list[str]] = {
    "id": ["A", "B", " A ", "", "x,y", 'q"q'],
    "text": ["", "t", " t ", "a\nb"],
    "timestamp": ["2024-03-01T10:00", "2024-03-01 10:00:00Z", "2024-03-02", "x", ""],
    "money": ["1.00", "1", "-1", "1.234", "0", "", "x"],
    "int": ["1", "2", "0", "-1", "1.0", "", "+1"],
}
BLANK_LINES = ["", "  ", ",,", " , ,\t", "\t"]


def enum_values(column: Column) -> list[str]:
    return [*column.accepted[:2], "BAD", ""]


def cell_strategy(column: Column) -> st.SearchStrategy[str]:
    values = enum_values(column) if column.kind == "enum" else CELL_VALUES[column.kind]
    return st.sampled_from(values)


def csv_cell(value: str, quote: bool) -> str:
    if quote or any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def csv_files(draw, source: str) -> tuple[str, int]:
    """A readable CSV file of random (often bad) rows, and its number of data rows."""
    contract = SOURCES[source]
    columns = list(contract.columns)
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [",".join(c.name for c in columns)]
    n_rows = 0
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 5)) == 0:
            lines.append(draw(st.sampled_from(BLANK_LINES)))
            continue
        cells = [draw(cell_strategy(c)) for c in columns]
        if not any(v.strip() for v in cells):
            cells[0] = "Z"  # a data row has something in it (all-blank rows are blank lines)
        if draw(st.integers(0, 8)) == 0:
            cells.append("surplus")  # malformed_record
        lines.append(",".join(csv_cell(v, draw(st.booleans())) for v in cells))
        n_rows += 1
    return eol.join(lines) + eol, n_rows


@st.composite
def json_values(draw) -> object:
    return draw(
        st.one_of(
            st.sampled_from(["A", "B", " A ", "", "2024-03-01T10:00Z", "1.00", "settled"]),
            st.sampled_from(["card", "USD", "EUR", "page_view", "purchase", "x"]),
            st.integers(-2, 20),
            st.sampled_from([1.5, 12.5, 0.001, 1e3]),
            st.booleans(),
            st.none(),
            st.just([1]),
            st.just({"a": 1}),
        )
    )


@st.composite
def jsonl_files(draw, source: str) -> tuple[str, list[int]]:
    """A JSON Lines file with at least one object line, and its non-blank line numbers."""
    names = SOURCES[source].column_names
    lines: list[str] = []
    numbers: list[int] = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["object", "object", "object", "blank", "other"]))
        if kind == "blank":
            lines.append(draw(st.sampled_from(["", "  ", "\t", "\r"])))
            continue
        if kind == "other":
            lines.append(draw(st.sampled_from(["[1]", "17", '"s"', "null", "{bad", "x"])))
        else:
            chosen = draw(st.lists(st.sampled_from(names), unique=True))
            lines.append(json.dumps({n: draw(json_values()) for n in chosen}))
        numbers.append(len(lines))
    if not any(line.startswith("{") and not line.startswith("{bad") for line in lines):
        lines.append("{}")
        numbers.append(len(lines))
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"])), numbers


def assert_every_row_once(parsed, row_numbers: list[int]) -> None:
    valid_rows = parsed.valid["_row_number"].to_list()
    reject_rows = parsed.rejects["row_number"].to_list()
    seen = valid_rows + reject_rows
    assert len(seen) == len(set(seen)), "a row number appears twice"
    assert set(seen) <= set(row_numbers)
    assert parsed.valid.height + parsed.rejects.height + parsed.collapsed == len(row_numbers)
    assert set(parsed.rejects["reason"].to_list()) <= REASONS


@pytest.mark.parametrize("source", CSV_SOURCES)
def test_csv_every_data_row_ends_up_exactly_once(source):
    @fast(100)
    @given(csv_files(source))
    def check(case: tuple[str, int]) -> None:
        text, n_rows = case
        parsed = parse_file(SOURCES[source], "f", text.encode())
        assert_every_row_once(parsed, list(range(1, n_rows + 1)))

    check()


@pytest.mark.parametrize("source", JSONL_SOURCES)
def test_jsonl_every_line_ends_up_exactly_once(source):
    @fast(100)
    @given(jsonl_files(source))
    def check(case: tuple[str, list[int]]) -> None:
        text, numbers = case
        parsed = parse_file(SOURCES[source], "f", text.encode())
        assert_every_row_once(parsed, numbers)

    check()


def test_row_accounting_matches_the_csv_module_on_a_mixed_file():
    """A fixed example of the property, counted independently with the csv module."""
    text = (
        "order_id,customer_id,order_ts,status,channel\r\n"
        "O1,C1,2024-03-01T10:00,placed,web\r\n\r\n"
        "O1,C1,2024-03-01T10:00,placed,web\r\n"
        "O1,C1,2024-03-01T11:00,placed,web\r\n"
        ',,"2024-03-01",,\r\n'
        "O2,C1,2024-03-01T10:00,placed,web,extra\r\n"
    )
    records = [r for r in csv.reader(io.StringIO(text, newline=""))][1:]
    n_rows = sum(1 for r in records if any(f.strip() for f in r))
    parsed = parse_file(SOURCES["orders"], "f", text.encode())
    assert n_rows == 5
    assert_every_row_once(parsed, list(range(1, n_rows + 1)))
    # rows 1 and 2 are identical, but both differ from the winner (row 3)
    assert parsed.collapsed == 0
    assert parsed.rejects.select("row_number", "reason").rows() == [
        (1, "duplicate_key"),
        (2, "duplicate_key"),
        (4, "missing_required"),
        (5, "malformed_record"),
    ]


# --------------------------------------------------------------------------- round trip

SAFE_TEXT = st.text(
    alphabet=st.sampled_from([*"abcXYZ019 ,\"'\n;é€-_.", "\r", "|"]),
    min_size=1,
    max_size=12,
).filter(lambda s: s == s.strip(" \t\r\n\x0b\x0c") and s != "")


def column_value(column: Column) -> st.SearchStrategy[tuple[str, object]]:
    """(text as written, value expected in the lake) for one valid cell."""
    if column.kind in ("id", "text"):
        value = SAFE_TEXT.map(lambda s: (s, s))
    elif column.kind == "enum":
        value = st.sampled_from(column.accepted).map(lambda s: (s, s))
    elif column.kind == "timestamp":
        value = timestamps()
    elif column.kind == "money":
        value = st.decimals(min_value=0, max_value=MONEY_LIMIT, places=2).map(
            lambda d: (f"{d:f}", d)
        )
    else:
        lowest = int(column.minimum or 0) + (1 if column.exclusive_minimum else 0)
        value = st.integers(lowest, 10**12).map(lambda i: (str(i), i))
    if column.required:
        return value
    return st.one_of(st.just(("", None)), value)


@st.composite
def valid_csv_files(draw, source: str) -> tuple[bytes, list[dict]]:
    contract = SOURCES[source]
    key = list(contract.key)
    rows = draw(
        st.lists(
            st.fixed_dictionaries({c.name: column_value(c) for c in contract.columns}),
            max_size=8,
            unique_by=lambda r: tuple(r[k][1] for k in key),
        )
    )
    present = [c.name for c in contract.columns if c.required or draw(st.booleans())]
    header = draw(st.permutations([*present, "extra_col"]))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [",".join(header)]
    expected = []
    for number, row in enumerate(rows, start=1):
        cells = []
        for name in header:
            written = "junk, ignored" if name == "extra_col" else row[name][0]
            if draw(st.booleans()) and not any(ch in written for ch in ',"\r\n'):
                written = draw(st.sampled_from(["", " ", "\t"])) + written + " "
                cells.append(written)
            else:
                cells.append(csv_cell(written, draw(st.booleans())))
        lines.append(",".join(cells))
        expected.append(
            {c.name: row[c.name][1] if c.name in present else None for c in contract.columns}
            | {"_row_number": number}
        )
    text = eol.join(lines) + draw(st.sampled_from([eol, ""]) if rows else st.just(eol))
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    return bom + text.encode(), expected


@pytest.mark.parametrize("source", CSV_SOURCES)
def test_valid_csv_rows_load_with_exactly_the_values_written(source):
    contract = SOURCES[source]
    schema = {c.name: c.dtype for c in contract.columns} | {"_row_number": pl.Int64()}

    @fast(60)
    @given(valid_csv_files(source))
    def check(case: tuple[bytes, list[dict]]) -> None:
        data, expected = case
        parsed = parse_file(contract, "f", data)
        assert parsed.rejects.height == 0, parsed.rejects.to_dicts()
        assert parsed.collapsed == 0
        got = parsed.valid.drop("_file_name", "_raw").sort("_row_number")
        assert_frame_equal(got, pl.DataFrame(expected, schema=schema, orient="row"))

    check()
