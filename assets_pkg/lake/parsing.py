"""Landing-file parsing and row validation: bytes in, typed rows and rejects out.

Pure functions (no I/O beyond the bytes handed in). A file that cannot be read as its
format raises :class:`UnreadableFile`; every row of a readable file ends either in the
valid frame or in the rejects frame with the contract's reason code.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from assets_pkg.contracts import MONEY, TIMESTAMP, Column, SourceContract

WHITESPACE = " \t\r\n\x0b\x0c"
BOM = b"\xef\xbb\xbf"

# [0-9], not \d: the regex engine's \d also matches other scripts' digits
TIMESTAMP_PATTERN = (
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-5][0-9])"
    r"(?::([0-5][0-9])(?:\.([0-9]+))?)?(Z|[+-][0-9]{2}:?[0-9]{2})?$"
)
MONEY_PATTERN = r"^[+-]?[0-9]{1,16}(\.[0-9]{1,2})?$"
# any number of digits (leading zeros included); a value beyond Int64 fails the cast
INT_PATTERN = r"^-?[0-9]+$"

# Beyond these a UTC instant has no calendar date in Python or Arrow's date32 conversion, so
# it could be neither partitioned nor reported: such a timestamp is bad_timestamp.
EARLIEST_UTC = dt.datetime(1, 1, 1)
LATEST_UTC = dt.datetime(9999, 12, 31, 23, 59, 59, 999999)

# The csv module's default 128 KiB field limit would quarantine a quoted file as bad_csv
# that the columnar reader loads when unquoted; a field can be no longer than its file.
csv.field_size_limit(2**31 - 1)

REJECT_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "file_name": pl.String(),
    "row_number": pl.Int64(),
    "reason": pl.String(),
    "detail": pl.String(),
    "raw_record": pl.String(),
    "partition_date": pl.Date(),
    "order_ref": pl.String(),  # the row's order_id, to date an item's reject by its order
}


class UnreadableFile(Exception):
    """The file cannot be read as its format; it is quarantined whole."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class ParsedFile:
    """Rows of one landed file, validated."""

    source: str
    file_name: str
    valid: pl.DataFrame  # typed contract columns + _file_name, _row_number
    rejects: pl.DataFrame  # REJECT_SCHEMA
    collapsed: int  # rows dropped as identical repeats (or redeliveries, for events)


#: a byte that is not WHITESPACE: UTF-8 spells no other character with an ASCII byte, so a
#: file without one is blank, and looking for one stops at the first (no copy of the text)
_NOT_WHITESPACE = re.compile(b"[^" + re.escape(WHITESPACE.encode()) + b"]")


def _payload(data: bytes) -> bytes:
    """A landed file's bytes without its BOM, or UnreadableFile("empty") if it is blank.

    A blank file is ASCII, so it is blank whether or not it is UTF-8: checking first gives
    the result ``decode`` gives.
    """
    if data.startswith(BOM):
        data = data[len(BOM) :]
    if _NOT_WHITESPACE.search(data) is None:
        raise UnreadableFile("empty", "the file is empty")
    return data


def _utf8(payload: bytes) -> str:
    """The text of a file's payload (``_payload``), or UnreadableFile("not_utf8")."""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(
            "not_utf8", f"not UTF-8: byte 0x{payload[exc.start]:02x} at offset {exc.start}"
        ) from None


def decode(data: bytes) -> str:
    """UTF-8 text of a landed file (BOM allowed), or UnreadableFile."""
    return _utf8(_payload(data))


def decode_many(
    files: Sequence[tuple[str, bytes]],
) -> tuple[list[str], pl.Series, dict[str, Exception]]:
    """``decode`` of many files at once: the names read, their texts as a String Series in
    that order, and the files that could not be read (an ``UnreadableFile``) by name.

    The bytes go to Polars as they are and are checked as UTF-8 there: decoding each file
    to a Python string (and copying it back) held the GIL the parse threads share. Where
    the check fails, each file is decoded alone, which names the files and the byte.
    """
    read: list[tuple[str, bytes]] = []
    failed: dict[str, Exception] = {}
    for name, data in files:
        try:
            read.append((name, _payload(data)))
        except UnreadableFile as exc:
            failed[name] = exc
    try:
        texts = pl.Series("_raw", [p for _, p in read], dtype=pl.Binary).cast(pl.String)
    except pl.exceptions.PolarsError:
        decoded: list[tuple[str, str]] = []
        for name, payload in read:
            try:
                decoded.append((name, _utf8(payload)))
            except UnreadableFile as exc:
                failed[name] = exc
        texts = pl.Series("_raw", [t for _, t in decoded], dtype=pl.String)
        return [n for n, _ in decoded], texts, failed
    return [n for n, _ in read], texts, failed


# --------------------------------------------------------------------------- CSV


def _is_blank_record(record: list[str]) -> bool:
    return not any(field.strip(WHITESPACE) for field in record)


def _read_header(reader: Iterator[list[str]]) -> tuple[list[str], int]:
    """The first non-blank record, trimmed, and how many blank records came before it."""
    skipped = 0
    for record in reader:
        if not _is_blank_record(record):
            return [h.strip(WHITESPACE) for h in record], skipped
        skipped += 1
    return [], skipped


#: the header is looked for in the text's lines up to this many characters first
HEADER_PREFIX = 1 << 16


def _csv_header(text: str) -> tuple[list[str], int]:
    # A reader over the whole text copies it first (1.4 ms for 0.8 MB of orders, some 1.5
    # CPU seconds of a 10M-item pass): the lines of a prefix cut at a line end hold the
    # same first records. Only a header past it, or cut by it (the reader refuses the
    # quote left open), needs the whole text.
    def header_of(lines: str) -> tuple[list[str], int]:
        return _read_header(csv.reader(io.StringIO(lines, newline=""), strict=True))

    cut = text.find("\n", HEADER_PREFIX) + 1
    if cut:
        try:
            header, skipped = header_of(text[:cut])
            if header:
                return header, skipped
        except csv.Error:
            pass
    try:
        return header_of(text)
    except csv.Error as exc:
        raise UnreadableFile("bad_csv", f"cannot read the CSV header: {exc}") from None


def _check_header(contract: SourceContract, header: list[str]) -> None:
    missing = [c for c in contract.required if c not in header]
    if missing:
        raise UnreadableFile(
            "missing_column", f"required column(s) {', '.join(missing)} missing from the header"
        )
    seen: set[str] = set()
    dupes = sorted({h for h in header if h in seen or seen.add(h)})
    if dupes:
        raise UnreadableFile("duplicate_column", f"header names {', '.join(dupes)} more than once")


def _blank(columns: list[str]) -> pl.Expr:
    """A record whose fields are all empty or whitespace: a blank line, not a row."""
    return pl.all_horizontal(
        [pl.col(c).is_null() | (pl.col(c).str.strip_chars(WHITESPACE) == "") for c in columns]
    )


#: a whole field in quotes, on one line, with no quote inside: read alike by Polars and by the
#: csv module (its value is the text between the quotes)
SIMPLE_QUOTED_FIELD = re.compile(r'(?:^|(?<=,))"[^"\r\n]*"(?=,|\r?$)', re.MULTILINE)


def _csv_fast(text: str, header: list[str], encoded: bytes | None = None) -> pl.DataFrame | None:
    """Polars' reader, for files without quoting or with simple quoting only; ``encoded`` is
    ``text`` in UTF-8 where the caller has it (the landed bytes), saving a copy.

    Anything else (a quote inside a field, text after a closing quote, a line break in
    quotes) gets the strict RFC 4180 path: Polars tolerates what the csv module rejects.
    """
    unquoted = SIMPLE_QUOTED_FIELD.sub("", text) if '"' in text else text
    if '"' in unquoted:
        return None
    if "\r" in unquoted and "\r" in unquoted.replace("\r\n", ""):
        return None  # a lone CR ends a record for the csv module, Polars keeps it in the value
    # A record with a field too many fails Polars' read (and goes to the strict reader),
    # except a last line with no line end, where one surplus empty field ("a,b,") is dropped
    # without a word: only that line is looked at, so malformed_record stays exact. (A regex
    # scan of every line for it cost a quarter of this function.)
    if unquoted[unquoted.rfind("\n") + 1 :].count(",") >= len(header):
        return None
    try:
        df = pl.read_csv(
            text.encode() if encoded is None else encoded,
            has_header=True,
            infer_schema=False,
            new_columns=[f"c{i}" for i in range(len(header))],
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError:
        # the strict reader is the authority: it reads lone CR line ends, ragged rows and
        # whatever else the columnar reader refuses, with exact row numbers
        return None
    if df.width != len(header):
        return None
    df = df.rename({f"c{i}": h for i, h in enumerate(header)})
    first = pl.col(header[0])
    if df.select((first.is_null() | (first.str.strip_chars(WHITESPACE) == "")).any()).item():
        df = df.filter(~_blank(header))  # a blank record's first field is blank: rarely any
    return df.with_columns(
        _row_number=pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
        _malformed=pl.lit(False),
        _bad_type=pl.lit(None, pl.String),
    )


def _csv_slow(text: str, header: list[str]) -> pl.DataFrame:
    """The csv module, row by row: exact row numbers and field counts."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    width = len(header)
    rows: list[list[str]] = []
    raws: list[str] = []
    malformed: list[bool] = []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")  # so values with line breaks are quoted
    try:
        _read_header(reader)
        for record in reader:
            if _is_blank_record(record):
                continue  # a blank record (empty line, only separators or empties) is no row
            malformed.append(len(record) > width)
            rows.append((record + [""] * width)[:width])
            out.seek(0)
            out.truncate()
            writer.writerow(record)
            raws.append(out.getvalue()[:-1])
    except csv.Error as exc:
        raise UnreadableFile(
            "bad_csv", f"not RFC 4180 CSV at line {reader.line_num}: {exc}"
        ) from None
    columns = list(zip(*rows, strict=True)) if rows else [()] * width
    df = pl.DataFrame(
        {h: pl.Series(h, col, dtype=pl.String) for h, col in zip(header, columns, strict=True)}
    )
    return df.with_columns(
        _row_number=pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
        _malformed=pl.Series(malformed, dtype=pl.Boolean),
        _bad_type=pl.lit(None, pl.String),
        _raw=pl.Series(raws, dtype=pl.String),
    )


def _csv_quote(expr: pl.Expr) -> pl.Expr:
    """A value of the fast path as the csv module writes it: in quotes if it has a comma.

    The fast path's values hold no quote and no line break (``_csv_fast``), so a comma is
    the one character that makes the csv module quote them.
    """
    quoted = pl.lit('"') + expr + pl.lit('"')
    return pl.when(expr.str.contains(",", literal=True)).then(quoted).otherwise(expr).fill_null("")


def read_csv_rows(
    contract: SourceContract, text: str, encoded: bytes | None = None
) -> pl.DataFrame:
    """The records of a CSV text; ``encoded``, if given, is ``text`` in UTF-8."""
    header, blank_before = _csv_header(text)
    _check_header(contract, header)
    # the columnar reader's own header handling need not agree on blank leading records
    df = None if blank_before else _csv_fast(text, header, encoded)
    if df is None:
        return _csv_slow(text, header)
    # without a quote in the file no value has a comma: the record is its values joined
    fields = [_csv_quote(pl.col(h)) if '"' in text else pl.col(h).fill_null("") for h in header]
    return df.with_columns(_raw=pl.concat_str(fields, separator=","))


# --------------------------------------------------------------------------- JSON Lines


def _json_text(value: object) -> tuple[str | None, bool]:
    """A JSON value as contract text; the flag says it was an object or array."""
    if value is None:
        return None, False
    if isinstance(value, bool):
        return ("true" if value else "false"), False
    if isinstance(value, dict | list):
        return None, True
    text = str(value)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate escape such as "\ud800"
            return None, True
    return text, False


class _NotJson(ValueError):
    """Text Python's json module accepts but JSON does not, or that is ambiguous."""


def _reject_constant(name: str) -> object:
    # NaN and Infinity are not JSON; read as text they would become "nan" and "inf"
    raise _NotJson(f"{name} is not a JSON value")


def _unique_names(pairs: list[tuple[str, object]]) -> dict[str, object]:
    record = dict(pairs)
    if len(record) != len(pairs):
        # which copy a producer meant is unknowable, as with a CSV header naming a column twice
        raise _NotJson("an object names a field twice")
    return record


def _json_record(line: str) -> object:
    try:
        return json.loads(
            line,
            parse_float=str,
            parse_int=str,
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_names,
        )
    except (ValueError, RecursionError):
        return None


def _numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    """Non-blank lines (CR line ends dropped) with their 1-based numbers among all lines."""
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if line.strip(WHITESPACE):
            yield number, line


def _read_jsonl_lines(
    names: list[str], lines: Iterable[tuple[int, str]]
) -> tuple[pl.DataFrame, int]:
    """Numbered lines read one by one with Python's json module, and how many were objects."""
    values: dict[str, list[str | None]] = {n: [] for n in names}
    row_numbers: list[int] = []
    raws: list[str] = []
    malformed: list[bool] = []
    bad_type: list[str | None] = []
    objects = 0
    for number, line in lines:
        record = _json_record(line)
        row_numbers.append(number)
        raws.append(line)
        if not isinstance(record, dict):
            malformed.append(True)
            bad_type.append(None)
            for n in names:
                values[n].append(None)
            continue
        objects += 1
        malformed.append(False)
        first_bad = None
        for n in names:
            text_value, nested = _json_text(record.get(n))
            if nested and first_bad is None:
                first_bad = n
            values[n].append(text_value)
        bad_type.append(first_bad)
    frame = pl.DataFrame(
        {n: pl.Series(n, values[n], dtype=pl.String) for n in names}
        | {
            "_row_number": pl.Series(row_numbers, dtype=pl.Int64),
            "_malformed": pl.Series(malformed, dtype=pl.Boolean),
            "_bad_type": pl.Series(bad_type, dtype=pl.String),
            "_raw": pl.Series(raws, dtype=pl.String),
        }
    )
    return frame, objects


def _no_json_object() -> UnreadableFile:
    return UnreadableFile("no_json_object", "no line is a JSON object: not JSON Lines")


def _read_jsonl_rows_exact(contract: SourceContract, text: str) -> pl.DataFrame:
    """The reference reader: every line through Python's json module."""
    frame, objects = _read_jsonl_lines(contract.column_names, _numbered_lines(text))
    if objects == 0:
        raise _no_json_object()
    return frame


# The fast path reads lines of one "shape": a flat object whose members are named in a given
# order, with scalar values written without escapes or control characters, and only spaces and
# tabs between tokens. Such a line is valid JSON, and its strings hold no quote or backslash.
_JSON_WS = r"[ \t]*"
_JSON_STRING = r'"[^"\\\x00-\x1f]*"'
_JSON_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_JSON_SCALAR = rf"(?:{_JSON_STRING}|{_JSON_NUMBER}|true|false|null)"
# A guess at a line's member names (strings followed by a colon), right for simple lines; a
# wrong guess costs only time, as a shape's own pattern decides which lines it reads.
_JSON_MEMBER_NAME = re.compile(r'"([^"]*)"([ \t]*:)?')
_SIMPLE_NAME = re.compile(r'[^"\\\x00-\x1f]*')
FAST_MIN_LINES = 500  # below this the fast path's fixed cost (about 2 ms) outweighs its gain
SHAPE_SAMPLE = 64  # lines looked at to choose the shapes worth reading
MIN_SHAPE_SHARE = 16  # a shape is read if at least 1/16 of the sampled lines have it
MAX_SHAPES = 8


def _shape_pattern(shape: tuple[str, ...], columns: list[str], least: int | None = None) -> str:
    """A regex matching exactly the lines of ``shape``: ``{"a": 1, "b": "x"}`` for ``(a, b)``,
    or of any of its prefixes of at least ``least`` members.

    Group ``obj`` captures the opening brace, so it is set iff the line matched; group ``c<i>``
    captures the value token of contract column ``i`` where the shape names it. The members
    past ``least`` nest, each optional inside the one before (``a(,b(,c)?)?``), so at every
    byte one path goes on: the regex stays one-pass, which its captures need to be cheap
    (a member optional on its own would cost 3x).
    """
    if not _is_shape(shape):
        raise ValueError(f"not a shape: {shape!r}")  # the JSON would be invalid or malformed
    least = len(shape) if least is None else least
    parts = []
    for k, name in enumerate(shape):
        value = f"(?P<c{columns.index(name)}>{_JSON_SCALAR})" if name in columns else _JSON_SCALAR
        comma = f",{_JSON_WS}" if k else ""
        member = f'{comma}"{pl.escape_regex(name)}"{_JSON_WS}:{_JSON_WS}{value}{_JSON_WS}'
        parts.append(f"(?:{member}" if k >= least else member)
    body = "".join(parts) + ")?" * (len(shape) - least)
    return rf"^{_JSON_WS}(?P<obj>\{{){_JSON_WS}{body}\}}{_JSON_WS}$"


def _merged_shapes(shapes: list[tuple[str, ...]]) -> list[tuple[tuple[str, ...], int]]:
    """``shapes`` as (shape, least) patterns (``_shape_pattern``): a shape that is a prefix of
    another, or the other of it, shares its pattern, commonest first.

    Producers often leave out trailing members that have no value (events without a
    product): one pattern reads both kinds of line in one pass, where each shape's own
    pattern ran the longer lines through the commoner shape's pattern to its failing end
    first.
    """
    merged: list[tuple[tuple[str, ...], int]] = []
    for shape in shapes:
        for i, (members, least) in enumerate(merged):
            longer, shorter = (members, shape) if len(members) >= len(shape) else (shape, members)
            if longer[: len(shorter)] == shorter:
                merged[i] = (longer, min(least, len(shape)))
                break
        else:
            merged.append((shape, len(shape)))
    return merged


def _token_text(token: pl.Expr) -> pl.Expr:
    """A scalar token as the exact reader gives it.

    Python's json reads an escape-free string as its content verbatim, a number (with
    ``parse_int=str``, ``parse_float=str``) as written, ``true``/``false`` as that text
    through ``_json_text``, and ``null`` (like a missing member) as null.
    """
    # a string token's content holds no quote, so stripping quotes takes off its own two
    # (one pass over the text, not a prefix's then a suffix's: 0.079 s against 0.11 s for
    # a chunk of events)
    return pl.when(token != "null").then(token.str.strip_chars('"'))


def _is_shape(names: tuple[str, ...]) -> bool:
    """Member names a simple line can have: distinct, and written without escapes."""
    return len(set(names)) == len(names) and all(_SIMPLE_NAME.fullmatch(n) for n in names)


def _common_shapes(lines: list[str]) -> list[tuple[str, ...]]:
    """The shapes of many lines of an even sample of ``lines``, the commonest first."""
    sample = [line for line in lines[:: -(-len(lines) // SHAPE_SAMPLE) or 1] if line]
    shapes = Counter(
        tuple(name for name, colon in _JSON_MEMBER_NAME.findall(line) if colon) for line in sample
    )
    return [
        shape
        for shape, count in shapes.most_common(MAX_SHAPES)
        if count * MIN_SHAPE_SHARE >= len(sample) and _is_shape(shape)
    ]


def _line_frame(raw: pl.Series, file_of: pl.Series | None = None) -> pl.DataFrame:
    """Lines of one text, or of many (``file_of`` says whose: column ``_file``): CR line ends
    dropped, numbered among all lines of their text, blank ones left out."""
    number = pl.int_range(1, pl.len() + 1, dtype=pl.Int64)
    frame = raw.to_frame() if file_of is None else pl.DataFrame([raw, file_of.alias("_file")])
    return frame.with_columns(
        pl.col("_raw").str.strip_chars_end("\r"),
        _row_number=number if file_of is None else number.over("_file"),
    ).filter(pl.col("_raw").str.strip_chars(WHITESPACE) != "")


def _read_shapes(
    lines: pl.DataFrame, shapes: list[tuple[str, ...]], columns: list[str]
) -> pl.DataFrame:
    """The lines (``_line_frame``), the fields of those of a shape read (``_fast``), others null.

    Each pattern (``_merged_shapes``) runs only on the lines no commoner one matched (any
    pattern that matches a line reads it alike): a pattern that fails usually fails at the
    line's end, and running every pattern on every line cost one full match per pattern per
    line. When ``shapes`` leave many lines unread, the shapes common among those lines are
    read too: a producer's rarer kind of line (a purchase event with its ``order_id``, 1 in
    130) is too rare to be chosen from a sample of all lines, and the exact reader costs
    20 µs a line. Columns of ``lines`` other than ``_raw`` and ``_row_number`` (the file a
    line is from) are kept.
    """
    raw = lines["_raw"]
    tokens = {n: pl.repeat(None, raw.len(), dtype=pl.String, eager=True) for n in columns}
    fast = pl.repeat(False, raw.len(), dtype=pl.Boolean, eager=True)
    todo = pl.int_range(raw.len(), dtype=pl.UInt32, eager=True)
    tried = list(shapes)
    queue = _merged_shapes(shapes)
    for _ in range(MAX_SHAPES):
        if not queue and todo.len() >= SHAPE_SAMPLE:
            left = raw.gather(todo.gather_every(-(-todo.len() // SHAPE_SAMPLE))).to_list()
            fresh = [shape for shape in _common_shapes(left) if shape not in tried]
            tried += fresh
            queue = _merged_shapes(fresh)
        if not queue or todo.is_empty():
            break
        shape, least = queue.pop(0)
        first = todo.len() == raw.len()
        found = (raw if first else raw.gather(todo)).str.extract_groups(
            _shape_pattern(shape, columns, least)
        )
        hit = found.struct.field("obj").is_not_null()
        if first:
            # the commonest shape, tried on every line: its groups are null where a line
            # did not match, so they are the tokens as they stand (no scatter)
            fast = hit
            for i, n in enumerate(columns):
                if n in shape:
                    tokens[n] = found.struct.field(f"c{i}")
        else:
            at = todo.filter(hit)
            fast.scatter(at, True)
            for i, n in enumerate(columns):
                if n in shape:
                    tokens[n].scatter(at, found.struct.field(f"c{i}").filter(hit))
        todo = todo.filter(~hit)
    extra = [c for c in lines.columns if c not in ("_raw", "_row_number")]
    # eager frames: a lazy query's planning costs more than reading a small file
    return lines.select(
        *[_token_text(pl.lit(tokens[n])).alias(n) for n in columns],
        pl.col("_row_number"),
        pl.lit(False).alias("_malformed"),
        pl.lit(None, pl.String).alias("_bad_type"),
        pl.col("_raw"),
        *extra,
        pl.lit(fast).alias("_fast"),
    )


def _read_rest(columns: list[str], read: pl.DataFrame) -> pl.DataFrame:
    """``read`` with the lines no shape read (``_fast`` false) read by the exact reader."""
    if read["_fast"].all():
        return read.drop("_fast")
    at = (~read["_fast"]).arg_true()
    rest = read.filter(~pl.col("_fast"))
    slow, _ = _read_jsonl_lines(
        columns, zip(rest["_row_number"].to_list(), rest["_raw"].to_list(), strict=True)
    )
    # one row per line read, in order: each goes back to its line's place (no sort)
    read = read.drop("_fast")
    return read.with_columns(
        [read[c].clone().scatter(at, slow[c]) for c in [*columns, "_malformed", "_bad_type"]]
    )


def read_jsonl_files(
    contract: SourceContract, texts: Sequence[tuple[str, str]]
) -> tuple[pl.DataFrame, dict[str, Exception]]:
    """Many decoded JSON Lines files read together: each file's ``read_jsonl_rows`` rows.

    Events arrive as thousands of small files: read one by one, each pays the fast path's
    fixed cost, so the lines of all of them are read in one pass (``_file_name`` says whose,
    rows in file then line order). A file with no JSON object is returned in the failures.
    """
    names = [name for name, _ in texts]
    return read_jsonl_texts(
        contract, names, pl.Series("_raw", [text for _, text in texts], dtype=pl.String)
    )


def read_jsonl_texts(
    contract: SourceContract, names: list[str], texts: pl.Series
) -> tuple[pl.DataFrame, dict[str, Exception]]:
    """``read_jsonl_files`` of the files ``names`` whose texts are ``texts``, in that order."""
    columns = contract.column_names
    # split by Polars, not str.split: no Python string per line, and the GIL stays free for
    # the other parse threads (as str.split, an empty text is one empty line)
    lines = texts.str.split("\n")
    counts = lines.list.len()
    raw = lines.explode()
    del lines
    step = max(1, -(-raw.len() // SHAPE_SAMPLE))
    shapes = _common_shapes(raw.gather_every(step).to_list())
    file_of = pl.select(
        pl.int_range(len(names), dtype=pl.Int32).repeat_by(counts).explode()
    ).to_series()
    rows = _read_rest(columns, _read_shapes(_line_frame(raw, file_of), shapes, columns))
    objects = rows.group_by("_file").agg((~pl.col("_malformed")).sum().alias("objects"))
    with_object = set(objects.filter(pl.col("objects") > 0)["_file"].to_list())
    failed: dict[str, Exception] = {
        names[i]: _no_json_object() for i in range(len(names)) if i not in with_object
    }
    rows = rows.filter(pl.col("_file").is_in(list(with_object))).with_columns(
        _file_name=pl.col("_file").replace_strict(
            list(range(len(names))), names, return_dtype=pl.String
        )
    )
    return rows.drop("_file"), failed


def read_jsonl_rows(contract: SourceContract, text: str) -> pl.DataFrame:
    """The lines of a JSON Lines file as contract text, exactly as ``_read_jsonl_rows_exact``.

    Small files go to the exact reader; otherwise ``_read_jsonl_rows_fast``.
    """
    if text.count("\n") + 1 < FAST_MIN_LINES:
        return _read_jsonl_rows_exact(contract, text)
    return _read_jsonl_rows_fast(contract, text)


def _read_jsonl_rows_fast(contract: SourceContract, text: str) -> pl.DataFrame:
    """``_read_jsonl_rows_exact`` with the common lines read by Polars.

    Producers write nearly every line alike, so the file's common shapes (``_shape_pattern``)
    are read with one regular expression each. Every other line (nested values, escapes,
    other whitespace, invalid JSON, a member name given twice, a rare shape) goes through
    Python's json module line by line as before. A line of a shape is a JSON object with
    distinct member names and no nested value: not malformed, no bad type, and each contract
    field the text of its value (``_token_text``) or null where it has no member.
    """
    columns = contract.column_names
    lines = text.split("\n")
    shapes = _common_shapes(lines)
    if not shapes:
        return _read_jsonl_rows_exact(contract, text)
    try:
        raw = pl.Series("_raw", lines, dtype=pl.String)
    except UnicodeEncodeError:  # a lone surrogate: the exact reader decides what happens
        return _read_jsonl_rows_exact(contract, text)
    rows = _read_rest(columns, _read_shapes(_line_frame(raw), shapes, columns))
    if not (~rows["_malformed"]).any():
        raise _no_json_object()
    return rows


# --------------------------------------------------------------------------- values


def parse_timestamp(expr: pl.Expr) -> pl.Expr:
    """ISO-8601 text (the contract's spellings) to naive UTC; anything else to null."""
    return expr.map_batches(_timestamps, return_dtype=TIMESTAMP, is_elementwise=True)


# With seconds, a spelling is a fixed-width local time, then an optional fraction and zone
_FRACTION = r"^\.([0-9]+)"
_OFFSET = r"([+-])([0-9]{2}):?([0-9]{2})$"


def _timestamps(text: pl.Series) -> pl.Series:
    # The contract's pattern decides what is a timestamp. What it admits with seconds is
    # a fixed-width local time (one plain format) plus a fraction and an offset taken by
    # arithmetic: 2.4x cheaper than rebuilding every value from the pattern's groups and
    # parsing that with an offset (``_canonical_timestamps``, the reference the property
    # tests hold this to). Without seconds, the local time ends at the minutes: no fraction.
    # Every parse is uncached (``cache=False``): nearly every value differs, so the cache of
    # parsed strings Polars keeps by default only costs (513k events' values: 0.041 s to
    # 0.028 s to parse the local times).
    spelled = text.str.contains(TIMESTAMP_PATTERN).fill_null(False)
    utc = (
        text.str.slice(0, 19)
        .str.replace(" ", "T", literal=True, n=1)
        .str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S", strict=False, cache=False)
    )
    # a spelled value has its seconds where that parse reads a time: else the 17th
    # character is no ":" (or the date or time is invalid, which the route from the minutes
    # finds as well); cheaper than cutting out the character (24 ms a million values)
    with_seconds = spelled & utc.is_not_null()
    # most values end at the seconds or in "Z": already UTC, nothing more to take. Told by
    # length (a spelled value is ASCII), so only the rest of those with more is cut out
    n = text.str.len_bytes()
    tail = ((n > 20) | ((n == 20) & ~text.str.ends_with("Z"))).fill_null(False)
    if tail.any():
        at = tail.arg_true()
        utc = utc.scatter(at, _with_tail(utc.gather(at), text.gather(at).str.slice(19)))
    utc = utc.set(~with_seconds, None)
    no_seconds = spelled & ~with_seconds
    if no_seconds.any():
        # the same route, from the minutes: 2.5x cheaper than the canonical one
        short = text.filter(no_seconds)
        local = (
            short.str.slice(0, 16)
            .str.replace(" ", "T", literal=True, n=1)
            .str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M", strict=False, cache=False)
        )
        utc = utc.scatter(no_seconds.arg_true(), _with_tail(local, short.str.slice(16)))
    in_range = utc.is_between(EARLIEST_UTC, LATEST_UTC).fill_null(False)
    return utc.set(~in_range, None).cast(TIMESTAMP).alias(text.name)


def _with_tail(local: pl.Series, rest: pl.Series) -> pl.Series:
    """Local times plus what follows them (``rest``): a fraction, then an offset."""
    offset = rest.str.extract_groups(_OFFSET).struct.unnest()
    parts = pl.DataFrame(
        {
            "local": local,
            "fraction": rest.str.extract(_FRACTION),
            "sign": offset["1"],
            "hours": offset["2"].cast(pl.Int64),
            "minutes": offset["3"].cast(pl.Int64),
        }
    )
    micros = pl.col("fraction").str.slice(0, 6).str.pad_end(6, "0").cast(pl.Int64).fill_null(0)
    east = (pl.col("hours") * 60 + pl.col("minutes")).fill_null(0)
    east = pl.when(pl.col("sign") == "-").then(-east).otherwise(east)
    # an offset is a whole day at most: hours past 23 or minutes past 59 are no offset
    bad_offset = (pl.col("hours") > 23) | (pl.col("minutes") > 59)
    return parts.select(
        pl.when(bad_offset.fill_null(False))
        .then(None)
        .otherwise(pl.col("local") + pl.duration(microseconds=micros) - pl.duration(minutes=east))
    ).to_series()


def _canonical_timestamps(text: pl.Series) -> pl.Series:
    """Any spelling the pattern admits, rebuilt from its groups as one canonical form."""
    # Staged on purpose: as one expression, the capture groups were taken once per field
    # and the parse twice (an eager frame does not share subexpressions), 4x the cost.
    parts = text.str.extract_groups(TIMESTAMP_PATTERN).struct.unnest()
    field = pl.col
    canonical = parts.select(
        pl.concat_str(
            [
                field("1"),
                pl.lit("-"),
                field("2"),
                pl.lit("-"),
                field("3"),
                pl.lit("T"),
                field("4"),
                pl.lit(":"),
                field("5"),
                pl.lit(":"),
                field("6").fill_null("00"),
                pl.lit("."),
                field("7").fill_null("").str.slice(0, 6).str.pad_end(6, "0"),
                field("8")
                .fill_null("+0000")
                .str.replace("Z", "+0000", literal=True)
                .str.replace(":", "", literal=True),
            ]
        )
    ).to_series()
    return (
        canonical.str.strptime(
            pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%S%.6f%z", strict=False, cache=False
        )
        .dt.replace_time_zone(None)
        .cast(pl.Datetime("us"))
    )


def parse_money(expr: pl.Expr) -> pl.Expr:
    ok = expr.str.contains(MONEY_PATTERN)
    return pl.when(ok).then(expr.str.strip_prefix("+").cast(MONEY, strict=False))


def parse_int(expr: pl.Expr) -> pl.Expr:
    ok = expr.str.contains(INT_PATTERN)
    return pl.when(ok).then(expr.cast(pl.Int64, strict=False))


def typed(column: Column, expr: pl.Expr) -> pl.Expr:
    if column.kind == "timestamp":
        return parse_timestamp(expr)
    if column.kind == "money":
        return parse_money(expr)
    if column.kind == "int":
        return parse_int(expr)
    return expr


def _in_domain(column: Column, value: pl.Expr) -> pl.Expr:
    ok = pl.lit(True)
    if column.accepted:
        ok = ok & value.is_in(list(column.accepted))
    if column.minimum is not None:
        ok = ok & (value > column.minimum if column.exclusive_minimum else value >= column.minimum)
    return value.is_null() | ok


def _quoted(expr: pl.Expr) -> pl.Expr:
    return pl.lit("'") + expr + pl.lit("'")


def validate(contract: SourceContract, file_name: str, rows: pl.DataFrame) -> ParsedFile:
    """Type the rows of one file and split them into valid rows and rejects."""
    valid, rejects, collapsed = validate_files(
        contract, rows.with_columns(_file_name=pl.lit(file_name))
    )
    return ParsedFile(contract.name, file_name, valid, rejects, collapsed.get(file_name, 0))


def validate_files(
    contract: SourceContract, rows: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """Type the rows of many files (``_file_name`` says whose) in one pass.

    Every rule is row by row except duplicate keys, which are resolved within each file,
    so the result is the per-file one; one pass over thousands of small files costs what
    one file of their size does. Returns valid rows, rejects and collapsed rows per file.
    """
    rows = rows.with_columns(
        pl.col("_malformed").fill_null(False), pl.col("_bad_type").cast(pl.String)
    )
    cleaned = rows.with_columns(
        [
            pl.col(c.name).str.strip_chars(WHITESPACE).replace("", None).alias(c.name)
            if c.name in rows.columns
            else pl.lit(None, pl.String).alias(c.name)
            for c in contract.columns
        ]
    ).with_columns(
        [
            pl.col(c.name).fill_null(c.default).alias(c.name)
            for c in contract.columns
            if c.default is not None
        ]
    )
    typed_cols = {c.name: typed(c, pl.col(c.name)).alias(f"_t_{c.name}") for c in contract.columns}
    df = cleaned.with_columns(list(typed_cols.values()))

    rules: list[tuple[pl.Expr, str, pl.Expr]] = [
        (pl.col("_malformed"), "malformed_record", pl.lit("not a record of this format")),
        (
            pl.col("_bad_type").is_not_null(),
            "bad_type",
            pl.col("_bad_type") + pl.lit(": not a scalar (an object, an array or invalid Unicode)"),
        ),
    ]
    for c in contract.columns:
        if c.required:
            rules.append(
                (pl.col(c.name).is_null(), "missing_required", pl.lit(f"{c.name} is missing"))
            )
    for c in contract.columns:
        if c.kind in ("timestamp", "money", "int"):
            reason = "bad_timestamp" if c.kind == "timestamp" else "bad_number"
            what = {
                "timestamp": "an ISO-8601 timestamp",
                "money": "a decimal with at most 2 places",
                "int": "an integer",
            }[c.kind]
            bad = pl.col(c.name).is_not_null() & pl.col(f"_t_{c.name}").is_null()
            rules.append(
                (bad, reason, pl.lit(f"{c.name}: ") + _quoted(pl.col(c.name)) + f" is not {what}")
            )
    for c in contract.columns:
        if c.accepted or c.minimum is not None:
            bad = ~_in_domain(c, pl.col(f"_t_{c.name}"))
            detail = pl.lit(f"{c.name}: ") + _quoted(pl.col(c.name)) + f" is not {c.domain_text()}"
            rules.append((bad, "out_of_domain", detail))

    reason_expr: pl.Expr = pl.lit(None, pl.String)
    detail_expr: pl.Expr = pl.lit(None, pl.String)
    for cond, reason, detail in reversed(rules):
        reason_expr = pl.when(cond).then(pl.lit(reason)).otherwise(reason_expr)
        detail_expr = pl.when(cond).then(detail).otherwise(detail_expr)
    date_col = contract.date_column
    part_date = (
        pl.when(~pl.col("_malformed")).then(pl.col(f"_t_{date_col}").dt.date())
        if date_col
        else pl.lit(None, pl.Date)
    )
    df = df.with_columns(_reason=reason_expr, _partition_date=part_date.cast(pl.Date))
    file_name = pl.col("_file_name")

    # a when/then chain computes every branch for every row: the details' strings are
    # built for the rejected rows only
    bad_rows = df.filter(pl.col("_reason").is_not_null()).with_columns(_detail=detail_expr)
    has_order = "order_id" in contract.column_names
    order_ref = pl.col("order_id") if has_order else pl.lit(None, pl.String)
    good = df.filter(pl.col("_reason").is_null()).select(
        [pl.col(f"_t_{c.name}").alias(c.name) for c in contract.columns]
        + [file_name, pl.col("_row_number"), pl.col("_raw"), pl.col("_partition_date")]
    )
    good, dup_rejects, collapsed = _resolve_in_file(contract, good)

    rejects = (
        pl.concat(
            [
                bad_rows.select(
                    file_name=file_name,
                    row_number=pl.col("_row_number"),
                    reason=pl.col("_reason"),
                    detail=pl.col("_detail"),
                    raw_record=pl.col("_raw"),
                    partition_date=pl.col("_partition_date"),
                    order_ref=order_ref,
                ),
                dup_rejects,
            ]
        )
        .select(
            source=pl.lit(contract.name),
            file_name=pl.col("file_name"),
            row_number=pl.col("row_number"),
            reason=pl.col("reason"),
            detail=pl.col("detail"),
            raw_record=pl.col("raw_record"),
            partition_date=pl.col("partition_date"),
            order_ref=pl.col("order_ref"),
        )
        .sort("file_name", "row_number")
    )

    valid = good.select(
        [pl.col(c.name) for c in contract.columns]
        + [pl.col("_file_name"), pl.col("_row_number"), pl.col("_raw")]
    )
    return valid, rejects.cast(REJECT_SCHEMA), collapsed


def _per_file(before: pl.DataFrame, after: pl.DataFrame) -> dict[str, int]:
    """Rows per file in ``before`` not in ``after`` (a subset of it)."""
    counts = (
        before.group_by("_file_name")
        .len()
        .join(after.group_by("_file_name").len(), on="_file_name", how="left")
    )
    return {f: n - (m or 0) for f, n, m in counts.iter_rows() if n - (m or 0)}


def _resolve_in_file(
    contract: SourceContract, good: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """One row per key within a file: duplicate_key rejects, silent collapses per file."""
    key = list(contract.key)
    in_file = [*key, "_file_name"]
    empty_rejects = pl.DataFrame(
        schema={
            "file_name": pl.String,
            "row_number": pl.Int64,
            "reason": pl.String,
            "detail": pl.String,
            "raw_record": pl.String,
            "partition_date": pl.Date,
            "order_ref": pl.String,
        }
    )
    if good.height == 0:
        return good, empty_rejects, {}
    # most files repeat no key: one hash pass finds that, and only repeated keys are ranked
    repeated = good.select(pl.struct(in_file).is_duplicated()).to_series()
    if not repeated.any():
        return good, empty_rejects, {}
    if contract.first_delivery_wins:
        kept = good.filter(pl.struct(in_file).is_first_distinct())
        return kept, empty_rejects, _per_file(good, kept)
    content = pl.struct([c.name for c in contract.columns]).hash()
    ranked = (
        good.filter(repeated)
        .with_columns(
            _content=content,
            _winner_row=pl.col("_row_number").max().over(in_file),
        )
        .with_columns(
            _winner_content=pl.col("_content")
            .filter(pl.col("_row_number") == pl.col("_winner_row"))
            .first()
            .over(in_file)
        )
    )
    losers = ranked.filter(pl.col("_row_number") != pl.col("_winner_row"))
    winners = good.join(
        losers.select("_file_name", "_row_number"),
        on=["_file_name", "_row_number"],
        how="anti",
        maintain_order="left",
    )
    dup = losers.filter(pl.col("_content") != pl.col("_winner_content"))
    key_text = pl.concat_str(
        [pl.lit(f"{k}=") + _quoted(pl.col(k).cast(pl.String)) for k in key], separator=", "
    )
    dup_rejects = dup.select(
        file_name=pl.col("_file_name"),
        row_number=pl.col("_row_number"),
        reason=pl.lit("duplicate_key"),
        detail=key_text
        + pl.lit(" appears again at row ")
        + pl.col("_winner_row").cast(pl.String)
        + pl.lit(" of this file with different content; the later row wins"),
        raw_record=pl.col("_raw"),
        partition_date=pl.col("_partition_date"),
        order_ref=pl.col("order_id")
        if "order_id" in contract.column_names
        else pl.lit(None, pl.String),
    )
    collapsed = _per_file(losers, dup)
    return winners, dup_rejects, collapsed


def read_rows(contract: SourceContract, data: bytes) -> pl.DataFrame:
    """The records of one landed file as text, before typing (raises UnreadableFile)."""
    payload = _payload(data)
    text = _utf8(payload)
    if contract.format == "csv":
        return read_csv_rows(contract, text, payload)
    return read_jsonl_rows(contract, text)


def parse_file(contract: SourceContract, file_name: str, data: bytes) -> ParsedFile:
    """Read and validate one landed file (raises UnreadableFile)."""
    return validate(contract, file_name, read_rows(contract, data))


#: a group of files at least this large is split across threads (a smaller one is not worth
#: the second pass's fixed costs)
PARALLEL_PARSE_BYTES = 16 << 20


def parse_files(
    contract: SourceContract, files: Sequence[tuple[str, bytes]]
) -> tuple[list[ParsedFile], dict[str, Exception]]:
    """Read many landed files and validate them in one pass: the same as ``parse_file`` each.

    Returns the parsed files in the order given, and the files that could not be read
    (an ``UnreadableFile``, or whatever else reading one raised) by name. A large group is
    split in runs of whole files parsed on threads: every file is judged alone, and many
    of Polars' string kernels use one core per column (1.3x to 1.6x on 2 cores for CSV).
    """
    runs = _runs_of_files(files, min(os.cpu_count() or 1, 4))
    if len(runs) < 2:
        return _parse_files(contract, files)
    with ThreadPoolExecutor(len(runs), thread_name_prefix="parse") as pool:
        results = list(pool.map(lambda run: _parse_files(contract, run), runs))
    parsed = [p for run_parsed, _ in results for p in run_parsed]
    failed = {name: exc for _, run_failed in results for name, exc in run_failed.items()}
    return parsed, failed


def _runs_of_files(files: Sequence[tuple[str, bytes]], n: int) -> list[Sequence[tuple[str, bytes]]]:
    """``files`` cut into at most ``n`` runs in order, of about equal bytes."""
    total = sum(len(data) for _, data in files)
    if n < 2 or len(files) < 2 or total < PARALLEL_PARSE_BYTES:
        return [files]
    runs: list[Sequence[tuple[str, bytes]]] = []
    start, size = 0, 0
    for i, (_, data) in enumerate(files):
        size += len(data)
        if size >= total * (len(runs) + 1) / n and len(runs) < n - 1 and i + 1 < len(files):
            runs.append(files[start : i + 1])
            start = i + 1
    runs.append(files[start:])
    return runs


def _rows_of_files(valid: pl.DataFrame) -> dict[tuple[str], pl.DataFrame]:
    """``valid``'s rows per ``_file_name``, as ``partition_by(..., as_dict=True)`` gives them.

    Validation keeps the rows in their files' order, so each file's rows are one run of
    ``valid``, taken as a slice (no copy): a partition copied every column of a chunk, then
    the chunk's files were put back together (a chunk of events, 486 files: 0.066 s a
    partition on 2 threads, and the reassembled chunk was slower to apply). Should a file's
    rows not be one run, they are partitioned.
    """
    runs = valid["_file_name"].rle()
    names = runs.struct.field("value")
    if names.n_unique() != names.len():
        return valid.partition_by("_file_name", as_dict=True, maintain_order=True)
    at = 0
    of: dict[tuple[str], pl.DataFrame] = {}
    for name, n in zip(names.to_list(), runs.struct.field("len").to_list(), strict=True):
        of[(name,)] = valid.slice(at, n)
        at += n
    return of


def _parse_files(
    contract: SourceContract, files: Sequence[tuple[str, bytes]]
) -> tuple[list[ParsedFile], dict[str, Exception]]:
    frames: list[pl.DataFrame] = []
    names: list[str] = []
    failed: dict[str, Exception] = {}
    if contract.format == "csv":
        for name, data in files:
            try:
                rows = read_rows(contract, data)
            except Exception as exc:  # one unreadable file never stops the others
                failed[name] = exc
                continue
            frames.append(rows.with_columns(_file_name=pl.lit(name, pl.String)))
            names.append(name)
    else:  # all files' lines read at once
        names, texts, failed = decode_many(files)
        if names:
            rows, unread = read_jsonl_texts(contract, names, texts)
            del texts
            frames.append(rows)
            failed.update(unread)
            names = [n for n in names if n not in unread]
    if not names:
        return [], failed
    valid, rejects, collapsed = validate_files(contract, pl.concat(frames, how="diagonal_relaxed"))
    del frames
    valid_of = _rows_of_files(valid)
    rejects_of = rejects.partition_by("file_name", as_dict=True, maintain_order=True)
    parsed = [
        ParsedFile(
            contract.name,
            name,
            valid_of.get((name,), valid.clear()),
            rejects_of.get((name,), rejects.clear()),
            collapsed.get(name, 0),
        )
        for name in names
    ]
    return parsed, failed
