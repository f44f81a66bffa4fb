"""An order that moves to another day in a later pass takes its items with it, once.

The pass that moves the order copies its items' live rows into the new day's lake
partition; the old day's partition keeps its copy. Staging reads both days in one chunk,
so it sees each item version twice and must stage one copy, on the new day, through a real
ingest, a real Dagster instance and a real DuckDB file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from assets_pkg.cli.main import do_backfill, do_ingest
from assets_pkg.config import Settings
from assets_pkg_tests.conftest import END, START, land, read_table

D2, D4 = dt.date(2024, 3, 2), dt.date(2024, 3, 4)
ITEM_KEYS = [("O1", 1), ("O1", 2), ("O2", 1)]


def _first_pass(settings: Settings) -> None:
    land(
        settings,
        "customers",
        "customers_001.csv",
        "customer_id,email,status,country,signup_ts,updated_at\n"
        "C1,a@example.com,active,US,2023-01-01T00:00:00Z,2024-01-01T00:00:00Z\n",
    )
    land(
        settings,
        "products",
        "products_001.csv",
        "product_id,name,category,list_price,unit_cost,updated_at\n"
        "P1,Lamp,Home,20.00,4.00,2024-01-01T00:00:00Z\n",
    )
    land(
        settings,
        "orders",
        "orders_2024-03-02.csv",
        "order_id,customer_id,order_ts,status,channel\n"
        "O1,C1,2024-03-02T10:00:00Z,placed,web\n"
        "O2,C1,2024-03-02T11:00:00Z,placed,web\n",
    )
    land(
        settings,
        "order_items",
        "order_items_2024-03-02.csv",
        "order_id,line_number,product_id,quantity,unit_price\n"
        "O1,1,P1,2,20.00\n"
        "O1,2,P1,1,20.00\n"
        "O2,1,P1,1,20.00\n",
    )


def _lake_copies(settings: Settings) -> dict[tuple[str, int], int]:
    rows = pl.read_parquet(Path(settings.lake_url) / "lake" / "order_items" / "**" / "*.parquet")
    counts = rows.group_by("order_id", "line_number", "_file_name", "_row_number").len()
    return {(o, n): c for o, n, _, _, c in counts.iter_rows()}


def _staged(settings: Settings) -> pl.DataFrame:
    folder = Path(settings.lake_url) / "staging" / "stg_order_items"
    return pl.read_parquet(folder / "**" / "*.parquet").sort("order_id", "line_number")


def test_a_moved_orders_items_are_staged_once_on_its_new_day(settings: Settings) -> None:
    _first_pass(settings)
    do_ingest(settings)
    # a later pass corrects O1's time: it moves from 03-02 to 03-04
    land(
        settings,
        "orders",
        "orders_2024-03-05.csv",
        "order_id,customer_id,order_ts,status,channel\nO1,C1,2024-03-04T09:00:00Z,placed,web\n",
    )
    do_ingest(settings)
    # the precondition this test is about: both of O1's item versions are in the lake twice
    assert _lake_copies(settings) == {("O1", 1): 2, ("O1", 2): 2, ("O2", 1): 1}

    do_backfill(settings, START, END)

    staged = _staged(settings)
    assert staged.select("order_id", "line_number", "order_date").rows() == [
        ("O1", 1, D4),
        ("O1", 2, D4),
        ("O2", 1, D2),
    ]
    items = read_table(settings, "warehouse.fct_order_items")
    assert [(r["order_id"], r["line_number"], r["order_date"]) for r in items] == [
        ("O1", 1, D4),
        ("O1", 2, D4),
        ("O2", 1, D2),
    ]
    orders = read_table(settings, "warehouse.fct_orders")
    assert [(r["order_id"], r["order_date"], r["item_count"]) for r in orders] == [
        ("O1", D4, 2),
        ("O2", D2, 1),
    ]
