"""What a landed file must parse to, computed without the parser: the oracle for fuzzing.

Built on the standard library and the independent reference model's row validation
(``assets_pkg_tests.oracle.validate``); nothing here calls ``assets_pkg.lake.parsing``.
``expected(source, data)`` gives either the quarantine reason of the whole file or, for every
data record, the outcome the contract and ``docs/contract-decisions.md`` prescribe;
``check_parse(source, data)`` runs the real parser on the same bytes and fails on any
difference, on any exception other than ``UnreadableFile``, and on any accepted row that
breaks the contract.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal

from assets_pkg.contracts import SOURCES
from assets_pkg.lake.parsing import UnreadableFile, parse_file
from assets_pkg_tests import oracle

ASCII_WS = " \t\n\r\x0b\x0c"
ROW_REASONS = frozenset(
    {
        "malformed_record",
        "bad_type",
        "missing_required",
        "bad_timestamp",
        "bad_number",
        "out_of_domain",
        "duplicate_key",
    }
)
FILE_REASONS = frozenset(
    {"not_utf8", "empty", "bad_csv", "missing_column", "duplicate_column", "no_json_object"}
)
DATE_COLUMNS = {"orders": "order_ts", "payments": "paid_ts", "events": "event_ts"}
INT64 = range(-(2**63), 2**63)
INT_TEXT = re.compile(r"-?[0-9]+", re.ASCII)


@dataclass
class Expected:
    """A file's outcome: a quarantine reason, or one entry per data record."""

    unreadable: str | None = None
    #: row_number -> parsed record (valid and live after in-file resolution)
    valid: dict[int, dict] = field(default_factory=dict)
    #: row_number -> (reason, partition_date)
    rejects: dict[int, tuple[str, dt.date | None]] = field(default_factory=dict)
    collapsed: int = 0
    records: int = 0  # data records: valid + rejects + collapsed


class _NotJson(ValueError):
    pass


def _no_constant(name: str) -> object:
    raise _NotJson(name)


def _unique_pairs(pairs: list[tuple[str, object]]) -> dict:
    if len({k for k, _ in pairs}) != len(pairs):
        raise _NotJson("a name twice")
    return dict(pairs)


def _json_scalar(value: object) -> object:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate escape: no text to store
            return oracle.BAD_TYPE
        return oracle.trim(value)
    if isinstance(value, float | int) and not isinstance(value, bool):
        raise AssertionError("numbers are read as text")  # pragma: no cover
    return oracle._json_value(value)


def _json_number_text(line: str) -> object:
    """The line as JSON with numbers kept as their text (ids and money are never floats)."""
    try:
        return json.loads(
            line,
            parse_float=str,
            parse_int=str,
            parse_constant=_no_constant,
            object_pairs_hook=_unique_pairs,
        )
    except (ValueError, RecursionError):
        return None


def _blank(record: list[str]) -> bool:
    return not any(f.strip(ASCII_WS) for f in record)


def _csv_records(source: str, text: str) -> tuple[str | None, list[object]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    values: list[object] = []
    try:
        for record in reader:
            if _blank(record):
                continue
            if header is None:
                header = [h.strip(ASCII_WS) for h in record]
                names = [c.name for c in oracle.SPECS[source]]
                if any(c.required and c.name not in header for c in oracle.SPECS[source]):
                    return "missing_column", []
                if len(set(header)) != len(header):
                    return "duplicate_column", []
                continue
            if len(record) > len(header):
                values.append(oracle.MALFORMED)
                continue
            by_name = dict(zip(header, record, strict=False))
            values.append({n: oracle.trim(by_name.get(n, "")) for n in names})
    except csv.Error:
        return "bad_csv", []
    if header is None:
        return "missing_column", []
    return None, values


def _jsonl_records(source: str, text: str) -> tuple[str | None, list[tuple[int, object]]]:
    rows: list[tuple[int, object]] = []
    objects = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip(ASCII_WS):
            continue
        obj = _json_number_text(line)
        if not isinstance(obj, dict):
            rows.append((number, oracle.MALFORMED))
            continue
        objects += 1
        rows.append((number, {c.name: _json_scalar(obj.get(c.name)) for c in oracle.SPECS[source]}))
    if objects == 0:
        return "no_json_object", []
    return None, rows


def _fit_int64(source: str, values: object) -> object:
    """An integer beyond BIGINT cannot be stored: it does not parse (bad_number)."""
    if not isinstance(values, dict):
        return values
    out = dict(values)
    for c in oracle.SPECS[source]:
        text = out[c.name]
        if c.kind == "int" and isinstance(text, str) and INT_TEXT.fullmatch(text):
            digits = text.lstrip("-").lstrip("0")
            if len(digits) > 19 or int(text) not in INT64:
                out[c.name] = "beyond-int64"
    return out


def _record_date(source: str, values: object) -> dt.date | None:
    column = DATE_COLUMNS.get(source)
    if column is None or not isinstance(values, dict):
        return None
    text = values[column]
    stamp = oracle.parse_ts(text) if isinstance(text, str) else None
    return stamp.date() if stamp is not None else None


def expected(source: str, data: bytes) -> Expected:
    """The contract's outcome for ``data`` landed as a file of ``source``."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return Expected(unreadable="not_utf8")
    if not text.strip(ASCII_WS):
        return Expected(unreadable="empty")
    if SOURCES[source].format == "csv":
        reason, values = _csv_records(source, text)
        numbered = list(enumerate(values, start=1))
    else:
        reason, numbered = _jsonl_records(source, text)
    if reason is not None:
        return Expected(unreadable=reason)

    out = Expected(records=len(numbered))
    good: list[tuple[int, dict]] = []
    for number, values in numbered:
        values = _fit_int64(source, values)
        why, record = oracle.validate(source, values)
        if why is not None:
            out.rejects[number] = (why, _record_date(source, values))
        else:
            assert record is not None
            good.append((number, record))

    key = SOURCES[source].key
    if SOURCES[source].first_delivery_wins:
        seen: set[tuple] = set()
        for number, record in good:
            k = tuple(record[c] for c in key)
            if k in seen:
                out.collapsed += 1
            else:
                seen.add(k)
                out.valid[number] = record
        return out
    winners: dict[tuple, tuple[int, dict]] = {}
    for number, record in good:
        winners[tuple(record[c] for c in key)] = (number, record)
    for number, record in good:
        win_number, win_record = winners[tuple(record[c] for c in key)]
        if number == win_number:
            out.valid[number] = record
        elif record == win_record:
            out.collapsed += 1
        else:
            out.rejects[number] = ("duplicate_key", _date_of_record(source, record))
    return out


def _date_of_record(source: str, record: dict) -> dt.date | None:
    column = DATE_COLUMNS.get(source)
    return record[column].date() if column else None


# --------------------------------------------------------------------------- the check


def assert_row_meets_contract(source: str, row: dict) -> None:
    """An accepted row, checked against the contract's column rules directly."""
    for c in SOURCES[source].columns:
        value = row[c.name]
        if value is None:
            assert not c.required, f"{c.name} is required but NULL in {row}"
            continue
        if c.kind in ("id", "text", "enum"):
            assert isinstance(value, str) and value == value.strip(ASCII_WS) and value, row
        if c.accepted:
            assert value in c.accepted, f"{c.name}={value!r} not in {c.accepted}"
        if c.kind == "timestamp":
            assert isinstance(value, dt.datetime) and value.tzinfo is None, row
        if c.kind == "money":
            assert isinstance(value, Decimal) and value == value.quantize(Decimal("0.01")), row
        if c.kind == "int":
            assert isinstance(value, int) and value in INT64, row
        if c.minimum is not None:
            assert value > c.minimum if c.exclusive_minimum else value >= c.minimum, row


def check_parse(source: str, data: bytes, file_name: str = "f") -> Expected:
    """Parse ``data`` for real and assert it matches :func:`expected` exactly."""
    want = expected(source, data)
    contract = SOURCES[source]
    try:
        parsed = parse_file(contract, file_name, data)
    except UnreadableFile as exc:
        assert exc.reason in FILE_REASONS, exc.reason
        assert want.unreadable == exc.reason, (
            f"parser quarantined as {exc.reason} ({exc.detail}); expected {want}"
        )
        return want
    assert want.unreadable is None, f"parser read a file that is {want.unreadable}"

    schema = {c.name: c.dtype for c in contract.columns}
    assert {k: parsed.valid.schema[k] for k in schema} == schema
    valid = {r["_row_number"]: r for r in parsed.valid.iter_rows(named=True)}
    for row in valid.values():
        assert_row_meets_contract(source, row)
        assert row["_file_name"] == file_name
    got_valid = {n: {c: r[c] for c in schema} for n, r in valid.items()}
    assert got_valid == want.valid

    rejects = {
        r["row_number"]: (r["reason"], r["partition_date"])
        for r in parsed.rejects.iter_rows(named=True)
    }
    assert len(rejects) == parsed.rejects.height, "one reject per row"
    assert set(parsed.rejects["reason"].to_list()) <= ROW_REASONS
    assert set(parsed.rejects["source"].to_list()) <= {source}
    assert rejects == want.rejects
    assert parsed.collapsed == want.collapsed
    assert parsed.valid.height + parsed.rejects.height + parsed.collapsed == want.records
    return want
