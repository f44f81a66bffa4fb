"""Deterministic, realistic sample generator for the landing zone.

``generate`` writes every source of the public contract (``CONTRACT.md``, "Landing zone" and
"Bad input") to ``<landing_dir>/<source>/<name>``:

- ``customers``: ``customers_0000_initial.csv`` (snapshot dated ``start``) and
  ``customers_<YYYY-MM-DD>_changes.csv`` (SCD changes: email/status/country, one A->B->A
  customer, one row that repeats the previous version unchanged).
- ``products``: ``products_0000_initial.csv`` and ``products_<YYYY-MM-DD>_changes.csv``
  (price/cost/category changes, one unchanged repeat). A handful of products have a first
  version dated after orders that already use them.
- ``orders``: ``orders_<arrival>_001.csv`` (new orders, late arrivals of the previous evening
  first) and ``orders_<arrival>_002.csv`` (status changes and a few ``order_ts`` corrections
  that move an order to another day).
- ``order_items``: ``order_items_<arrival>_001.csv`` (same day as the order, ~5% one day late).
- ``payments``: ``payments_<date>_001.jsonl`` (new payments by ``paid_ts`` date) and
  ``payments_<date>_002.jsonl`` (refunds: the payment_id again with status ``refunded`` and the
  refund time as ``paid_ts``, so a refund moves the payment to the refund date).
- ``events``: ``events_<YYYY-MM-DD>T<HHMM>_001.jsonl``, one file per time window (6 to 48 per
  day), ~1% of events delivered again identically in a later window's file.

No key ever has two valid rows in one file, except the deliberate ``duplicate_key`` rows.
Dirty rows (~0.5% per source) are extra, invalid copies of real rows placed just before them
(CSV and payments) or, for events, corrupted events; they are counted in ``dirty_rows``. Broken
files (quarantined whole) are listed in ``broken_files``; their rows are not counted in
``rows``. Two not-yet-landed files (``orders/orders_next.csv.tmp`` and
``events/.events_incoming.jsonl.partial``) are written too and counted nowhere.

Everything is driven by ``numpy.random.default_rng(seed)`` and string-seeded ``random.Random``
instances, so the same arguments give byte-identical files.
"""

from __future__ import annotations

import datetime
import json
import os
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

__all__ = ["SOURCES", "GenerateSummary", "generate"]

SOURCES: tuple[str, ...] = ("customers", "products", "orders", "order_items", "payments", "events")

_S = 1_000_000
_MIN = 60 * _S
_HOUR = 3600 * _S
_DAY = 86_400 * _S
_NEVER = 1 << 30  # "no such day" sentinel for lifecycle day arrays
_CHUNK_DAYS = 32
_DIRTY_RATE = 0.005

# Timestamp spellings. The instant is truncated to what its spelling can carry, so the
# written text always denotes exactly the intended UTC instant.
_TS_Z, _TS_SPACE, _TS_OFFSET, _TS_MICRO_OFFSET, _TS_MINUTE, _TS_7DIGITS = range(6)
_TS_P = np.array([0.5, 0.15, 0.1, 0.1, 0.05, 0.1])
_OFFSETS = np.array([-480, -300, -240, -180, 0, 60, 120, 330, 540, 600], dtype=np.int64)

_HOUR_W = np.array(
    [2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 7, 7, 6, 6, 6, 7, 8, 9, 9, 8, 6, 4], dtype=np.float64
)
_HOUR_P = _HOUR_W / _HOUR_W.sum()
_WEEKDAY_F = np.array([0.95, 0.95, 1.0, 1.0, 1.05, 1.15, 1.1])

_FIRST = [
    "james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "david",
    "elizabeth", "william", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah",
    "lena", "karen", "noah", "emma", "liam", "olivia", "lucas", "mia", "hugo", "chloe", "mateo",
    "sofia", "jan", "anna", "piotr", "eva", "lars", "ingrid", "kenji", "yuki", "ravi", "priya",
]  # fmt: skip
_LAST = [
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
    "martinez", "hernandez", "lopez", "wilson", "anderson", "thomas", "taylor", "moore", "martin",
    "lee", "perez", "thompson", "white", "harris", "clark", "lewis", "walker", "young", "allen",
    "schmidt", "muller", "dubois", "rossi", "nowak", "jansen", "svensson", "tanaka", "sato",
    "patel", "silva", "kowalski",
]  # fmt: skip
_DOMAINS = ["example.com", "example.org", "example.net"]
_STATUSES = ["active", "inactive", "pending"]
_COUNTRIES = [
    "US", "GB", "DE", "FR", "CA", "AU", "NL", "ES", "IT", "SE",
    "PL", "BR", "MX", "IN", "JP", "IE", "DK", "NO", "BE", "AT",
]  # fmt: skip
_COUNTRY_W = np.array([30, 10, 9, 7, 6, 4, 4, 4, 4, 2, 3, 3, 2, 3, 3, 1, 1, 1, 1, 1], dtype=float)

# name, weight, median list price (USD), log-sigma
_CATEGORIES: list[tuple[str, float, float, float]] = [
    ("Electronics", 0.18, 80.0, 0.9),
    ("Books", 0.16, 15.0, 0.45),
    ("Home & Kitchen", 0.16, 35.0, 0.7),
    ("Toys", 0.10, 25.0, 0.6),
    ("Sports", 0.10, 40.0, 0.7),
    ("Beauty", 0.10, 18.0, 0.5),
    ("Grocery", 0.08, 7.0, 0.5),
    ("Clothing", 0.12, 30.0, 0.6),
]
_NOUNS: dict[str, list[str]] = {
    "Electronics": ["Headphones", "Laptop Sleeve", "Monitor", "USB-C Hub", "Webcam", "Speaker"],
    "Books": ["Garden", "River", "Algorithm", "Kingdom", "Voyage", "Recipe Book"],
    "Home & Kitchen": ["Coffee Grinder", "Skillet", "Knife Set", "Cutting Board", "Kettle"],
    "Toys": ["Puzzle", "Building Blocks", "Plush Bear", "Race Car", "Board Game"],
    "Sports": ["Yoga Mat", "Water Bottle", "Dumbbell", "Tennis Racket", "Running Belt"],
    "Beauty": ["Face Cream", "Shampoo", "Lip Balm", "Serum", "Hand Soap"],
    "Grocery": ["Olive Oil", "Green Tea", "Dark Chocolate", "Granola", "Espresso Beans"],
    "Clothing": ["T-Shirt", "Hoodie", "Rain Jacket", "Wool Socks", "Chinos"],
}
_BRANDS = ["Acme", "Northwind", "Contoso", "Globex", "Initech", "Umbrella", "Stark", "Wayne"]
_ADJECTIVES = ["Classic", "Deluxe", "Compact", "Eco", "Pro", "Ultra", "Everyday", "Premium"]
_VARIANTS = ["2-Pack", "Large", "Black", "Stainless Steel", "Family Size", "Blue, Medium"]
_AUTHORS = ["A. Rivera", "J. Okafor", "M. Lindqvist", "S. Tanaka", "R. Dubois", "L. Novak"]

_ORDER_STATUSES = ["placed", "shipped", "delivered", "cancelled", "returned"]
_CHANNELS = ["web", "mobile", "store"]
_METHODS = ["card", "paypal", "bank_transfer", "gift_card"]
_EVENT_TYPES = ["page_view", "product_view", "add_to_cart", "checkout", "purchase"]
_SITE = "https://shop.example.com"
_PAGES = [
    "/", "/", "/", "/deals", "/new", "/search?q=headphones", "/search?q=coffee",
    "/search?q=yoga+mat", "/category/electronics", "/category/books",
    "/category/home-kitchen", "/category/toys", "/category/sports", "/category/beauty",
    "/category/grocery", "/category/clothing",
]  # fmt: skip


@dataclass(frozen=True)
class GenerateSummary:
    """What ``generate`` wrote.

    ``files`` counts landed files (broken ones included, not-yet-landed ones excluded);
    ``rows`` counts data rows (CSV) or lines (JSON Lines) of the readable files, dirty rows
    and re-delivered events included; ``dirty_rows`` counts rows made invalid on purpose;
    ``broken_files`` lists ``"source/name"`` of files that cannot be read as their format.
    """

    files: dict[str, int]
    rows: dict[str, int]
    dirty_rows: dict[str, int]
    broken_files: list[str]


# --------------------------------------------------------------------------------------
# context, sink and small helpers


@dataclass
class _Ctx:
    start: datetime.date
    days: int
    seed: int
    scale: float
    clean: bool = False
    t0: int = 0
    end: int = 0
    dates: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        epoch_days = (self.start - datetime.date(1970, 1, 1)).days
        self.t0 = epoch_days * _DAY
        self.end = self.t0 + self.days * _DAY
        self.dates = [
            (self.start + datetime.timedelta(days=d)).isoformat() for d in range(self.days + 2)
        ]

    @property
    def n_customers(self) -> int:
        return max(20, round(2000 * self.scale))

    @property
    def n_products(self) -> int:
        return max(15, round(1000 * self.scale))

    @property
    def orders_per_day(self) -> float:
        return max(3.0, 300.0 * self.scale)

    @property
    def events_per_day(self) -> float:
        return max(60.0, 1500.0 * self.scale)

    @property
    def event_windows(self) -> int:
        target = 32 * self.scale**0.5
        return max(w for w in (6, 8, 12, 16, 24, 32, 48) if w <= max(6.0, target))

    def sub_rng(self, *keys: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *keys])

    def n_dirty(self, rng: np.random.Generator, n_rows: int, n_kinds: int, first: bool) -> int:
        return 0 if self.clean else _n_dirty(rng, n_rows, n_kinds, first)


class _Sink:
    """Writes landed files atomically and keeps the summary counts."""

    def __init__(
        self,
        root: Path,
        seed: int,
        progress: Callable[[str, int, int], None] | None,
        clean: bool = False,
    ):
        self.root = root
        self.seed = seed
        self.clean = clean
        self.progress = progress
        self.files = dict.fromkeys(SOURCES, 0)
        self.rows = dict.fromkeys(SOURCES, 0)
        self.dirty = dict.fromkeys(SOURCES, 0)
        self.broken: list[str] = []

    def report(self, label: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(label, done, total)

    def put(self, source: str, name: str, data: bytes) -> None:
        folder = self.root / source
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, folder / name)

    def put_unlanded(self, source: str, name: str, data: bytes) -> None:
        if self.clean:
            return
        folder = self.root / source
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)

    def broken_file(self, source: str, name: str, data: bytes) -> None:
        if self.clean:
            return
        self.put(source, name, data)
        self.files[source] += 1
        self.broken.append(f"{source}/{name}")

    def lines(self, source: str, name: str, lines: pl.Series, dirty: int) -> None:
        self.put(source, name, ("\n".join(lines.to_list()) + "\n").encode("utf-8"))
        self.files[source] += 1
        self.rows[source] += lines.len()
        self.dirty[source] += dirty

    def csv(self, source: str, name: str, df: pl.DataFrame, dirty: int) -> None:
        """Write a CSV of String columns with this file's quirks (BOM, CRLF, order, ...)."""
        index = self.files[source]
        r = random.Random(f"{self.seed}/{source}/{name}")
        bom = index == 0 or r.random() < 0.15
        crlf = index == 1 or r.random() < 0.25
        permute = index == 2 or r.random() < 0.15
        extra = index == 3 or r.random() < 0.15
        pad = index == 4 or r.random() < 0.10
        drop_channel = source == "orders" and (index == 5 or r.random() < 0.05)
        if pad and df.height:
            prng = np.random.default_rng(r.getrandbits(64))
            cols = r.sample(df.columns, k=min(2, df.width))
            df = df.with_columns(
                pl.when(pl.lit(pl.Series(prng.random(df.height) < 0.1)) & pl.col(c).is_not_null())
                .then(pl.concat_str([pl.lit(" "), pl.col(c), pl.lit("  ")]))
                .otherwise(pl.col(c))
                .alias(c)
                for c in cols
            )
        if drop_channel and "channel" in df.columns:
            df = df.drop("channel")
        cols = list(df.columns)
        if permute:
            r.shuffle(cols)
        if extra:
            extra_name, extra_value = r.choice(
                [
                    ("source_system", "shop-core"),
                    ("ingest_batch", str(r.randrange(10_000, 99_999))),
                    ("notes", "exported by nightly job, v2"),
                ]
            )
            df = df.with_columns(pl.lit(extra_value).alias(extra_name))
            cols.insert(r.randrange(len(cols) + 1), extra_name)
        text = df.select(cols).write_csv(
            include_bom=bom, line_terminator="\r\n" if crlf else "\n", quote_style="necessary"
        )
        self.put(source, name, text.encode("utf-8"))
        self.files[source] += 1
        self.rows[source] += df.height
        self.dirty[source] += dirty

    def summary(self) -> GenerateSummary:
        return GenerateSummary(
            files=dict(self.files),
            rows=dict(self.rows),
            dirty_rows=dict(self.dirty),
            broken_files=sorted(self.broken),  # written from two threads
        )


def _style(rng: np.random.Generator, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pick a spelling per timestamp and truncate the instant to what it can carry."""
    n = len(ts)
    fmt = rng.choice(6, size=n, p=_TS_P).astype(np.int8)
    off = rng.choice(_OFFSETS, size=n)
    return _truncate(ts, fmt), fmt, off


def _truncate(ts: np.ndarray, fmt: np.ndarray) -> np.ndarray:
    ts = np.asarray(ts, dtype=np.int64)
    keep_micros = (fmt == _TS_MICRO_OFFSET) | (fmt == _TS_7DIGITS)
    seconds = ts - ts % _S
    minutes = ts - ts % _MIN
    return np.where(fmt == _TS_MINUTE, minutes, np.where(keep_micros, ts, seconds))


def _ts_expr(ts: str, fmt: str, off: str) -> pl.Expr:
    """Spell epoch-microsecond UTC instants in one of the six ISO-8601 spellings."""
    f = pl.col(fmt)
    o = pl.col(off).cast(pl.Int64)
    with_offset = f.is_in([_TS_OFFSET, _TS_MICRO_OFFSET])
    local = pl.col(ts) + pl.when(with_offset).then(o * _MIN).otherwise(pl.lit(0, pl.Int64))
    base = local.cast(pl.Datetime("us")).dt.strftime("%Y-%m-%dT%H:%M:%S")
    micros = (pl.col(ts) % _S).cast(pl.String).str.zfill(6)
    seventh = ((pl.col(ts) // 7) % 10).cast(pl.String)
    sign = pl.when(o < 0).then(pl.lit("-")).otherwise(pl.lit("+"))
    hh = (o.abs() // 60).cast(pl.String).str.zfill(2)
    mm = (o.abs() % 60).cast(pl.String).str.zfill(2)
    return (
        pl.when(f == _TS_Z)
        .then(pl.concat_str([base, pl.lit("Z")]))
        .when(f == _TS_SPACE)
        .then(base.str.replace("T", " ", literal=True))
        .when(f == _TS_OFFSET)
        .then(pl.concat_str([base, sign, hh, pl.lit(":"), mm]))
        .when(f == _TS_MICRO_OFFSET)
        .then(pl.concat_str([base, pl.lit("."), micros, sign, hh, mm]))
        .when(f == _TS_MINUTE)
        .then(base.str.slice(0, 16))
        .otherwise(pl.concat_str([base, pl.lit("."), micros, seventh, pl.lit("Z")]))
    )


def _money_expr(cents: str) -> pl.Expr:
    c = pl.col(cents)
    return pl.concat_str(
        [(c // 100).cast(pl.String), pl.lit("."), (c % 100).cast(pl.String).str.zfill(2)]
    )


def _id_expr(col: str, prefix: str, width: int) -> pl.Expr:
    return pl.concat_str([pl.lit(prefix), pl.col(col).cast(pl.String).str.zfill(width)])


def _lookup_expr(col: str, names: Sequence[str]) -> pl.Expr:
    """Map integer codes to names; a negative code is NULL."""
    c = pl.col(col)
    mapped = c.replace_strict(list(range(len(names))), list(names), default=None)
    return pl.when(c >= 0).then(mapped.cast(pl.String)).otherwise(pl.lit(None, pl.String))


def _bad_ts(r: random.Random, good: str | None) -> str:
    day = good[:10] if good and len(good) >= 10 else "2024-01-05"
    year, month, dom = day[:4], day[5:7], day[8:10]
    return r.choice(
        [
            f"{dom}/{month}/{year} 10:00",
            day,
            f"{year}-02-30T10:00:00",
            f"{day}T24:00:00",
            f"{day}T10:61:00",
            "yesterday",
        ]
    )


def _n_dirty(rng: np.random.Generator, n_rows: int, n_kinds: int, first: bool) -> int:
    if n_rows == 0:
        return 0
    want = int(rng.binomial(n_rows, _DIRTY_RATE))
    if first:
        want = max(want, n_kinds)
    return min(want, max(1, n_rows // 4))


def _inject_copies(
    df: pl.DataFrame,
    n_dirty: int,
    kinds: Sequence[str],
    mutate: Callable[[str, dict[str, Any], random.Random], dict[str, Any]],
    rng: np.random.Generator,
    r: random.Random,
) -> pl.DataFrame:
    """Insert invalid copies of ``n_dirty`` random rows, each just before its original."""
    df = df.with_columns((pl.col("_pos") * 2).alias("_pos"), pl.lit(False).alias("_dirty"))
    if n_dirty <= 0 or df.height == 0:
        return df
    idx = np.sort(rng.choice(df.height, size=min(n_dirty, df.height), replace=False))
    start = r.randrange(len(kinds))
    copies = []
    for j, row in enumerate(df[idx].to_dicts()):
        new = mutate(kinds[(start + j) % len(kinds)], dict(row), r)
        new["_pos"] = row["_pos"] - 1
        new["_dirty"] = True
        copies.append(new)
    return pl.concat([df, pl.DataFrame(copies, schema=df.schema)]).sort("_pos", maintain_order=True)


def _emit_csv(
    sink: _Sink,
    source: str,
    df: pl.DataFrame,
    keys: list[str],
    name_of: Callable[..., str],
    columns: list[str],
) -> None:
    parts = df.partition_by(keys, as_dict=True, maintain_order=True)
    for key in sorted(parts):
        part = parts[key]
        sink.csv(source, name_of(*key), part.select(columns), int(part["_dirty"].sum()))


def _emit_lines(
    sink: _Sink, source: str, df: pl.DataFrame, keys: list[str], name_of: Callable[..., str]
) -> None:
    parts = df.partition_by(keys, as_dict=True, maintain_order=True)
    for key in sorted(parts):
        part = parts[key]
        sink.lines(source, name_of(*key), part["_line"], int(part["_dirty"].sum()))


def _change_days(days: int, shift: float) -> list[int]:
    n = min(8, max(1, days // 7))
    return sorted({min(days - 1, int((k + shift) * days / (n + 1))) for k in range(1, n + 1)})


def _zipf_weights(rng: np.random.Generator, n: int, a: float) -> tuple[np.ndarray, np.ndarray]:
    """Popularity weights (and each item's rank) over a random ranking of n items."""
    rank = rng.permutation(n)
    w = 1.0 / (rank + 5.0) ** a
    return w / w.sum(), rank


# --------------------------------------------------------------------------------------
# customers


def _customers(rng: np.random.Generator, ctx: _Ctx, sink: _Sink) -> np.ndarray:
    n = ctx.n_customers
    first = rng.integers(len(_FIRST), size=n)
    last = rng.integers(len(_LAST), size=n)
    num = rng.integers(1, 1000, size=n)
    dom = rng.choice(3, size=n, p=[0.8, 0.1, 0.1])
    status = rng.choice(3, size=n, p=[0.8, 0.12, 0.08])
    country = rng.choice(len(_COUNTRIES), size=n, p=_COUNTRY_W / _COUNTRY_W.sum())
    signup, s_fmt, s_off = _style(rng, ctx.t0 - rng.integers(_DAY, 3 * 365 * _DAY, size=n))
    email_null = rng.random(n) < 0.01
    country[rng.random(n) < 0.02] = -1
    signup_null = rng.random(n) < 0.01
    _, u_fmt, u_off = _style(rng, np.full(n, ctx.t0))

    emails: list[str | None] = [
        None if email_null[i] else f"{_FIRST[first[i]]}.{_LAST[last[i]]}{num[i]}@{_DOMAINS[dom[i]]}"
        for i in range(n)
    ]
    # version rows: (cid, email, status, country, updated_at, fmt, offset, file)
    rows: list[tuple[int, str | None, int, int, int, int, int, int]] = [
        (i, emails[i], int(status[i]), int(country[i]), ctx.t0, int(u_fmt[i]), int(u_off[i]), 0)
        for i in range(n)
    ]
    chg_days = _change_days(ctx.days, 0.0)

    def add(c: int, e: str | None, s: int, co: int, k: int, lo: int, hi: int) -> None:
        """Append a version of customer c in change file k, updated between lo and hi."""
        t = ctx.t0 + chg_days[k] * _DAY + int(rng.integers(lo, hi))
        f = int(rng.choice(6, p=_TS_P))
        t = int(_truncate(np.array([t]), np.array([f]))[0])
        rows.append((c, e, s, co, t, f, int(rng.choice(_OFFSETS)), k + 1))

    n_changes = max(3, round(0.02 * n))
    pick = rng.choice(n, size=min(n, n_changes + 2), replace=False)
    aba, same = int(pick[0]), int(pick[1])
    for c in map(int, pick[2:]):
        k = int(rng.integers(len(chg_days)))
        e, s, co = emails[c], int(status[c]), int(country[c])
        u = rng.random()
        if u < 0.4:
            e = f"{_FIRST[first[c]]}.{_LAST[last[c]]}{int(rng.integers(1, 1000))}@example.com"
        elif u < 0.8:
            s = (s + 1 + int(rng.integers(2))) % 3
        else:
            co = (co + 1 + int(rng.integers(len(_COUNTRIES) - 1))) % len(_COUNTRIES)
        add(c, e, s, co, k, _HOUR, _DAY - _HOUR)
    # A -> B -> A: two more versions of one customer, the last equal to the first
    k1 = int(rng.integers(len(chg_days)))
    k2 = int(rng.integers(k1, len(chg_days)))
    e, s, co = emails[aba], int(status[aba]), int(country[aba])
    add(aba, e, (s + 1) % 3, co, k1, _HOUR, 11 * _HOUR)
    add(aba, e, s, co, k2, 12 * _HOUR, 23 * _HOUR)
    # a row that repeats the current version unchanged: not a new version
    k = int(rng.integers(len(chg_days)))
    add(same, emails[same], int(status[same]), int(country[same]), k, _HOUR, 23 * _HOUR)

    rows.sort(key=lambda row: (row[7], row[4], row[0]))
    cid = np.array([row[0] for row in rows])
    frame = pl.DataFrame(
        {
            "cid": cid + 1,
            "email": [row[1] for row in rows],
            "st": np.array([row[2] for row in rows]),
            "co": np.array([row[3] for row in rows]),
            "s_ts": signup[cid],
            "s_null": signup_null[cid],
            "s_fmt": s_fmt[cid],
            "s_off": s_off[cid],
            "u_ts": np.array([row[4] for row in rows], dtype=np.int64),
            "u_fmt": np.array([row[5] for row in rows], dtype=np.int8),
            "u_off": np.array([row[6] for row in rows], dtype=np.int64),
            "_file": np.array([row[7] for row in rows]),
            "_pos": np.arange(len(rows)),
        },
        schema_overrides={"email": pl.String},
    )
    frame = frame.select(
        _id_expr("cid", "C-", 6).alias("customer_id"),
        pl.col("email"),
        _lookup_expr("st", _STATUSES).alias("status"),
        _lookup_expr("co", _COUNTRIES).alias("country"),
        pl.when(pl.col("s_null"))
        .then(pl.lit(None, pl.String))
        .otherwise(_ts_expr("s_ts", "s_fmt", "s_off"))
        .alias("signup_ts"),
        _ts_expr("u_ts", "u_fmt", "u_off").alias("updated_at"),
        "_file",
        "_pos",
    )

    def mutate(kind: str, row: dict[str, Any], r: random.Random) -> dict[str, Any]:
        if kind == "missing_id":
            row["customer_id"] = None
        elif kind == "missing_updated":
            row["updated_at"] = " "
        elif kind == "bad_updated":
            row["updated_at"] = _bad_ts(r, row["updated_at"])
        elif kind == "bad_signup":
            row["signup_ts"] = _bad_ts(r, row["signup_ts"])
        elif kind == "status_case":
            row["status"] = (row["status"] or "active").capitalize()
        elif kind == "status_unknown":
            row["status"] = "unknown"
        else:  # duplicate key, different content: the earlier row loses
            row["email"] = f"dup.{r.randrange(1000)}.{row['email'] or 'x@example.com'}"
        return row

    kinds = [
        "missing_id",
        "missing_updated",
        "bad_updated",
        "bad_signup",
        "status_case",
        "status_unknown",
        "duplicate_key",
    ]
    drng = ctx.sub_rng(1, 0)
    frame = _inject_copies(
        frame,
        ctx.n_dirty(drng, frame.height, len(kinds), True),
        kinds,
        mutate,
        drng,
        random.Random(f"{ctx.seed}/customers/dirty"),
    )
    names = ["customers_0000_initial.csv"] + [
        f"customers_{ctx.dates[d]}_changes.csv" for d in chg_days
    ]
    cols = ["customer_id", "email", "status", "country", "signup_ts", "updated_at"]
    _emit_csv(sink, "customers", frame, ["_file"], lambda k: names[k], cols)

    # broken: a legacy export encoded latin-1 (invalid UTF-8)
    legacy = ["José Müller", "Zoë Ångström", "François Lefèvre", "Søren Kierkegård"]
    d = chg_days[0]
    lines = ["customer_id,full_name,email,status,country,signup_ts,updated_at"]
    for j, full in enumerate(legacy):
        c = int(rng.integers(n))
        lines.append(
            f"C-{c + 1:06d},{full},{_FIRST[first[c]]}.{_LAST[last[c]]}{num[c]}@example.com,"
            f"active,{_COUNTRIES[j]},2023-06-0{j + 1}T10:00:00Z,{ctx.dates[d]}T12:0{j}:00Z"
        )
    sink.broken_file(
        "customers",
        f"customers_{ctx.dates[d]}_legacy.csv",
        ("\r\n".join(lines) + "\r\n").encode("latin-1"),
    )
    sink.report("customers", 1, 1)
    w, _ = _zipf_weights(rng, n, 0.6)
    return w


# --------------------------------------------------------------------------------------
# products


@dataclass
class _Products:
    weights: np.ndarray
    v_from: np.ndarray  # versions sorted by (product, valid_from)
    v_list: np.ndarray
    first: np.ndarray  # index of each product's first version
    count: np.ndarray  # number of versions per product

    def price_at(self, prod: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """List price (cents) of the version valid at ts; the first version before it."""
        p = np.maximum(prod, 0)
        idx = self.first[p].copy()
        for k in range(1, int(self.count.max())):
            cand = np.minimum(self.first[p] + k, len(self.v_from) - 1)
            ok = (k < self.count[p]) & (self.v_from[cand] <= ts)
            idx = np.where(ok, cand, idx)
        return self.v_list[idx]


def _product_name(r: random.Random, category: str) -> str:
    brand, noun = r.choice(_BRANDS), r.choice(_NOUNS[category])
    u = r.random()
    if category == "Books" and u < 0.5:
        return f'"The {r.choice(_ADJECTIVES)} {noun}" by {r.choice(_AUTHORS)}'
    if category in ("Electronics", "Home & Kitchen") and u < 0.3:
        return f'{brand} {r.choice([10, 13, 15, 17, 24, 27])}" {noun}'
    if u < 0.55:
        return f"{brand} {r.choice(_ADJECTIVES)} {noun}"
    return f"{brand} {noun}, {r.choice(_VARIANTS)}"


def _products(rng: np.random.Generator, ctx: _Ctx, sink: _Sink) -> _Products:
    n = ctx.n_products
    cw = np.array([c[1] for c in _CATEGORIES])
    cat = rng.choice(len(_CATEGORIES), size=n, p=cw / cw.sum())
    median = np.array([c[2] for c in _CATEGORIES])[cat]
    sigma = np.array([c[3] for c in _CATEGORIES])[cat]
    price = np.maximum(1.0, median * np.exp(rng.normal(0.0, 1.0, size=n) * sigma))
    list_c = np.where(
        rng.random(n) < 0.6, np.floor(price).astype(np.int64) * 100 + 99, np.round(price * 100)
    ).astype(np.int64)
    margin = rng.uniform(0.4, 0.8, size=n)
    leaders = rng.random(n) < 0.02  # a few loss leaders sell below cost
    margin[leaders] = rng.uniform(1.05, 1.3, size=int(leaders.sum()))
    cost_c = np.round(list_c * margin).astype(np.int64)
    weights, rank = _zipf_weights(rng, n, 1.0)
    r = random.Random(f"{ctx.seed}/products/names")
    names = [_product_name(r, _CATEGORIES[c][0]) for c in cat]

    # a handful of popular products whose first version is dated after orders using them
    n_late = min(n // 5, max(3, round(0.004 * n)))
    late = np.flatnonzero((rank >= 2) & (rank < 2 + n_late))
    upd = np.full(n, ctx.t0, dtype=np.int64)
    late_day = rng.integers(0, min(10, ctx.days - 1) + 1, size=len(late))
    upd[late] = ctx.t0 + late_day * _DAY + rng.integers(12 * _HOUR, 23 * _HOUR, size=len(late))
    upd, u_fmt, u_off = _style(rng, upd)
    upd[late] -= upd[late] % _MIN  # whole minutes: correct in every spelling

    # version rows: (pid, name, category, list, cost, updated_at, fmt, offset, file)
    rows: list[tuple[int, str, int, int, int, int, int, int, int]] = [
        (i, names[i], *map(int, (cat[i], list_c[i], cost_c[i], upd[i], u_fmt[i], u_off[i])), 0)
        for i in range(n)
    ]
    chg_days = _change_days(ctx.days, 0.5)
    candidates = np.setdiff1d(np.arange(n), late)
    n_changes = min(len(candidates), max(3, round(0.03 * n)) + 1)
    pick = rng.choice(candidates, size=n_changes, replace=False)
    for j, p in enumerate(pick):
        p = int(p)
        k = int(rng.integers(len(chg_days)))
        t = ctx.t0 + chg_days[k] * _DAY + int(rng.integers(_HOUR, 23 * _HOUR))
        t -= t % _MIN
        c, lc, cc = int(cat[p]), int(list_c[p]), int(cost_c[p])
        u = rng.random()
        if j == 0:
            pass  # an unchanged repeat: not a new version
        elif u < 0.6:
            lc = max(99, round(lc * rng.uniform(0.8, 1.25)))
            cc = round(cc * rng.uniform(0.95, 1.1))
        elif u < 0.85:
            cc = round(cc * rng.uniform(0.85, 1.2))
        else:
            c = (c + 1 + int(rng.integers(len(_CATEGORIES) - 1))) % len(_CATEGORIES)
        f, o = int(rng.choice(6, p=_TS_P)), int(rng.choice(_OFFSETS))
        rows.append((p, names[p], c, lc, cc, t, f, o, k + 1))
    rows.sort(key=lambda row: (row[8], row[5], row[0]))

    pid = np.array([row[0] for row in rows])
    frm = np.array([row[5] for row in rows], dtype=np.int64)
    lst = np.array([row[3] for row in rows], dtype=np.int64)
    order = np.lexsort((frm, pid))
    count = np.bincount(pid, minlength=n)
    products = _Products(
        weights=weights,
        v_from=frm[order],
        v_list=lst[order],
        first=np.concatenate([[0], np.cumsum(count)[:-1]]),
        count=count,
    )

    frame = pl.DataFrame(
        {
            "pid": pid + 1,
            "name": [row[1] for row in rows],
            "cat": np.array([row[2] for row in rows]),
            "lc": lst,
            "cc": np.array([row[4] for row in rows], dtype=np.int64),
            "u_ts": frm,
            "u_fmt": np.array([row[6] for row in rows], dtype=np.int8),
            "u_off": np.array([row[7] for row in rows], dtype=np.int64),
            "_file": np.array([row[8] for row in rows]),
            "_pos": np.arange(len(rows)),
        }
    ).select(
        _id_expr("pid", "P-", 6).alias("product_id"),
        "name",
        _lookup_expr("cat", [c[0] for c in _CATEGORIES]).alias("category"),
        _money_expr("lc").alias("list_price"),
        _money_expr("cc").alias("unit_cost"),
        _ts_expr("u_ts", "u_fmt", "u_off").alias("updated_at"),
        "_file",
        "_pos",
    )

    def mutate(kind: str, row: dict[str, Any], r: random.Random) -> dict[str, Any]:
        if kind == "missing_category":
            row["category"] = None
        elif kind == "price_abc":
            row["list_price"] = "abc"
        elif kind == "price_3dp":
            row["list_price"] = f"{row['list_price']}5" if "." in row["list_price"] else "12.345"
        elif kind == "negative_cost":
            row["unit_cost"] = f"-{row['unit_cost']}"
        elif kind == "bad_updated":
            row["updated_at"] = _bad_ts(r, row["updated_at"])
        elif kind == "missing_id":
            row["product_id"] = ""
        else:
            row["name"] = f"{row['name']} (old listing)"
        return row

    kinds = [
        "missing_category",
        "price_abc",
        "price_3dp",
        "negative_cost",
        "bad_updated",
        "missing_id",
        "duplicate_key",
    ]
    drng = ctx.sub_rng(2, 0)
    frame = _inject_copies(
        frame,
        ctx.n_dirty(drng, frame.height, len(kinds), True),
        kinds,
        mutate,
        drng,
        random.Random(f"{ctx.seed}/products/dirty"),
    )
    file_names = ["products_0000_initial.csv"] + [
        f"products_{ctx.dates[d]}_changes.csv" for d in chg_days
    ]
    cols = ["product_id", "name", "category", "list_price", "unit_cost", "updated_at"]
    _emit_csv(sink, "products", frame, ["_file"], lambda k: file_names[k], cols)
    sink.report("products", 1, 1)
    return products


# --------------------------------------------------------------------------------------
# orders, items, payments: numeric models


@dataclass
class _Orders:
    n: int
    day: np.ndarray
    ts: np.ndarray
    fmt: np.ndarray
    off: np.ndarray
    cust: np.ndarray
    chan: np.ndarray
    placed_day: np.ndarray
    refund_day: np.ndarray
    # rows of the orders files, sorted by (day, seq, rank, order)
    r_order: np.ndarray
    r_day: np.ndarray
    r_seq: np.ndarray
    r_status: np.ndarray
    r_ts: np.ndarray


def _orders(rng: np.random.Generator, ctx: _Ctx, cust_w: np.ndarray) -> _Orders:
    days = ctx.days
    weekday = np.array([(ctx.start.weekday() + d) % 7 for d in range(days)])
    lam = ctx.orders_per_day * _WEEKDAY_F[weekday] * (1.0 + 0.1 * np.arange(days) / 365.0)
    per_day = np.maximum(rng.poisson(lam), 1)
    n = int(per_day.sum())
    od = np.repeat(np.arange(days), per_day)
    hour = rng.choice(24, size=n, p=_HOUR_P)
    ts = ctx.t0 + od * _DAY + hour * _HOUR + rng.integers(0, _HOUR, size=n)
    order = np.argsort(ts, kind="stable")
    ts, hour = ts[order], hour[order]
    ts, fmt, off = _style(rng, ts)
    cust = rng.choice(len(cust_w), size=n, p=cust_w)
    chan = rng.choice(3, size=n, p=[0.55, 0.35, 0.10])
    chan[rng.random(n) < 0.02] = -1

    # lifecycle: the day each status change arrives (_NEVER when it does not happen)
    cancelled = rng.random(n) < 0.05
    ship = od + rng.choice([1, 2], size=n, p=[0.6, 0.4])
    deliver = ship + rng.integers(2, 6, size=n)
    returned = ~cancelled & (rng.random(n) < 0.04)
    ret = np.where(returned, deliver + rng.integers(5, 21, size=n), _NEVER)
    cancel = np.where(cancelled, od + rng.integers(1, 3, size=n), _NEVER)
    ship = np.where(cancelled, _NEVER, ship)
    deliver = np.where(cancelled, _NEVER, deliver)
    late = (hour == 23) & (rng.random(n) < 0.5) & (od < days - 1)
    placed_day = od + late

    # a handful of order_ts corrections that move an order to another day
    corr_day = np.full(n, _NEVER, dtype=np.int64)
    corr_ts = ts.copy()
    cand = np.flatnonzero(placed_day + 1 <= days - 1)
    n_corr = min(len(cand), max(3, min(12, round(4 * ctx.scale)))) if days >= 2 else 0
    if n_corr:
        pick = np.sort(rng.choice(cand, size=n_corr, replace=False))
        back = (od[pick] > 0) & (rng.random(n_corr) < 0.5)
        new_day = np.where(back, od[pick] - 1, od[pick] + 1)
        new_ts = ctx.t0 + new_day * _DAY + rng.integers(8 * _HOUR, 20 * _HOUR, size=n_corr)
        corr_ts[pick] = _truncate(new_ts, fmt[pick])
        corr_day[pick] = placed_day[pick] + 1

    o = np.arange(n)
    parts = [(o, placed_day, np.ones(n), np.where(late, 0, 1), np.zeros(n))]
    for code, when in ((1, ship), (2, deliver), (3, cancel), (4, ret)):
        m = (when < days) & (when != corr_day)
        parts.append(
            (o[m], when[m], np.full(m.sum(), 2), np.zeros(m.sum()), np.full(m.sum(), code))
        )
    c = np.flatnonzero(corr_day < _NEVER)
    cday = corr_day[c]
    st = np.zeros(len(c), dtype=np.int64)
    st = np.where(ship[c] <= cday, 1, st)
    st = np.where(deliver[c] <= cday, 2, st)
    st = np.where(ret[c] <= cday, 4, st)
    st = np.where(cancel[c] <= cday, 3, st)
    parts.append((c, cday, np.full(len(c), 2), np.ones(len(c)), st))
    r_order = np.concatenate([p[0] for p in parts]).astype(np.int64)
    r_day = np.concatenate([p[1] for p in parts]).astype(np.int64)
    r_seq = np.concatenate([p[2] for p in parts]).astype(np.int64)
    r_rank = np.concatenate([p[3] for p in parts]).astype(np.int64)
    r_status = np.concatenate([p[4] for p in parts]).astype(np.int64)
    is_corr = np.zeros(len(r_order), dtype=bool)
    is_corr[len(r_order) - len(c) :] = True
    r_ts = np.where((r_day > corr_day[r_order]) | is_corr, corr_ts[r_order], ts[r_order])
    srt = np.lexsort((r_order, r_rank, r_seq, r_day))
    refund_day = np.minimum(cancel, ret)
    return _Orders(
        n=n,
        day=od,
        ts=ts,
        fmt=fmt,
        off=off,
        cust=cust,
        chan=chan,
        placed_day=placed_day,
        refund_day=refund_day,
        r_order=r_order[srt],
        r_day=r_day[srt],
        r_seq=r_seq[srt],
        r_status=r_status[srt],
        r_ts=r_ts[srt],
    )


@dataclass
class _Items:
    order: np.ndarray
    line: np.ndarray
    prod: np.ndarray  # -k for P-UNKNOWN-k
    qty: np.ndarray
    price: np.ndarray  # cents
    day: np.ndarray  # arrival day


def _items(rng: np.random.Generator, ctx: _Ctx, orders: _Orders, products: _Products) -> _Items:
    n = orders.n
    per = 1 + np.minimum(rng.poisson(1.5, size=n), 9)
    total = int(per.sum())
    item_o = np.repeat(np.arange(n), per)
    starts = np.concatenate([[0], np.cumsum(per)[:-1]])
    line = np.arange(total) - np.repeat(starts, per) + 1
    prod = rng.choice(len(products.weights), size=total, p=products.weights)
    qty = rng.choice(np.arange(1, 6), size=total, p=[0.6, 0.22, 0.1, 0.05, 0.03])
    price = products.price_at(prod, orders.ts[item_o])
    disc = rng.random(total) < 0.15
    factor = 1.0 - rng.uniform(0.05, 0.3, size=total)
    price = np.where(disc, np.maximum(1, np.round(price * factor)), price).astype(np.int64)
    n_unknown = min(total, max(2, min(20, round(3 * ctx.scale))))
    unk = rng.choice(total, size=n_unknown, replace=False)
    prod[unk] = -(np.arange(n_unknown) % 3 + 1)
    price[unk] = rng.integers(199, 9999, size=n_unknown)
    next_day = (rng.random(n) < 0.05) & (orders.placed_day < ctx.days - 1)
    day = (orders.placed_day + next_day)[item_o]
    srt = np.lexsort((line, item_o, day))
    return _Items(
        order=item_o[srt],
        line=line[srt],
        prod=prod[srt],
        qty=qty[srt],
        price=price[srt],
        day=day[srt],
    )


@dataclass
class _Payments:
    pid: np.ndarray
    order: np.ndarray
    amount: np.ndarray
    method: np.ndarray
    status: np.ndarray  # 0 settled, 1 failed, 2 refunded
    ts: np.ndarray
    fmt: np.ndarray
    off: np.ndarray
    day: np.ndarray
    seq: np.ndarray


def _payments(rng: np.random.Generator, ctx: _Ctx, orders: _Orders, items: _Items) -> _Payments:
    n = orders.n
    total = np.bincount(items.order, weights=items.qty * items.price, minlength=n)
    total = np.round(total).astype(np.int64)
    base = orders.ts + rng.integers(5 * _S, 20 * _MIN, size=n)
    method = rng.choice(4, size=n, p=[0.62, 0.22, 0.08, 0.08])
    fail = rng.random(n) < 0.12
    split = ~fail & (rng.random(n) < 0.25) & (total >= 500) & (method != 3)
    gc = np.where(split, np.clip(np.round(total * rng.uniform(0.1, 0.5, n)), 100, total - 100), 0)
    gc = gc.astype(np.int64)
    o = np.arange(n)
    f = np.flatnonzero(fail)
    s = np.flatnonzero(split)
    p_order = np.concatenate([o, f, s])
    p_amount = np.concatenate([total - gc, total[f], gc[s]])
    retry_method = np.where(rng.random(len(f)) < 0.7, method[f], 0)
    p_method = np.concatenate([method, retry_method, np.full(len(s), 3)])
    p_status = np.concatenate([fail.astype(np.int64), np.zeros(len(f) + len(s), dtype=np.int64)])
    p_ts = np.concatenate(
        [
            base,
            base[f] + rng.integers(2 * _MIN, 3 * _HOUR, size=len(f)),
            base[s] + rng.integers(1 * _S, 30 * _S, size=len(s)),
        ]
    )
    p_ts, p_fmt, p_off = _style(rng, p_ts)
    keep = p_ts < ctx.end
    srt = np.flatnonzero(keep)[np.argsort(p_ts[keep], kind="stable")]
    p_order, p_amount, p_method, p_status = (
        p_order[srt],
        p_amount[srt],
        p_method[srt],
        p_status[srt],
    )
    p_ts, p_fmt, p_off = p_ts[srt], p_fmt[srt], p_off[srt]
    p_id = np.arange(1, len(srt) + 1)
    p_method[rng.random(len(srt)) < 0.01] = -1

    # refunds of settled payments of cancelled and returned orders
    rday = orders.refund_day[p_order]
    m = (p_status == 0) & (rday < ctx.days)
    r_ts = ctx.t0 + rday[m] * _DAY + rng.integers(8 * _HOUR, 20 * _HOUR, size=int(m.sum()))
    r_ts = np.maximum(r_ts, p_ts[m] + _HOUR)
    r_ts, r_fmt, r_off = _style(rng, r_ts)
    rk = r_ts < ctx.end
    sel = np.flatnonzero(m)[rk]
    pid = np.concatenate([p_id, p_id[sel]])
    ts = np.concatenate([p_ts, r_ts[rk]])
    seq = np.concatenate([np.ones(len(p_id), dtype=np.int64), np.full(len(sel), 2)])
    day = (ts - ctx.t0) // _DAY
    srt = np.lexsort((pid, ts, seq, day))
    return _Payments(
        pid=pid[srt],
        order=np.concatenate([p_order, p_order[sel]])[srt],
        amount=np.concatenate([p_amount, p_amount[sel]])[srt],
        method=np.concatenate([p_method, p_method[sel]])[srt],
        status=np.concatenate([p_status, np.full(len(sel), 2)])[srt],
        ts=ts[srt],
        fmt=np.concatenate([p_fmt, r_fmt[rk]])[srt],
        off=np.concatenate([p_off, r_off[rk]])[srt],
        day=day[srt],
        seq=seq[srt],
    )


# --------------------------------------------------------------------------------------
# orders, items, payments: writing


def _chunks(days: int) -> list[tuple[int, int]]:
    return [(c, min(days + 1, c + _CHUNK_DAYS)) for c in range(0, days + 1, _CHUNK_DAYS)]


def _write_orders(ctx: _Ctx, sink: _Sink, orders: _Orders) -> None:
    broken_day = ctx.days // 2

    def mutate(kind: str, row: dict[str, Any], r: random.Random) -> dict[str, Any]:
        if kind == "missing_customer":
            row["customer_id"] = None
        elif kind == "missing_id":
            row["order_id"] = "  "
        elif kind == "bad_ts":
            row["order_ts"] = _bad_ts(r, row["order_ts"])
        elif kind == "status_upper":
            row["status"] = row["status"].upper()
        elif kind == "status_unknown":
            row["status"] = "unknown"
        else:  # duplicate key with different content: the earlier row loses
            row["customer_id"] = f"C-{r.randrange(1, 10**6):06d}"
        return row

    kinds = [
        "missing_customer",
        "missing_id",
        "bad_ts",
        "status_upper",
        "status_unknown",
        "duplicate_key",
    ]
    cols = ["order_id", "customer_id", "order_ts", "status", "channel"]
    chunks = _chunks(ctx.days)
    for ci, (d0, d1) in enumerate(chunks):
        lo, hi = np.searchsorted(orders.r_day, [d0, d1])
        if hi > lo:
            o = orders.r_order[lo:hi]
            frame = pl.DataFrame(
                {
                    "o": o + 1,
                    "c": orders.cust[o] + 1,
                    "ts": orders.r_ts[lo:hi],
                    "fmt": orders.fmt[o],
                    "off": orders.off[o],
                    "st": orders.r_status[lo:hi],
                    "ch": orders.chan[o],
                    "_day": orders.r_day[lo:hi],
                    "_seq": orders.r_seq[lo:hi],
                    "_pos": np.arange(lo, hi),
                }
            ).select(
                _id_expr("o", "O-", 7).alias("order_id"),
                _id_expr("c", "C-", 6).alias("customer_id"),
                _ts_expr("ts", "fmt", "off").alias("order_ts"),
                _lookup_expr("st", _ORDER_STATUSES).alias("status"),
                _lookup_expr("ch", _CHANNELS).alias("channel"),
                "_day",
                "_seq",
                "_pos",
            )
            drng = ctx.sub_rng(3, ci)
            r = random.Random(f"{ctx.seed}/orders/dirty/{ci}")
            n_dirty = ctx.n_dirty(drng, frame.height, len(kinds), ci == 0)
            frame = _inject_copies(frame, n_dirty, kinds, mutate, drng, r)
            _emit_csv(
                sink,
                "orders",
                frame,
                ["_day", "_seq"],
                lambda d, s: f"orders_{ctx.dates[d]}_{s:03d}.csv",
                cols,
            )
            if d0 <= broken_day < d1:
                sample = frame.filter(
                    (pl.col("_day") == broken_day) & (pl.col("_seq") == 1) & ~pl.col("_dirty")
                ).head(5)
                text = sample.select(pl.col("order_id").alias("id"), *cols[1:]).write_csv()
                sink.broken_file(
                    "orders", f"orders_{ctx.dates[broken_day]}_003.csv", text.encode("utf-8")
                )
        sink.report("orders", ci + 1, len(chunks))
    sink.put_unlanded(
        "orders",
        "orders_next.csv.tmp",
        f"order_id,customer_id,order_ts,status,channel\nO-9999999,C-000001,"
        f"{ctx.dates[ctx.days - 1]}T23:59:00Z,placed,web\nO-99".encode(),
    )


def _write_items(ctx: _Ctx, sink: _Sink, items: _Items, n_orders: int) -> None:
    orphan_base = n_orders + 5_000_001

    def mutate(kind: str, row: dict[str, Any], r: random.Random) -> dict[str, Any]:
        if kind == "missing_product":
            row["product_id"] = None
        elif kind == "negative_qty":
            row["quantity"] = f"-{row['quantity']}"
        elif kind == "qty_abc":
            row["quantity"] = r.choice(["abc", "3.0", "two"])
        elif kind == "price_3dp":
            row["unit_price"] = "12.345"
        elif kind == "line_zero":
            row["line_number"] = "0"
        elif kind == "orphan":
            row["order_id"] = f"O-{orphan_base + r.randrange(10**6):07d}"
        else:  # duplicate key with different content
            row["quantity"] = str(int(row["quantity"]) % 5 + 1)
        return row

    kinds = [
        "missing_product",
        "negative_qty",
        "qty_abc",
        "price_3dp",
        "line_zero",
        "orphan",
        "duplicate_key",
    ]
    cols = ["order_id", "line_number", "product_id", "quantity", "unit_price"]
    chunks = _chunks(ctx.days)
    for ci, (d0, d1) in enumerate(chunks):
        lo, hi = np.searchsorted(items.day, [d0, d1])
        if hi > lo:
            frame = pl.DataFrame(
                {
                    "o": items.order[lo:hi] + 1,
                    "ln": items.line[lo:hi],
                    "p": np.where(items.prod[lo:hi] >= 0, items.prod[lo:hi] + 1, items.prod[lo:hi]),
                    "q": items.qty[lo:hi],
                    "pr": items.price[lo:hi],
                    "_day": items.day[lo:hi],
                    "_pos": np.arange(lo, hi),
                }
            ).select(
                _id_expr("o", "O-", 7).alias("order_id"),
                pl.col("ln").cast(pl.String).alias("line_number"),
                pl.when(pl.col("p") >= 0)
                .then(_id_expr("p", "P-", 6))
                .otherwise(pl.concat_str([pl.lit("P-UNKNOWN-"), (-pl.col("p")).cast(pl.String)]))
                .alias("product_id"),
                pl.col("q").cast(pl.String).alias("quantity"),
                _money_expr("pr").alias("unit_price"),
                "_day",
                "_pos",
            )
            drng = ctx.sub_rng(4, ci)
            r = random.Random(f"{ctx.seed}/order_items/dirty/{ci}")
            n_dirty = ctx.n_dirty(drng, frame.height, len(kinds), ci == 0)
            frame = _inject_copies(frame, n_dirty, kinds, mutate, drng, r)
            _emit_csv(
                sink,
                "order_items",
                frame,
                ["_day"],
                lambda d: f"order_items_{ctx.dates[d]}_001.csv",
                cols,
            )
        sink.report("order_items", ci + 1, len(chunks))


def _payment_mutate(kind: str, line: str, r: random.Random) -> str:
    if kind == "not_json":
        return line[: max(10, len(line) // 2)]
    rec = json.loads(line)
    if kind == "amount_zero":
        rec["amount"] = "0.00"
    elif kind == "amount_3dp":
        rec["amount"] = 12.345
    elif kind == "amount_abc":
        rec["amount"] = "abc"
    elif kind == "currency_eur":
        rec["currency"] = "EUR"
    elif kind == "status_bad":
        rec["status"] = r.choice(["SETTLED", "unknown", "pending"])
    elif kind == "missing_id":
        del rec["payment_id"]
    elif kind == "bad_ts":
        rec["paid_ts"] = _bad_ts(r, rec["paid_ts"])
    else:  # duplicate key with different content
        rec["amount"] = f"{float(rec['amount']) + 1.0:.2f}"
    return json.dumps(rec, separators=(",", ":"))


def _quoted(value: pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.lit('"'), value, pl.lit('"')])


def _payment_line_expr(spaced: pl.Expr) -> pl.Expr:
    """One JSON object per payment; ``spaced`` rows use ``", "`` and ``": "`` separators."""
    comma = pl.when(spaced).then(pl.lit(', "')).otherwise(pl.lit(',"'))
    colon = pl.when(spaced).then(pl.lit('": ')).otherwise(pl.lit('":'))

    def member(name: str, value: pl.Expr) -> pl.Expr:
        return pl.concat_str([comma, pl.lit(name), colon, value])

    amount = pl.when(pl.col("as_text")).then(_quoted(_money_expr("a"))).otherwise(_money_expr("a"))
    method = (
        pl.when(pl.col("m") >= 0)
        .then(_quoted(_lookup_expr("m", _METHODS)))
        .otherwise(pl.lit("null"))
    )
    currency = (
        pl.when(pl.col("no_cur")).then(pl.lit("")).otherwise(member("currency", pl.lit('"USD"')))
    )
    return pl.concat_str(
        [
            pl.lit('{"payment_id'),
            colon,
            _quoted(_id_expr("p", "PAY-", 8)),
            member("order_id", _quoted(_id_expr("o", "O-", 7))),
            member("amount", amount),
            currency,
            member("method", method),
            member("status", _quoted(_lookup_expr("st", ["settled", "failed", "refunded"]))),
            member("paid_ts", _quoted(_ts_expr("ts", "fmt", "off"))),
            pl.lit("}"),
        ]
    )


def _write_payments(ctx: _Ctx, sink: _Sink, pay: _Payments) -> None:
    kinds = [
        "not_json",
        "amount_zero",
        "amount_3dp",
        "amount_abc",
        "currency_eur",
        "status_bad",
        "missing_id",
        "bad_ts",
        "duplicate_key",
    ]
    chunks = _chunks(ctx.days)
    for ci, (d0, d1) in enumerate(chunks):
        lo, hi = np.searchsorted(pay.day, [d0, d1])
        if hi <= lo:
            sink.report("payments", ci + 1, len(chunks))
            continue
        rng = ctx.sub_rng(5, ci)
        n = hi - lo
        frame = pl.DataFrame(
            {
                "p": pay.pid[lo:hi],
                "o": pay.order[lo:hi] + 1,
                "a": pay.amount[lo:hi],
                "m": pay.method[lo:hi],
                "st": pay.status[lo:hi],
                "ts": pay.ts[lo:hi],
                "fmt": pay.fmt[lo:hi],
                "off": pay.off[lo:hi],
                "as_text": rng.random(n) < 0.4,
                "no_cur": rng.random(n) < 0.1,
                "_day": pay.day[lo:hi],
                "_seq": pay.seq[lo:hi],
                "_pos": np.arange(lo, hi),
            }
        )
        line = _payment_line_expr((pl.col("_day") % 3) == 0)
        frame = frame.select(line.alias("_line"), "_day", "_seq", "_pos")
        r = random.Random(f"{ctx.seed}/payments/dirty/{ci}")

        def mutate(kind: str, row: dict[str, Any], r: random.Random) -> dict[str, Any]:
            row["_line"] = _payment_mutate(kind, row["_line"], r)
            return row

        n_dirty = ctx.n_dirty(rng, frame.height, len(kinds), ci == 0)
        frame = _inject_copies(frame, n_dirty, kinds, mutate, rng, r)
        _emit_lines(
            sink,
            "payments",
            frame,
            ["_day", "_seq"],
            lambda d, s: f"payments_{ctx.dates[d]}_{s:03d}.jsonl",
        )
        sink.report("payments", ci + 1, len(chunks))


# --------------------------------------------------------------------------------------
# events


@dataclass
class _Events:
    session: np.ndarray
    user: np.ndarray  # -1 anonymous
    etype: np.ndarray
    ts: np.ndarray
    fmt: np.ndarray
    off: np.ndarray
    prod: np.ndarray  # -1 none
    order: np.ndarray  # -1 none
    page: np.ndarray  # index into _PAGES, -1 none (null page_url)
    # delivery rows: event index, window, rank (0 first delivery, 1 redelivery)
    d_event: np.ndarray
    d_window: np.ndarray
    d_rank: np.ndarray
    has_copy: np.ndarray


def _events(
    rng: np.random.Generator,
    ctx: _Ctx,
    orders: _Orders,
    products: _Products,
    cust_w: np.ndarray,
) -> _Events:
    days = ctx.days
    per_day = rng.poisson(ctx.events_per_day / 3.95, size=days)
    n_s = int(per_day.sum())
    s_day = np.repeat(np.arange(days), per_day)
    start = (
        ctx.t0
        + s_day * _DAY
        + rng.choice(24, size=n_s, p=_HOUR_P) * _HOUR
        + rng.integers(0, _HOUR, size=n_s)
    )
    # the first session of every day but the last starts just before midnight and runs past it
    night = np.concatenate([[0], np.cumsum(per_day)[:-1]])[: days - 1][per_day[: days - 1] > 0]
    start[night] = ctx.t0 + (s_day[night] + 1) * _DAY - rng.integers(2 * _MIN, 3 * _MIN, len(night))
    # funnel: page_view -> product_view -> add_to_cart -> checkout -> purchase (~3%)
    u = rng.random((4, n_s))
    stage = (
        (u[0] < 0.6).astype(np.int64)
        + ((u[0] < 0.6) & (u[1] < 0.25))
        + ((u[0] < 0.6) & (u[1] < 0.25) & (u[2] < 0.45))
        + ((u[0] < 0.6) & (u[1] < 0.25) & (u[2] < 0.45) & (u[3] < 0.45))
    )
    # purchases point at real web/mobile orders of the same day
    eligible = np.flatnonzero((orders.chan >= 0) & (orders.chan <= 1))
    eligible = eligible[np.lexsort((rng.random(len(eligible)), orders.day[eligible]))]
    e_count = np.bincount(orders.day[eligible], minlength=days)
    e_start = np.concatenate([[0], np.cumsum(e_count)[:-1]])
    buyers = np.flatnonzero(stage == 4)
    b_day = s_day[buyers]
    b_rank = np.arange(len(buyers)) - np.searchsorted(b_day, b_day, side="left")
    ok = b_rank < e_count[b_day]
    stage[buyers[~ok]] = 3
    buyers, b_day, b_rank = buyers[ok], b_day[ok], b_rank[ok]
    s_order = np.full(n_s, -1, dtype=np.int64)
    s_order[buyers] = eligible[e_start[b_day] + b_rank]

    logged = rng.random(n_s) < 0.55
    s_user = np.where(logged, rng.choice(len(cust_w), size=n_s, p=cust_w), -1)
    s_user[buyers] = orders.cust[s_order[buyers]]

    pv = 1 + np.minimum(rng.poisson(1.2, size=n_s), 6)
    pv[night] = np.maximum(pv[night], 5)
    prv = np.where(stage >= 1, 1 + np.minimum(rng.poisson(1.5, size=n_s), 8), 0)
    atc = np.where(stage >= 2, 1 + (rng.random(n_s) < 0.2), 0)
    chk = (stage >= 3).astype(np.int64)
    pur = (stage >= 4).astype(np.int64)
    n_ev = pv + prv + atc + chk + pur
    anon = np.where(s_user >= 0, np.where(rng.random(n_s) < 0.3, rng.integers(1, 3, n_s), 0), 0)
    anon = np.minimum(anon, pv)

    total = int(n_ev.sum())
    sess = np.repeat(np.arange(n_s), n_ev)
    first = np.concatenate([[0], np.cumsum(n_ev)[:-1]])
    pos = np.arange(total) - first[sess]
    b1 = pv[sess]
    b2 = b1 + prv[sess]
    b3 = b2 + atc[sess]
    b4 = b3 + chk[sess]
    etype = ((pos >= b1).astype(np.int8) + (pos >= b2) + (pos >= b3) + (pos >= b4)).astype(np.int8)
    gaps = (1 * _S + rng.exponential(40.0, size=total) * _S).astype(np.int64)
    gaps[first] = 0
    csum = np.cumsum(gaps)
    rel = csum - csum[first][sess]
    last = first + n_ev - 1
    shift = np.zeros(n_s, dtype=np.int64)
    shift[buyers] = orders.ts[s_order[buyers]] - (start[buyers] + rel[last[buyers]])
    shift = np.maximum(shift, ctx.t0 - start)
    ts = start[sess] + shift[sess] + rel
    ts, fmt, off = _style(rng, ts)

    user = np.where(pos < anon[sess], -1, s_user[sess])
    prod = np.where(
        etype == 1, rng.choice(len(products.weights), size=total, p=products.weights), -1
    )
    last_view = np.minimum(first[sess] + b2 - 1, total - 1)
    prod = np.where(etype == 2, prod[last_view], prod)
    order = np.where(etype == 4, s_order[sess], -1)
    page = rng.integers(0, len(_PAGES), size=total)
    page = np.where(etype == 0, page, -(etype.astype(np.int64) + 1))  # -2.. for non page views
    page = np.where((etype == 0) & (rng.random(total) < 0.03), -1, page)

    f_per_day = ctx.event_windows
    rel_ts = ts - ctx.t0
    minute = (rel_ts % _DAY) // _MIN
    window = (rel_ts // _DAY) * f_per_day + minute * f_per_day // 1440
    last_w = days * f_per_day - 1
    window = np.minimum(window, last_w)
    copy = rng.random(total) < 0.01
    c_idx = np.flatnonzero(copy)
    c_win = np.minimum(window[c_idx] + rng.integers(1, 4, size=len(c_idx)), last_w)
    d_event = np.concatenate([np.arange(total), c_idx])
    d_window = np.concatenate([window, c_win])
    d_rank = np.concatenate([np.zeros(total, dtype=np.int8), np.ones(len(c_idx), dtype=np.int8)])
    srt = np.lexsort((d_event, ts[d_event], d_rank, d_window))
    return _Events(
        session=sess.astype(np.int32),
        user=user.astype(np.int32),
        etype=etype,
        ts=ts,
        fmt=fmt,
        off=off.astype(np.int16),
        prod=prod.astype(np.int32),
        order=order.astype(np.int32),
        page=page.astype(np.int16),
        d_event=d_event[srt].astype(np.int32),
        d_window=d_window[srt].astype(np.int32),
        d_rank=d_rank[srt],
        has_copy=copy,
    )


def _event_mutate(kind: str, line: str, r: random.Random) -> str:
    if kind == "not_json":
        return line[: max(12, len(line) // 3)] + r.choice(["", '",,', "\\"])
    rec = json.loads(line)
    if kind == "missing_session":
        rec["session_id"] = None
    elif kind == "missing_event_id":
        del rec["event_id"]
    elif kind == "bad_type":
        rec["event_type"] = r.choice(["click", "PageView", "unknown"])
    else:
        rec["event_ts"] = _bad_ts(r, rec["event_ts"])
    return json.dumps(rec, separators=(",", ":"))


def _write_events(ctx: _Ctx, sink: _Sink, ev: _Events) -> None:
    f_per_day = ctx.event_windows
    kinds = ["not_json", "missing_session", "missing_event_id", "bad_type", "bad_ts"]
    urls = [f"{_SITE}{p}" for p in _PAGES]

    def name_of(w: int) -> str:
        d, k = divmod(int(w), f_per_day)
        minute = k * 1440 // f_per_day
        return f"events_{ctx.dates[d]}T{minute // 60:02d}{minute % 60:02d}_001.jsonl"

    chunks = _chunks(ctx.days)
    for ci, (d0, d1) in enumerate(chunks):
        lo, hi = np.searchsorted(ev.d_window, [d0 * f_per_day, d1 * f_per_day])
        if hi <= lo:
            sink.report("events", ci + 1, len(chunks))
            continue
        e = ev.d_event[lo:hi]
        frame = pl.DataFrame(
            {
                "e": e + 1,
                "s": ev.session[e] + 1,
                "u": ev.user[e] + 1,
                "t": ev.etype[e],
                "ts": ev.ts[e],
                "fmt": ev.fmt[e],
                "off": ev.off[e],
                "p": ev.prod[e] + 1,
                "o": ev.order[e] + 1,
                "pg": ev.page[e],
                "_w": ev.d_window[lo:hi],
                "_eligible": (ev.d_rank[lo:hi] == 0) & ~ev.has_copy[e],
            }
        )
        pid = _id_expr("p", "P-", 6)
        url = (
            pl.when(pl.col("pg") >= 0)
            .then(pl.concat_str([pl.lit('"'), _lookup_expr("pg", urls), pl.lit('"')]))
            .when(pl.col("t") == 1)
            .then(pl.concat_str([pl.lit(f'"{_SITE}/product/'), pid, pl.lit('"')]))
            .when(pl.col("t") == 2)
            .then(pl.lit(f'"{_SITE}/cart"'))
            .when(pl.col("t") == 3)
            .then(pl.lit(f'"{_SITE}/checkout"'))
            .when(pl.col("t") == 4)
            .then(pl.lit(f'"{_SITE}/checkout/confirmation"'))
            .otherwise(pl.lit("null"))
        )
        user = (
            pl.when(pl.col("u") > 0)
            .then(pl.concat_str([pl.lit('"'), _id_expr("u", "C-", 6), pl.lit('"')]))
            .otherwise(pl.lit("null"))
        )
        product = (
            pl.when(pl.col("p") > 0)
            .then(pl.concat_str([pl.lit(',"product_id":"'), pid, pl.lit('"')]))
            .otherwise(pl.lit(""))
        )
        order = (
            pl.when(pl.col("o") > 0)
            .then(pl.concat_str([pl.lit(',"order_id":"'), _id_expr("o", "O-", 7), pl.lit('"')]))
            .otherwise(pl.lit(""))
        )
        line = pl.concat_str(
            [
                pl.lit('{"event_id":"'),
                _id_expr("e", "E-", 10),
                pl.lit('","session_id":"'),
                _id_expr("s", "S-", 8),
                pl.lit('","user_id":'),
                user,
                pl.lit(',"event_type":"'),
                _lookup_expr("t", _EVENT_TYPES),
                pl.lit('","event_ts":"'),
                _ts_expr("ts", "fmt", "off"),
                pl.lit('","page_url":'),
                url,
                product,
                order,
                pl.lit("}"),
            ]
        )
        frame = frame.select(line.alias("_line"), "_w", "_eligible")
        rng = ctx.sub_rng(6, ci)
        r = random.Random(f"{ctx.seed}/events/dirty/{ci}")
        eligible = np.flatnonzero(frame["_eligible"].to_numpy())
        n_dirty = min(len(eligible), ctx.n_dirty(rng, frame.height, len(kinds), ci == 0))
        dirty = np.sort(rng.choice(eligible, size=n_dirty, replace=False))
        lines = frame["_line"].clone()
        if n_dirty:
            k0 = r.randrange(len(kinds))
            old = lines.gather(dirty).to_list()
            new = [_event_mutate(kinds[(k0 + j) % len(kinds)], s, r) for j, s in enumerate(old)]
            lines.scatter(dirty, new)
        flag = np.zeros(frame.height, dtype=bool)
        flag[dirty] = True
        frame = frame.with_columns(lines.alias("_line"), pl.Series("_dirty", flag))
        _emit_lines(sink, "events", frame, ["_w"], name_of)
        sink.report("events", ci + 1, len(chunks))

    # broken: valid UTF-8 that is not JSON at all (an error page saved as a batch)
    r = random.Random(f"{ctx.seed}/events/garbage")
    mid = (ctx.days // 2) * f_per_day + f_per_day // 2
    junk = "".join(r.choice("abcdefghijklmnopqrstuvwxyz0123456789 <>/=;:äöü€☃") for _ in range(300))
    garbage = (
        "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
        f"<body><h1>502 Bad Gateway</h1><p>upstream timed out ☃</p>\n{junk}\n</body></html>\n"
    )
    sink.broken_file("events", name_of(mid).replace("_001.jsonl", "_002.jsonl"), garbage.encode())
    sink.put_unlanded(
        "events",
        ".events_incoming.jsonl.partial",
        f'{{"event_id":"E-9999999999","session_id":"S-99999999","user_id":null,'
        f'"event_type":"page_view","event_ts":"{ctx.dates[ctx.days - 1]}T23:59:59Z",'
        f'"page_url":"{_SITE}/"}}\n{{"event_id":"E-99999'.encode(),
    )


# --------------------------------------------------------------------------------------
# entry point


def generate(
    landing_dir: Path,
    *,
    start: datetime.date,
    days: int,
    seed: int = 7,
    scale: float = 1.0,
    clean: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> GenerateSummary:
    """Write a deterministic, realistic sample of every source under ``landing_dir``.

    Files go to ``landing_dir/<source>/<name>``, each written to ``.<name>.tmp`` and renamed
    into place. Business dates of orders, payments and events fall in
    ``[start, start + days - 1]`` (sessions running past midnight of the last day may spill
    into the next day). ``scale=1.0`` is about 2,000 customers, 1,000 products, 300 orders and
    1,500 events a day. The same arguments always produce byte-identical files.

    ``clean=True`` leaves out every invalid row and file (dirty copies, broken and
    half-written files) and keeps the rest (spellings of timestamps, CSV quirks, late
    updates, redeliveries): what the benchmarks' hand-written baselines can be checked
    against row for row.
    """
    if days < 1:
        raise ValueError("days must be >= 1")
    if not scale > 0:
        raise ValueError("scale must be > 0")
    ctx = _Ctx(start=start, days=int(days), seed=int(seed), scale=float(scale), clean=clean)
    sink = _Sink(Path(landing_dir), ctx.seed, progress, clean=clean)
    rng = np.random.default_rng(ctx.seed)
    cust_w = _customers(rng, ctx, sink)
    products = _products(rng, ctx, sink)
    orders = _orders(rng, ctx, cust_w)
    items = _items(rng, ctx, orders, products)
    payments = _payments(rng, ctx, orders, items)
    # Writers draw from their own seeded generators and only read the models, so the sales
    # files are written on a thread while the events model is drawn and written: the same
    # bytes, in about 25% less time (Polars builds the lines with the GIL released).
    with ThreadPoolExecutor(1, thread_name_prefix="generate") as pool:
        sales = pool.submit(_write_sales, ctx, sink, orders, items, payments)
        del items, payments
        events = _events(rng, ctx, orders, products, cust_w)
        _write_events(ctx, sink, events)
        del events
        sales.result()
    return sink.summary()


def _write_sales(
    ctx: _Ctx, sink: _Sink, orders: _Orders, items: _Items, payments: _Payments
) -> None:
    _write_orders(ctx, sink, orders)
    _write_items(ctx, sink, items, orders.n)
    _write_payments(ctx, sink, payments)
