"""Fuzzed landing files for every source, checked against an independent reference.

Each generated input is hostile in one of the ways real producers fail: random bytes,
truncation, the wrong encoding, huge fields, broken RFC 4180 quoting, mixed line ends,
duplicate or missing headers, JSON of the wrong type, timestamps at the calendar's edges.
For every input the parser must give exactly what ``assets_pkg_tests.fuzz.reference``
derives from the contract (the quarantine reason, or each record's outcome), never raise
anything but ``UnreadableFile``, and only accept rows that meet the contract. Valid files
with known content must load with exactly the values written.

Cost is set by a Hypothesis profile: ``ASSETS_PKG_FUZZ_PROFILE=ci`` (default, derandomized,
about a minute) or ``long`` (random, many more examples) for a local campaign.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assets_pkg.config import Settings
from assets_pkg.contracts import SOURCES, Column
from assets_pkg.lake.ingest import run_ingest
from assets_pkg.lake.manifest import Manifest
from assets_pkg.resources.lake import LakeResource
from assets_pkg_tests.conftest import land, use_temp_platform
from assets_pkg_tests.fuzz.reference import FILE_REASONS, Expected, check_parse, expected

_HEALTH = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.large_base_example,
    HealthCheck.filter_too_much,
    HealthCheck.function_scoped_fixture,
]
settings.register_profile(
    "fuzz-ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=_HEALTH,
)
settings.register_profile(
    "fuzz-long", max_examples=3000, deadline=None, database=None, suppress_health_check=_HEALTH
)
PROFILE = "fuzz-" + os.environ.get("ASSETS_PKG_FUZZ_PROFILE", "ci")
FUZZ = settings(settings.get_profile(PROFILE))
# the end-to-end property runs a whole ingest pass per example
FEW = settings(FUZZ, max_examples=max(4, FUZZ.max_examples // 12))

ALL_SOURCES = list(SOURCES)
CSV_SOURCES = [s for s, c in SOURCES.items() if c.format == "csv"]
JSONL_SOURCES = [s for s, c in SOURCES.items() if c.format == "jsonl"]

# --------------------------------------------------------------------------- timestamps

EDGE_LOCAL = [
    dt.datetime(2024, 2, 29, 12, 0),  # leap day
    dt.datetime(2024, 2, 29, 23, 59, 59),
    dt.datetime(2024, 3, 10, 2, 30),  # US spring-forward hour
    dt.datetime(2024, 11, 3, 1, 30),  # US fall-back hour
    dt.datetime(2024, 3, 31, 2, 30),  # EU spring-forward hour
    dt.datetime(2024, 10, 27, 2, 30),  # EU fall-back hour
    dt.datetime(9999, 12, 31, 23, 59, 59),
    dt.datetime(1970, 1, 1, 0, 0),
    dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
    dt.datetime(1, 1, 1, 0, 0),
    dt.datetime(2000, 1, 1, 0, 0),
]
# minutes east of UTC; the DST pairs (-05:00/-04:00, +01:00/+02:00) land on the edge instants
EDGE_OFFSETS = [0, 60, 120, -240, -270, -300, 14 * 60, -12 * 60, 5 * 60 + 45, 23 * 60 + 59, -1, 1]


def offset_text(minutes: int, style: str) -> str:
    sign = "-" if minutes < 0 else "+"
    hh, mm = divmod(abs(minutes), 60)
    return f"{sign}{hh:02d}:{mm:02d}" if style == "colon" else f"{sign}{hh:02d}{mm:02d}"


def utc_of(local: dt.datetime, minutes: int) -> dt.datetime | None:
    """The UTC instant, or None when it has no calendar date (before 0001 or after 9999)."""
    try:
        return local - dt.timedelta(minutes=minutes)
    except OverflowError:
        return None


@st.composite
def valid_timestamps(draw) -> tuple[str, dt.datetime | None]:
    """A contract spelling of an instant (edges favoured) and its naive UTC value, computed
    here with the standard library; None when the instant falls outside years 1-9999."""
    local = draw(
        st.one_of(
            st.sampled_from(EDGE_LOCAL),
            st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)),
        )
    )
    precision = draw(st.sampled_from(["minute", "second", "fraction"]))
    digits = ""
    if precision == "minute":
        local = local.replace(second=0, microsecond=0)
    elif precision == "second":
        local = local.replace(microsecond=0)
    else:
        digits = f"{local.microsecond:06d}"[: draw(st.integers(1, 6))]
        digits += draw(st.text("0123456789", max_size=6))  # beyond micro: truncated
        local = local.replace(microsecond=int(digits[:6].ljust(6, "0")))
    text = local.strftime("%Y-%m-%d") if local.year >= 1000 else f"{local.year:04d}-"
    if local.year < 1000:
        text += local.strftime("%m-%d")
    text += draw(st.sampled_from("T ")) + local.strftime("%H:%M")
    if precision != "minute":
        text += local.strftime(":%S")
    if digits:
        text += "." + digits
    style = draw(st.sampled_from(["none", "Z", "colon", "plain"]))
    minutes = 0
    if style == "Z":
        text += "Z"
    elif style != "none":
        minutes = draw(st.one_of(st.sampled_from(EDGE_OFFSETS), st.integers(-1439, 1439)))
        text += offset_text(minutes, style)
    return text, utc_of(local, minutes)


@st.composite
def odd_timestamps(draw) -> str:
    """Timestamp-like text with impossible parts, wrong separators or zones."""
    year = draw(st.sampled_from(["2024", "2023", "1970", "9999", "0001", "0000", "10000", "24"]))
    month = draw(st.sampled_from(["01", "02", "12", "13", "00", "2"]))
    day = draw(st.sampled_from(["01", "28", "29", "30", "31", "32", "00"]))
    hour = draw(st.sampled_from(["00", "23", "24", "9"]))
    minute = draw(st.sampled_from(["00", "59", "60"]))
    second = draw(st.sampled_from(["", ":00", ":59", ":60", ":5"]))
    frac = draw(st.sampled_from(["", ".", ".5", ".123456789012", ",5"]))
    zone = draw(
        st.sampled_from(["", "Z", "z", "+14:00", "-12:00", "+24:00", "+05:99", "+2", "+02", " Z"])
    )
    sep = draw(st.sampled_from(["T", " ", "t", "  ", ""]))
    return f"{year}-{month}-{day}{sep}{hour}:{minute}{second}{frac if second else ''}{zone}"


# --------------------------------------------------------------------------- cell values

JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
HUGE = "h" * 140_000  # beyond the csv module's default 128 KiB field limit
TEXTY = st.lists(
    st.sampled_from([*"aZ09 ,;\"'é€\t-", "\r", "\n", "\r\n", "\x00", "\u2028", "\ufeff"]),
    max_size=10,
).map("".join)
NUMBERS = [
    "0", "1", "-1", "+1", "007", "1.5", "1.50", "1.505", "-0.00", "1e3", "NaN", "Infinity",
    "9999999999999999.99", "99999999999999999", "9223372036854775807", "9223372036854775808",
    "-9223372036854775808", "0000000000000000000001", "١٢", "１", " 12 ", "1_000", "",
]  # fmt: skip


def hostile_cell(column: Column) -> st.SearchStrategy[str]:
    pools: list[st.SearchStrategy[str]] = [TEXTY, st.sampled_from(["", " ", "\t", "x"])]
    if column.kind == "timestamp":
        pools += [valid_timestamps().map(lambda t: t[0])] * 3 + [odd_timestamps()]
    elif column.kind in ("money", "int"):
        pools += [st.sampled_from(NUMBERS)] * 3
    elif column.accepted:
        pools += [st.sampled_from([*column.accepted, column.accepted[0].upper(), "x"])] * 3
    else:
        pools += [st.sampled_from(["A", "B", " A ", "A "])] * 2  # keys repeat
    return st.one_of(pools)


# --------------------------------------------------------------------------- CSV files


def quote(value: str, style: str) -> str:
    if style == "always" or (style == "needed" and any(ch in value for ch in ',"\r\n')):
        return '"' + value.replace('"', '""') + '"'
    if style == "broken-open":
        return '"' + value  # never closed
    if style == "broken-after":
        return '"' + value + '"x'  # text after the closing quote
    if style == "bare-quote":
        return value[:1] + '"' + value[1:]  # a quote inside an unquoted field
    return value


@st.composite
def csv_header(draw, source: str) -> list[str]:
    names = SOURCES[source].column_names
    kind = draw(st.sampled_from(["exact", "exact", "exact", "shuffled", "missing", "dup", "odd"]))
    header = list(names)
    if kind == "shuffled":
        header = draw(st.permutations([*names, "extra"]))
    elif kind == "missing":
        header = [n for n in names if n != draw(st.sampled_from(names))]
    elif kind == "dup":
        header = [*names, draw(st.sampled_from([*names, "extra", ""]))]
        header += [draw(st.sampled_from(["extra", ""]))]
    elif kind == "odd":
        header = [draw(st.sampled_from(["", " ", "\t"])) + n + " " for n in names]
        header += draw(st.lists(st.sampled_from(["", "x", "Order_ID"]), max_size=2))
    return header


@st.composite
def csv_texts(draw, source: str) -> str:
    """A CSV file with hostile header, values, quoting and line ends."""
    contract = SOURCES[source]
    header = draw(csv_header(source))
    by_name = {c.name: c for c in contract.columns}
    style = draw(st.sampled_from(["none", "needed", "always", "mixed"]))
    lines = [",".join(quote(h, "needed") for h in header)]
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.integers(0, 6)) == 0:
            lines.append(draw(st.sampled_from(["", " ", ",,,", '""', " ,\t"])))
            continue
        cells = []
        for name in header:
            column = by_name.get(name.strip(" \t"))
            value = draw(hostile_cell(column)) if column else draw(TEXTY)
            how = draw(
                st.sampled_from(
                    ["needed"] * 12
                    + ["always", "none", "broken-open", "broken-after", "bare-quote"]
                )
                if style == "mixed"
                else st.just(style if style != "none" else "needed")
            )
            cells.append(quote(value, how))
        cells = cells[: draw(st.integers(max(0, len(cells) - 2), len(cells)))]
        if draw(st.integers(0, 8)) == 0:
            cells.append("surplus")
        lines.append(",".join(cells))
    if draw(st.integers(0, 15)) == 0 and len(lines) > 1:
        lines[-1] += "," + draw(st.sampled_from([HUGE, '"' + HUGE + '"']))
    ends = draw(st.sampled_from(["\n", "\r\n", "\r", "mixed"]))
    text = ""
    for line in lines:
        text += line + (draw(st.sampled_from(["\n", "\r\n", "\r"])) if ends == "mixed" else ends)
    if draw(st.booleans()):
        text = text.rstrip("\r\n")
    return text


# --------------------------------------------------------------------------- JSON Lines files

JSON_TOKENS = [
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "-0", "-0.0", "1E+2", "0.1e-999",
    "1" + "0" * 400, '"\\ud800"', '"\\udc00x"', '"\\u0000"', '"a\\u2028b"', "[]", "{}",
    "[1, [2]]", '{"a": {"b": [1]}}', "true", "false", "null", '"  "', '""', "12.345",
    '"2024-02-29T23:30:00-01:00"', "17", "12.50", '"USD"', '"EUR"', '"usd"',
]  # fmt: skip


@st.composite
def json_value_text(draw, column: Column) -> str:
    """A JSON value as text: a hostile token, or a string/number from the cell pools."""
    kind = draw(st.sampled_from(["token", "string", "string", "number"]))
    if kind == "token":
        return draw(st.sampled_from(JSON_TOKENS))
    cell = draw(hostile_cell(column))
    if kind == "number" and cell.strip().lstrip("-").replace(".", "", 1).isdigit():
        return cell.strip()
    return json.dumps(cell, ensure_ascii=draw(st.booleans()))


@st.composite
def jsonl_texts(draw, source: str) -> str:
    """A JSON Lines file: objects with wrong types and edge values, and lines that are no
    object at all, with mixed line ends."""
    columns = list(SOURCES[source].columns)
    lines = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["object"] * 6 + ["blank", "other", "deep", "dupe"]))
        if kind == "blank":
            lines.append(draw(st.sampled_from(["", " ", "\t", "\r"])))
        elif kind == "other":
            lines.append(draw(st.sampled_from(["[1]", "17", '"s"', "null", "{bad", "x", "{}"])))
        elif kind == "deep":
            lines.append('{"payment_id": ' + "[" * 5000 + "]" * 5000 + "}")
        else:
            chosen = draw(st.lists(st.sampled_from(columns), unique=True, min_size=1))
            pairs = [f'"{c.name}": {draw(json_value_text(c))}' for c in chosen]
            if kind == "dupe":
                pairs.append(f'"{chosen[0].name}": "again"')
            pairs = draw(st.permutations(pairs))
            lines.append("{" + ", ".join(pairs) + "}")
    if draw(st.integers(0, 15)) == 0:
        lines.append(json.dumps({columns[0].name: HUGE}))
    ends = draw(st.sampled_from(["\n", "\r\n", "\r", "mixed"]))
    text = ""
    for line in lines:
        text += line + (draw(st.sampled_from(["\n", "\r\n", "\r"])) if ends == "mixed" else ends)
    return text


# --------------------------------------------------------------------------- byte mutations


def interesting_cuts(data: bytes) -> list[int]:
    """Offsets where a truncation means something: inside the header, right after it, at
    a quote, between CR and LF, inside a multi-byte character, in a JSON string."""
    cuts = {0, 1, len(data) // 2, max(0, len(data) - 1)}
    first_eol = data.find(b"\n")
    if first_eol > 0:
        cuts |= {first_eol // 2, first_eol, first_eol + 1}
    for i, byte in enumerate(data[:4000]):
        if byte in b'"\r{:,' or byte >= 0xC0:
            cuts.add(i + 1)
    return sorted(c for c in cuts if c <= len(data))


@st.composite
def encoded(draw, text: str) -> bytes:
    how = draw(
        st.sampled_from(
            ["utf-8"] * 4 + ["bom", "bom2", "latin-1", "cp1252", "utf-16", "utf-16-be", "inject"]
        )
    )
    if how == "bom":
        return b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")
    if how == "bom2":
        return b"\xef\xbb\xbf\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")
    if how in ("latin-1", "cp1252", "utf-16", "utf-16-be"):
        return text.encode(how, "replace")
    data = text.encode("utf-8", "surrogatepass")
    if how == "inject":
        at = draw(st.integers(0, len(data)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe9"]))
        data = data[:at] + bad + data[at:]
    return data


@st.composite
def hostile_files(draw, source: str) -> bytes:
    """Bytes landed as a file of ``source``: structured, then maybe cut or re-encoded."""
    family = draw(st.sampled_from(["structured"] * 5 + ["random", "truncated", "truncated"]))
    if family == "random":
        prefix = draw(st.sampled_from([b"", (",".join(SOURCES[source].column_names)).encode()]))
        return prefix + draw(st.binary(max_size=300))
    text = draw(csv_texts(source) if SOURCES[source].format == "csv" else jsonl_texts(source))
    data = draw(encoded(text))
    if family == "truncated":
        cut = draw(st.one_of(st.sampled_from(interesting_cuts(data)), st.integers(0, len(data))))
        data = data[:cut]
    return data


@pytest.mark.parametrize("source", ALL_SOURCES)
def test_hostile_files_load_exactly_per_contract_or_are_quarantined(source):
    @FUZZ
    @given(hostile_files(source))
    def check(data: bytes) -> None:
        check_parse(source, data)

    check()


# --------------------------------------------------------------------------- round trip


SAFE = st.text(
    alphabet=st.sampled_from([*"abcXYZ019 ,\"'.;-_é€", "\r", "\n", "|", "\x00"]),
    min_size=1,
    max_size=12,
).filter(lambda s: s.strip(" \t\r\n\x0b\x0c") == s)


def known_value(column: Column) -> st.SearchStrategy[tuple[str, object]]:
    """(text written, value the lake must hold) for one valid cell, derived independently."""
    if column.kind in ("id", "text"):
        value = st.one_of(SAFE, st.just("x" * 3000)).map(lambda s: (s, s))
    elif column.kind == "enum":
        value = st.sampled_from(column.accepted).map(lambda s: (s, s))
    elif column.kind == "timestamp":
        value = valid_timestamps().filter(lambda t: t[1] is not None)
    elif column.kind == "money":
        lowest = Decimal("0.01") if column.exclusive_minimum else Decimal(0)
        value = st.decimals(lowest, Decimal("9999999999999999.99"), places=2).map(
            lambda d: (f"{d:f}", d)
        )
    else:
        lowest = int(column.minimum or 0) + (1 if column.exclusive_minimum else 0)
        value = st.integers(lowest, 2**63 - 1).map(lambda i: (str(i), i))
    if column.required:
        return value
    return st.one_of(st.just(("", None)), value)


@st.composite
def known_files(draw, source: str) -> tuple[bytes, dict[int, dict]]:
    """A valid file of unique keys and the exact rows it must load, by row number."""
    contract = SOURCES[source]
    key = contract.key
    rows = draw(
        st.lists(
            st.fixed_dictionaries({c.name: known_value(c) for c in contract.columns}),
            min_size=1,
            max_size=6,
            unique_by=lambda r: tuple(r[k][1] for k in key),
        )
    )
    want: dict[int, dict] = {}
    if contract.format == "csv":
        present = [c.name for c in contract.columns if c.required or draw(st.booleans())]
        header = draw(st.permutations([*present, "extra"]))
        lines = [",".join(header)]
        for row in rows:
            cells = [
                quote(
                    "junk, ignored" if n == "extra" else row[n][0],
                    draw(st.sampled_from(["needed", "always"])),
                )
                for n in header
            ]
            lines.append(",".join(cells))
            want[len(lines) - 1] = {
                c.name: row[c.name][1] if c.name in present else None for c in contract.columns
            }
        text = ""
        for line in lines:
            text += line + draw(st.sampled_from(["\n", "\r\n", "\r"]))
    else:
        text = ""
        for number, row in enumerate(rows, start=1):
            pairs = []
            for c in contract.columns:
                written = row[c.name][0]
                if written == "" and draw(st.booleans()):
                    continue  # an absent optional field is NULL too
                if written == "":
                    pairs.append(f'"{c.name}": null')
                elif JSON_NUMBER.fullmatch(written) and draw(st.booleans()):
                    pairs.append(f'"{c.name}": {written}')  # a bare JSON number is its text
                else:
                    pairs.append(f'"{c.name}": {json.dumps(written, ensure_ascii=False)}')
            text += "{" + ", ".join(draw(st.permutations(pairs))) + "}"
            text += draw(st.sampled_from(["\n", "\r\n"]))
            want[number] = {c.name: row[c.name][1] for c in contract.columns}
            if want[number].get("currency", "USD") is None:
                want[number]["currency"] = "USD"  # the contract's default
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    return bom + text.encode(), want


@pytest.mark.parametrize("source", ALL_SOURCES)
def test_valid_file_round_trips_exactly(source):
    @FUZZ
    @given(known_files(source))
    def check(case: tuple[bytes, dict[int, dict]]) -> None:
        data, want = case
        # check_parse: the parser loads exactly what the reference reads; here: the reference
        # reads exactly the values derived when the file was generated
        got: Expected = check_parse(source, data)
        assert got.rejects == {} and got.collapsed == 0
        assert got.valid == want

    check()


# --------------------------------------------------------------------------- end to end


def _lake_rows(settings: Settings, source: str) -> pl.DataFrame:
    files = sorted((Path(settings.lake_url) / "lake" / source).rglob("*.parquet"))
    if not files:
        return pl.DataFrame(schema={"_file_name": pl.String, "_row_number": pl.Int64})
    return pl.concat([pl.read_parquet(f, columns=["_file_name", "_row_number"]) for f in files])


def _staged_rejects(settings: Settings) -> pl.DataFrame:
    files = sorted((Path(settings.lake_url) / "lake" / "_rejects").glob("*.rejects.parquet"))
    if not files:
        return pl.DataFrame(schema={"source": pl.String, "file_name": pl.String})
    return pl.concat([pl.read_parquet(f) for f in files])


@FEW
@given(
    st.fixed_dictionaries(
        {s: st.lists(hostile_files(s), min_size=1, max_size=3) for s in ALL_SOURCES}
    )
)
def test_an_ingest_pass_keeps_every_fuzzed_file_and_accounts_for_every_record(
    tmp_path_factory: pytest.TempPathFactory, batch: dict[str, list[bytes]]
) -> None:
    # a fresh platform per example, set up as the `settings` fixture does
    with pytest.MonkeyPatch.context() as mp:
        settings = use_temp_platform(tmp_path_factory.mktemp("fuzz-ingest"), mp)
        check_ingest_pass(settings, batch)


def check_ingest_pass(settings: Settings, batch: dict[str, list[bytes]]) -> None:
    landed: dict[tuple[str, str], bytes] = {}
    for source, files in batch.items():
        for i, data in enumerate(files):
            name = f"{source}_{i:03d}." + SOURCES[source].format
            land(settings, source, name, data)
            landed[(source, name)] = data

    run_ingest(settings, LakeResource(root=settings.lake_url))

    with Manifest(settings.manifest_path).connect() as conn:
        rows = conn.execute("SELECT source, file_name, status, reason FROM files").fetchall()
    manifest = {(source, name): (status, reason) for source, name, status, reason in rows}
    assert len(rows) == len(manifest)
    assert set(manifest) == set(landed), "one manifest entry per landed file"
    rejects = _staged_rejects(settings)
    first_events: set[str] = set()
    for (source, name), data in sorted(landed.items()):
        archived = settings.archive_dir / source / name
        quarantined = settings.quarantine_dir / source / name
        assert not (settings.landing_dir / source / name).exists()
        assert archived.exists() != quarantined.exists(), f"{source}/{name} in exactly one place"
        kept = archived if archived.exists() else quarantined
        assert kept.read_bytes() == data, "kept byte-identical"
        want = expected(source, data)
        status, reason = manifest[(source, name)]
        if want.unreadable is not None:
            assert (status, reason) == ("quarantined", want.unreadable)
            note = json.loads(quarantined.with_name(name + ".error.json").read_text())
            assert note["reason"] == want.unreadable and note["reason"] in FILE_REASONS
            continue
        assert status == "loaded" and archived.exists()
        lake = _lake_rows(settings, source).filter(pl.col("_file_name") == name).unique()
        rejected = rejects.filter((pl.col("source") == source) & (pl.col("file_name") == name))
        dropped = 0  # an event delivered by an earlier file of the pass is not loaded again
        if SOURCES[source].first_delivery_wins:
            for record in want.valid.values():
                dropped += record["event_id"] in first_events
                first_events.add(record["event_id"])
        assert lake.height + rejected.height + want.collapsed + dropped == want.records
