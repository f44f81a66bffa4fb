"""Tests for the deterministic landing-zone sample generator."""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
from collections import Counter
from concurrent.futures import Future
from pathlib import Path

import pytest

from assets_pkg.sample import generator
from assets_pkg.sample.generator import SOURCES, GenerateSummary, generate

START = datetime.date(2024, 1, 1)
DAYS = 20
SCALE = 0.05

_TS = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(Z|[+-]\d{2}:\d{2}|[+-]\d{4})?$"
)
_MONEY = re.compile(r"^[+-]?\d{1,16}(\.\d{1,2})?$")
_INT = re.compile(r"^[+-]?\d+$")

SPELLINGS = {
    "Z": re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"),
    "space": re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"),
    "offset": re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$"),
    "micro_hhmm": re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}[+-]\d{4}$"),
    "minute": re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$"),
    "seven_digits": re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$"),
}

SPEC = {
    # source: (columns, required, key)
    "customers": (
        ["customer_id", "email", "status", "country", "signup_ts", "updated_at"],
        {"customer_id", "updated_at"},
        ("customer_id", "updated_at"),
    ),
    "products": (
        ["product_id", "name", "category", "list_price", "unit_cost", "updated_at"],
        {"product_id", "category", "updated_at"},
        ("product_id", "updated_at"),
    ),
    "orders": (
        ["order_id", "customer_id", "order_ts", "status", "channel"],
        {"order_id", "customer_id", "order_ts", "status"},
        ("order_id",),
    ),
    "order_items": (
        ["order_id", "line_number", "product_id", "quantity", "unit_price"],
        {"order_id", "line_number", "product_id", "quantity", "unit_price"},
        ("order_id", "line_number"),
    ),
    "payments": (
        ["payment_id", "order_id", "amount", "currency", "method", "status", "paid_ts"],
        {"payment_id", "order_id", "amount", "status", "paid_ts"},
        ("payment_id",),
    ),
    "events": (
        [
            *("event_id", "user_id", "session_id", "event_type", "event_ts"),
            *("page_url", "product_id", "order_id"),
        ],
        {"event_id", "session_id", "event_type", "event_ts"},
        ("event_id",),
    ),
}
ENUMS = {
    "status": {
        "customers": {"active", "inactive", "pending"},
        "orders": {"placed", "shipped", "delivered", "cancelled", "returned"},
        "payments": {"settled", "failed", "refunded"},
    },
    "channel": {"orders": {"web", "mobile", "store"}},
    "method": {"payments": {"card", "paypal", "bank_transfer", "gift_card"}},
    "event_type": {"events": {"page_view", "product_view", "add_to_cart", "checkout", "purchase"}},
}
TS_COLUMNS = {"signup_ts", "updated_at", "order_ts", "paid_ts", "event_ts"}
MONEY_COLUMNS = {"list_price", "unit_cost", "unit_price", "amount"}
INT_COLUMNS = {"line_number", "quantity"}
DATE_COLUMN = {"orders": "order_ts", "payments": "paid_ts", "events": "event_ts"}


def parse_ts(text: str) -> datetime.datetime | None:
    m = _TS.match(text)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        value = datetime.datetime(
            int(y),
            int(mo),
            int(d),
            int(h),
            int(mi),
            int(s or 0),
            int((frac or "0")[:6].ljust(6, "0")),
        )
    except ValueError:
        return None
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        hh, mm = int(tz[1:3]), int(tz[-2:])
        value -= sign * datetime.timedelta(hours=hh, minutes=mm)
    return value


def landed(root: Path, source: str) -> list[Path]:
    return sorted(
        p
        for p in (root / source).iterdir()
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith((".tmp", ".partial"))
    )


def read_file(
    path: Path, source: str
) -> tuple[list[str] | None, list[dict[str, str | None] | None]]:
    """Header (CSV only) and rows as trimmed text; None for a line that is not a JSON object."""
    text = path.read_bytes().decode("utf-8")
    if source in ("payments", "events"):
        out: list[dict[str, str | None] | None] = []
        for line in text.splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if not isinstance(obj, dict):
                out.append(None)
                continue
            out.append({k: None if v is None else str(v).strip() or None for k, v in obj.items()})
        return None, out
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    header = [h.strip() for h in rows[0]]
    records = [
        {h: (v.strip() or None) for h, v in zip(header, r, strict=True)} for r in rows[1:] if r
    ]
    return header, records


def read_records(path: Path, source: str) -> list[dict[str, str | None] | None]:
    return read_file(path, source)[1]


def reject_reason(source: str, rec: dict[str, str | None] | None) -> str | None:
    """First failing contract rule of a record (orphans and duplicates are checked later)."""
    if rec is None:
        return "malformed_record"
    columns, required, _ = SPEC[source]
    for col in columns:
        if col in required and rec.get(col) is None:
            return "missing_required"
    for col in columns:
        value = rec.get(col)
        if value is None:
            continue
        if col in TS_COLUMNS and parse_ts(value) is None:
            return "bad_timestamp"
        if col in MONEY_COLUMNS and not _MONEY.match(value):
            return "bad_number"
        if col in INT_COLUMNS and not _INT.match(value):
            return "bad_number"
    for col in columns:
        value = rec.get(col)
        if value is None:
            continue
        allowed = ENUMS.get(col, {}).get(source)
        if allowed is not None and value not in allowed:
            return "out_of_domain"
        if col in ("list_price", "unit_cost", "unit_price") and float(value) < 0:
            return "out_of_domain"
        if col == "amount" and float(value) <= 0:
            return "out_of_domain"
        if col == "quantity" and int(value) <= 0:
            return "out_of_domain"
        if col == "line_number" and int(value) < 1:
            return "out_of_domain"
    if source == "payments" and rec.get("currency") not in (None, "USD"):
        return "out_of_domain"
    return None


def validate(root: Path) -> tuple[Counter[str], dict[str, list[tuple[str, dict]]]]:
    """A small reference reading of the contract: rejects per source, and the valid rows."""
    rejects: Counter[str] = Counter()
    valid: dict[str, list[tuple[str, dict]]] = {s: [] for s in SOURCES}
    for source in SOURCES:
        columns, _, key = SPEC[source]
        for path in landed(root, source):
            try:
                header, records = read_file(path, source)
            except (UnicodeDecodeError, csv.Error):
                continue  # quarantined whole
            if header is not None and not SPEC[source][1] <= set(header):
                continue  # a required column is missing from the header
            if all(r is None for r in records):
                continue
            good: list[dict] = []
            for rec in records:
                if reject_reason(source, rec) is None:
                    good.append(rec)
                else:
                    rejects[source] += 1
            if source != "events":
                # an earlier valid row with the same key and different content is rejected
                later: dict[tuple, set[tuple]] = {}
                kept = []
                for rec in reversed(good):
                    k = tuple(rec[c] for c in key)
                    content = tuple(rec.get(c) for c in columns)
                    if any(c != content for c in later.get(k, ())):
                        rejects[source] += 1
                    else:
                        kept.append(rec)
                    later.setdefault(k, set()).add(content)
                good = kept[::-1]
            valid[source].extend((path.name, rec) for rec in good)
    orders = {rec["order_id"] for _, rec in valid["orders"]}
    items = []
    for name, rec in valid["order_items"]:
        if rec["order_id"] in orders:
            items.append((name, rec))
        else:
            rejects["order_items"] += 1
    valid["order_items"] = items
    return rejects, valid


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateSummary, list]:
    root = tmp_path_factory.mktemp("landing")
    calls: list[tuple[str, int, int]] = []
    summary = generate(
        root, start=START, days=DAYS, seed=11, scale=SCALE, progress=lambda *a: calls.append(a)
    )
    return root, summary, calls


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_deterministic_and_seed_sensitive(tmp_path: Path) -> None:
    kwargs = {"start": START, "days": 4, "scale": 0.02}
    a = generate(tmp_path / "a", seed=3, **kwargs)
    b = generate(tmp_path / "b", seed=3, **kwargs)
    generate(tmp_path / "c", seed=4, **kwargs)
    assert a == b
    snap_a = snapshot(tmp_path / "a")
    assert snap_a == snapshot(tmp_path / "b")
    snap_c = snapshot(tmp_path / "c")
    assert snap_a != snap_c
    assert not any(name.endswith(".tmp") and "/." in f"/{name}" for name in snap_a)


class _InOrder:
    """An executor that runs what it is given at once: the generator without its thread."""

    def __init__(self, *_args, **_kwargs) -> None:
        pass

    def __enter__(self) -> _InOrder:
        return self

    def __exit__(self, *_exc) -> None:
        return None

    def submit(self, fn, *args) -> Future:
        done: Future = Future()
        done.set_result(fn(*args))
        return done


def test_sales_written_on_a_thread_are_the_bytes_written_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kwargs = {"start": START, "days": 40, "scale": 0.3, "seed": 5}
    threaded = generate(tmp_path / "threaded", **kwargs)
    monkeypatch.setattr(generator, "ThreadPoolExecutor", _InOrder)
    in_order = generate(tmp_path / "in_order", **kwargs)
    assert threaded == in_order
    assert threaded.broken_files  # dirty data included: broken files come from both writers
    assert snapshot(tmp_path / "threaded") == snapshot(tmp_path / "in_order")


def test_all_sources_and_summary_match_disk(sample) -> None:
    root, summary, calls = sample
    assert set(summary.files) == set(SOURCES)
    broken = set(summary.broken_files)
    for source in SOURCES:
        files = landed(root, source)
        assert files, source
        assert summary.files[source] == len(files)
        rows = sum(
            len(read_records(p, source)) for p in files if f"{source}/{p.name}" not in broken
        )
        assert summary.rows[source] == rows, source
        assert 0 < summary.dirty_rows[source] <= max(10, 0.05 * rows), source
    assert {label for label, _, _ in calls} == set(SOURCES)
    assert all(0 < done <= total for _, done, total in calls)
    # not-yet-landed files exist but are not counted
    assert (root / "orders" / "orders_next.csv.tmp").exists()
    assert (root / "events" / ".events_incoming.jsonl.partial").exists()
    assert not list(root.rglob(".*.tmp"))  # every producer temp file was renamed into place


def test_file_names(sample) -> None:
    root, _, _ = sample
    names = {s: [p.name for p in landed(root, s)] for s in SOURCES}
    assert names["customers"][0] == "customers_0000_initial.csv"
    assert names["products"][0] == "products_0000_initial.csv"
    assert any(
        re.fullmatch(r"customers_\d{4}-\d{2}-\d{2}_changes\.csv", n) for n in names["customers"]
    )
    assert all(re.fullmatch(r"orders_\d{4}-\d{2}-\d{2}_\d{3}\.csv", n) for n in names["orders"])
    assert all(
        re.fullmatch(r"order_items_\d{4}-\d{2}-\d{2}_\d{3}\.csv", n) for n in names["order_items"]
    )
    assert all(
        re.fullmatch(r"payments_\d{4}-\d{2}-\d{2}_\d{3}\.jsonl", n) for n in names["payments"]
    )
    assert all(
        re.fullmatch(r"events_\d{4}-\d{2}-\d{2}T\d{4}_\d{3}\.jsonl", n) for n in names["events"]
    )
    per_day = Counter(n[7:17] for n in names["events"])
    assert len(per_day) >= DAYS and min(per_day[d] for d in sorted(per_day)[:DAYS]) >= 4


def test_broken_files(sample) -> None:
    root, summary, _ = sample
    by_source = {b.split("/")[0]: root / b for b in summary.broken_files}
    assert set(by_source) == {"customers", "orders", "events"}
    with pytest.raises(UnicodeDecodeError):
        by_source["customers"].read_bytes().decode("utf-8")
    header = by_source["orders"].read_text("utf-8").splitlines()[0].split(",")
    assert "order_id" not in header
    text = by_source["events"].read_bytes().decode("utf-8")
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        assert not isinstance(obj, dict)


def test_files_parse(sample) -> None:
    root, summary, _ = sample
    broken = set(summary.broken_files)
    for source in SOURCES:
        total = bad = 0
        for path in landed(root, source):
            if f"{source}/{path.name}" in broken:
                continue
            records = read_records(path, source)
            total += len(records)
            bad += sum(r is None for r in records)
        assert total > 0
        assert bad <= 0.01 * total, source


def test_dirty_rows_match_reference_rejects(sample) -> None:
    root, summary, _ = sample
    rejects, valid = validate(root)
    assert {s: rejects[s] for s in SOURCES} == summary.dirty_rows
    # business dates of valid facts stay inside the generated range (events may spill a day)
    last = START + datetime.timedelta(days=DAYS - 1)
    for source, col in DATE_COLUMN.items():
        dates = {parse_ts(rec[col]).date() for _, rec in valid[source]}
        assert min(dates) >= START
        assert max(dates) <= last + datetime.timedelta(days=1 if source == "events" else 0)
    # no unknown status spelled in upper case slipped through as valid
    assert all(rec["status"].islower() for _, rec in valid["orders"])


def test_timestamp_spellings(sample) -> None:
    root, _, _ = sample
    _, valid = validate(root)
    seen: Counter[str] = Counter()
    for source in SOURCES:
        for _, rec in valid[source]:
            for col in TS_COLUMNS & rec.keys():
                value = rec[col]
                for name, pattern in SPELLINGS.items():
                    if value and pattern.match(value):
                        seen[f"{source}:{name}"] += 1
    for source in ("orders", "payments", "events"):
        for name in SPELLINGS:
            assert seen[f"{source}:{name}"] > 0, (source, name)
    assert parse_ts("2024-01-05T12:11:12+02:00") == datetime.datetime(2024, 1, 5, 10, 11, 12)


def test_csv_quirks(sample) -> None:
    root, summary, _ = sample
    broken = set(summary.broken_files)
    paths = [
        p
        for s in ("customers", "products", "orders", "order_items")
        for p in landed(root, s)
        if f"{s}/{p.name}" not in broken
    ]
    raw = [p.read_bytes() for p in paths]
    assert any(b.startswith(b"\xef\xbb\xbf") for b in raw)
    assert any(b"\r\n" in b for b in raw)
    cells = [
        row
        for b in raw
        for row in csv.reader(io.StringIO(b.decode("utf-8").removeprefix("\ufeff"), newline=""))
    ]
    assert any(c != c.strip() for row in cells for c in row)  # padded values
    assert any(c == "" for row in cells for c in row)  # empty optional values
    contract = {c for cols, _, _ in SPEC.values() for c in cols}
    headers = [row for row in cells if "updated_at" in row or "order_id" in row]
    assert any(set(h) - contract for h in headers)  # an extra, unknown column
    assert any([c for c in h if c in contract] not in [SPEC[s][0] for s in SPEC] for h in headers)
    assert any(h == [c for c in SPEC["orders"][0] if c != "channel"] for h in headers)
    products = read_records(landed(root, "products")[0], "products")
    assert any(r and r["name"] and "," in r["name"] for r in products)
    assert any(r and r["name"] and '"' in r["name"] for r in products)


def test_dimension_versions(sample) -> None:
    root, _, _ = sample
    _, valid = validate(root)
    versions: dict[str, list[tuple]] = {}
    for _, rec in valid["customers"]:
        attrs = (rec["email"], rec["status"], rec["country"], rec["signup_ts"])
        versions.setdefault(rec["customer_id"], []).append((parse_ts(rec["updated_at"]), attrs))
    histories = [[a for _, a in sorted(v)] for v in versions.values()]
    assert any(len(h) >= 3 and h[0] == h[2] != h[1] for h in histories)  # A -> B -> A
    assert any(len(h) >= 2 and h[0] == h[1] for h in histories)  # a repeat, not a new version
    # a product whose first version is later than an order line that uses it
    first_version = {}
    for _, rec in valid["products"]:
        ts = parse_ts(rec["updated_at"])
        pid = rec["product_id"]
        first_version[pid] = min(ts, first_version.get(pid, ts))
    order_ts = {rec["order_id"]: parse_ts(rec["order_ts"]) for _, rec in valid["orders"]}
    assert any(
        rec["product_id"] in first_version
        and order_ts[rec["order_id"]] < first_version[rec["product_id"]]
        for _, rec in valid["order_items"]
    )
    assert any(rec["product_id"].startswith("P-UNKNOWN") for _, rec in valid["order_items"])


def test_fact_lifecycles(sample) -> None:
    root, _, _ = sample
    _, valid = validate(root)
    statuses = Counter(rec["status"] for _, rec in valid["orders"])
    assert set(statuses) == {"placed", "shipped", "delivered", "cancelled", "returned"}
    dates: dict[str, set] = {}
    for _, rec in valid["orders"]:
        dates.setdefault(rec["order_id"], set()).add(parse_ts(rec["order_ts"]).date())
    assert sum(len(d) > 1 for d in dates.values()) >= 3  # corrected order_ts moves the order
    pays = Counter(rec["status"] for _, rec in valid["payments"])
    assert pays["settled"] and pays["failed"] and pays["refunded"]
    assert any("currency" not in rec for _, rec in valid["payments"])
    events = [rec for _, rec in valid["events"]]
    ids = Counter(rec["event_id"] for rec in events)
    assert any(n > 1 for n in ids.values())  # at-least-once delivery
    purchases = [rec for rec in events if rec["event_type"] == "purchase"]
    assert purchases and all(rec.get("order_id") for rec in purchases)
    sessions: dict[str, set] = {}
    for rec in events:
        sessions.setdefault(rec["session_id"], set()).add(parse_ts(rec["event_ts"]).date())
    assert any(len(d) > 1 for d in sessions.values())  # sessions crossing midnight
    assert any(rec["user_id"] is None for rec in events)


def test_scale_is_roughly_linear(tmp_path: Path) -> None:
    small = generate(tmp_path / "s", start=START, days=6, scale=0.05)
    large = generate(tmp_path / "l", start=START, days=6, scale=0.15)
    for source in ("customers", "products", "orders", "order_items", "payments", "events"):
        ratio = large.rows[source] / small.rows[source]
        assert 2.3 < ratio < 3.7, (source, ratio)
