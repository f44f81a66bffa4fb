"""Staging transforms over small frames: ``live_versions`` and ``one_copy``, ``day_frames``,
``latest_snapshots``.

``live_versions`` leaves order to the writer, so its results are compared as sets of rows.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets_pkg.contracts import SOURCES
from assets_pkg.lake.ingest import index_schema
from assets_pkg.staging.transforms import (
    day_frames,
    latest_snapshots,
    live_versions,
    one_copy,
    staging_schema,
)

ORDERS = SOURCES["orders"]
ITEMS = SOURCES["order_items"]
EVENTS = SOURCES["events"]
PRODUCTS = SOURCES["products"]
D1, D2, D3 = dt.date(2024, 3, 1), dt.date(2024, 3, 2), dt.date(2024, 3, 3)


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour)


def lake(contract, rows: list[dict]) -> pl.LazyFrame:
    """Lake rows: the contract columns plus version bookkeeping (``contract.schema()``)."""
    schema = contract.schema()
    full = [
        {c: r.get(c) for c in schema} | {"_ingest_id": r.get("_ingest_id", "ing-1")} for r in rows
    ]
    return pl.DataFrame(full, schema=schema, orient="row").lazy()


def index(contract, rows: list[tuple]) -> pl.LazyFrame:
    return pl.DataFrame(rows, schema=index_schema(contract), orient="row").lazy()


def staged(contract, rows: list[dict]) -> pl.DataFrame:
    schema = staging_schema(contract)
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema, orient="row")


def order_row(order_id: str, day: dt.date, file: str, row: int, status: str = "placed") -> dict:
    return {
        "order_id": order_id,
        "customer_id": "C1",
        "order_ts": at(day),
        "status": status,
        "channel": "web",
        "_file_name": file,
        "_row_number": row,
    }


# the lake partitions of D1..D3 after two files: O1 moved D1 -> D2, O3 superseded in place,
# O2 written twice (a re-run wrote the same version again), O4 lives on D3
LAKE_ORDERS = [
    order_row("O1", D1, "orders_001.csv", 1),
    order_row("O2", D1, "orders_001.csv", 2),
    order_row("O2", D1, "orders_001.csv", 2) | {"_ingest_id": "ing-2"},
    order_row("O3", D1, "orders_001.csv", 3),
    order_row("O1", D2, "orders_002.csv", 1, "shipped"),
    order_row("O3", D1, "orders_002.csv", 2, "cancelled"),
    order_row("O4", D3, "orders_002.csv", 3),
]
ORDERS_INDEX = [
    ("O1", D2, "orders_002.csv", 1),
    ("O2", D1, "orders_001.csv", 2),
    ("O3", D1, "orders_002.csv", 2),
    ("O4", D3, "orders_002.csv", 3),
]


def lake_of_days(days: list[dt.date]) -> pl.LazyFrame:
    """What the lake holds in the partitions of ``days`` (rows stored by their own date)."""
    return lake(ORDERS, [r for r in LAKE_ORDERS if r["order_ts"].date() in days])


def live(contract, lake_rows: pl.LazyFrame, idx: pl.LazyFrame, days: list) -> pl.DataFrame:
    """What a staging step stages of a chunk: the live versions, one copy of each."""
    return one_copy(live_versions(contract, lake_rows, idx, days).collect())


def test_live_versions_keeps_exactly_the_live_version_of_the_days_asked():
    got = live(ORDERS, lake_of_days([D1]), index(ORDERS, ORDERS_INDEX), [D1])
    expected = staged(
        ORDERS,
        [
            order_row("O2", D1, "orders_001.csv", 2) | {"order_date": D1},
            order_row("O3", D1, "orders_002.csv", 2, "cancelled") | {"order_date": D1},
        ],
    )
    assert_frame_equal(got, expected, check_row_order=False)


def test_live_versions_over_several_days():
    days = [D1, D2, D3]
    got = live(ORDERS, lake_of_days(days), index(ORDERS, ORDERS_INDEX), days)
    expected = staged(
        ORDERS,
        [
            order_row("O2", D1, "orders_001.csv", 2) | {"order_date": D1},
            order_row("O3", D1, "orders_002.csv", 2, "cancelled") | {"order_date": D1},
            order_row("O1", D2, "orders_002.csv", 1, "shipped") | {"order_date": D2},
            order_row("O4", D3, "orders_002.csv", 3) | {"order_date": D3},
        ],
    )
    assert_frame_equal(got, expected, check_row_order=False)


def test_live_versions_ignores_live_rows_of_days_not_asked():
    # the lake scan returned more partitions than asked: only D2 is published
    got = live(ORDERS, lake_of_days([D1, D2, D3]), index(ORDERS, ORDERS_INDEX), [D2])
    assert got.select("order_id", "order_date", "_file_name").rows() == [
        ("O1", D2, "orders_002.csv")
    ]


def test_live_versions_of_a_day_everything_moved_away_from_is_empty():
    lake_rows = lake(ORDERS, [order_row("O1", D1, "orders_001.csv", 1)])
    got = live(ORDERS, lake_rows, index(ORDERS, ORDERS_INDEX), [D1])
    assert_frame_equal(got, staged(ORDERS, []), check_row_order=False)


def test_live_versions_with_no_days():
    got = live(ORDERS, lake_of_days([D1]), index(ORDERS, ORDERS_INDEX), [])
    assert_frame_equal(got, staged(ORDERS, []), check_row_order=False)


def item_row(order_id: str, line: int, file: str, row: int, qty: int = 1) -> dict:
    return {
        "order_id": order_id,
        "line_number": line,
        "product_id": "P1",
        "quantity": qty,
        "unit_price": Decimal("2.50"),
        "_file_name": file,
        "_row_number": row,
    }


def test_live_versions_items_take_their_date_from_the_index_and_copies_collapse():
    # O1's order moved D1 -> D3; its item version was copied into D3's partition
    lake_rows = lake(
        ITEMS,
        [
            item_row("O1", 1, "items_001.csv", 1),  # in D1
            item_row("O1", 1, "items_001.csv", 1),  # the copy in D3
            item_row("O1", 2, "items_001.csv", 2),  # superseded by items_002 row 1
            item_row("O1", 2, "items_002.csv", 1, qty=5),
            item_row("O2", 1, "items_001.csv", 3),
        ],
    )
    idx = index(
        ITEMS,
        [
            ("O1", 1, D3, "items_001.csv", 1),
            ("O1", 2, D3, "items_002.csv", 1),
            ("O2", 1, D1, "items_001.csv", 3),
        ],
    )
    got = live(ITEMS, lake_rows, idx, [D1, D3])
    expected = staged(
        ITEMS,
        [
            item_row("O2", 1, "items_001.csv", 3) | {"order_date": D1},
            item_row("O1", 1, "items_001.csv", 1) | {"order_date": D3},
            item_row("O1", 2, "items_002.csv", 1, qty=5) | {"order_date": D3},
        ],
    )
    assert_frame_equal(got, expected, check_row_order=False)


def test_live_versions_events_keep_the_first_delivery_in_the_index():
    def event(event_id: str, file: str, row: int, kind: str) -> dict:
        return {
            "event_id": event_id,
            "session_id": "S1",
            "event_type": kind,
            "event_ts": at(D1),
            "_file_name": file,
            "_row_number": row,
        }

    lake_rows = lake(
        EVENTS,
        [
            event("E1", "events_001.jsonl", 1, "page_view"),
            event("E1", "events_002.jsonl", 4, "purchase"),  # a redelivery, not indexed
        ],
    )
    idx = index(EVENTS, [("E1", D1, "events_001.jsonl", 1)])
    got = live(EVENTS, lake_rows, idx, [D1])
    expected = staged(EVENTS, [event("E1", "events_001.jsonl", 1, "page_view")])
    assert_frame_equal(got, expected.with_columns(event_date=pl.lit(D1)), check_row_order=False)


def test_live_versions_give_every_copy_of_a_version_and_one_copy_keeps_one():
    # O2's version was written twice into D1 (a re-run): both copies are live rows
    copies = live_versions(ORDERS, lake_of_days([D1]), index(ORDERS, ORDERS_INDEX), [D1]).collect()
    assert sorted(copies["order_id"].to_list()) == ["O2", "O2", "O3"]
    kept = one_copy(copies)
    assert sorted(kept["order_id"].to_list()) == ["O2", "O3"]
    assert_frame_equal(kept, copies.unique(maintain_order=True))


def test_one_copy_keeps_different_versions_of_one_key():
    # a repeated key with two versions is not a copy: the unique-key check must see both
    rows = staged(
        ORDERS,
        [
            order_row("O1", D1, "orders_001.csv", 1) | {"order_date": D1},
            order_row("O1", D1, "orders_002.csv", 1) | {"order_date": D1},
            order_row("O1", D1, "orders_001.csv", 1) | {"order_date": D1},
        ],
    )
    assert one_copy(rows)["_file_name"].to_list() == ["orders_001.csv", "orders_002.csv"]


@pytest.mark.parametrize("source", ["orders", "order_items", "payments", "events"])
def test_live_versions_schema_is_the_staging_schema(source):
    contract = SOURCES[source]
    got = live_versions(contract, lake(contract, []), index(contract, []), [D1])
    assert got.collect_schema() == pl.Schema(staging_schema(contract))


def test_day_frames_split_by_date_and_sort_each_day_by_key():
    days = [D1, D2, D3]
    rows = live(ORDERS, lake_of_days(days), index(ORDERS, ORDERS_INDEX), days)
    shuffled = rows.sample(fraction=1.0, shuffle=True, seed=3)
    got = day_frames(ORDERS, shuffled)
    assert sorted(got) == days
    for day, frame in got.items():
        expected = rows.filter(pl.col("order_date") == day).sort("order_id")
        assert_frame_equal(frame, expected)
    assert got[D1]["order_id"].to_list() == ["O2", "O3"]


def test_day_frames_sort_by_the_whole_key():
    def item(order_id: str, line: int, row: int) -> dict:
        return item_row(order_id, line, "items_001.csv", row) | {"order_date": D1}

    rows = staged(ITEMS, [item("O2", 1, 1), item("O1", 2, 2), item("O1", 1, 3)])
    got = day_frames(ITEMS, rows)
    assert got[D1].select("order_id", "line_number").rows() == [("O1", 1), ("O1", 2), ("O2", 1)]


def test_day_frames_of_no_rows_is_empty():
    assert day_frames(ORDERS, staged(ORDERS, [])) == {}


# --------------------------------------------------------------------------- dimensions


def product_row(pid: str, updated: dt.datetime, file: str, row: int, price: str) -> dict:
    return {
        "product_id": pid,
        "name": f"name {pid}",
        "category": "Toys",
        "list_price": Decimal(price),
        "unit_cost": Decimal("1.00"),
        "updated_at": updated,
        "_file_name": file,
        "_row_number": row,
    }


def test_latest_snapshots_one_row_per_id_and_updated_at_greatest_version_wins():
    t1, t2 = at(D1), at(D2)
    rows = [
        product_row("P1", t1, "products_002.csv", 1, "3.00"),  # wins over 001 rows
        product_row("P1", t1, "products_001.csv", 7, "1.00"),
        product_row("P1", t1, "products_001.csv", 9, "2.00"),
        product_row("P1", t2, "products_001.csv", 2, "4.00"),  # another snapshot
        product_row("P2", t1, "products_10.csv", 1, "5.00"),  # '10' < '9' lexicographically
        product_row("P2", t1, "products_9.csv", 1, "6.00"),
        product_row("P2", t1, "products_9.csv", 1, "6.00"),  # a copy
    ]
    got = latest_snapshots(PRODUCTS, lake(PRODUCTS, rows)).collect()
    expected = staged(
        PRODUCTS,
        [
            product_row("P1", t1, "products_002.csv", 1, "3.00"),
            product_row("P1", t2, "products_001.csv", 2, "4.00"),
            product_row("P2", t1, "products_9.csv", 1, "6.00"),
        ],
    )
    assert_frame_equal(got, expected)


def test_latest_snapshots_of_nothing_is_empty_with_the_staging_schema():
    got = latest_snapshots(PRODUCTS, lake(PRODUCTS, [])).collect()
    assert_frame_equal(got, staged(PRODUCTS, []))
