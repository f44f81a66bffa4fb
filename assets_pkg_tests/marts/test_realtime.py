"""The speed layer on real files: current after an ingest, even while the warehouse is
held; equal to the batch marts for the same day; retired when the batch day is written."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time

import duckdb
import pytest

from assets_pkg.cli.main import do_backfill, do_ingest
from assets_pkg_tests.conftest import END, START, land, read_table

ORDERS = "order_id,customer_id,order_ts,status,channel\n"
ITEMS = "order_id,line_number,product_id,quantity,unit_price\n"
PRODUCTS = "product_id,name,category,list_price,unit_cost,updated_at\n"
OLD_DAY = START


def events(day: dt.date, session: str, kinds: list[str], first: int) -> str:
    return "".join(
        f'{{"event_id": "{session}-{first + i}", "session_id": "{session}", '
        f'"event_type": "{kind}", "event_ts": "{day}T10:0{i}:00Z"}}\n'
        for i, kind in enumerate(kinds)
    )


def land_day(settings, day: dt.date, tag: str) -> None:
    land(
        settings, "orders", f"orders_{tag}.csv", ORDERS + f"O{tag},C1,{day}T09:00:00Z,placed,web\n"
    )
    land(settings, "order_items", f"order_items_{tag}.csv", ITEMS + f"O{tag},1,P1,2,10.00\n")
    land(
        settings,
        "events",
        f"events_{tag}.jsonl",
        events(day, f"S{tag}", ["page_view", "product_view", "add_to_cart", "purchase"], 0),
    )


def realtime(settings, table: str) -> list[dict]:
    for _ in range(200):
        try:
            with duckdb.connect(str(settings.realtime_path), read_only=True) as conn:
                rel = conn.sql(f"SELECT * EXCLUDE (as_of) FROM marts.{table} ORDER BY ALL")
                return [dict(zip(rel.columns, row, strict=True)) for row in rel.fetchall()]
        except duckdb.IOException:
            time.sleep(0.05)  # the ingest is writing it this moment
    raise AssertionError("the speed layer stayed locked")


@pytest.fixture
def platform(settings):
    land(
        settings,
        "products",
        "products_1.csv",
        PRODUCTS + "P1,Lamp,Home,20.00,4.00,2024-01-01T00:00:00Z\n",
    )
    land_day(settings, OLD_DAY, "old")
    land_day(settings, END, "today")
    do_ingest(settings)
    return settings


def test_ingest_fills_the_speed_layer_for_the_window_only(platform):
    sales = realtime(platform, "realtime_sales_by_category")
    assert [(r["date"], r["product_category"]) for r in sales] == [(END, "Home")]
    assert sales[0]["total_sales"] == 20 and sales[0]["order_count"] == 1
    (funnel,) = realtime(platform, "realtime_funnel")
    assert funnel["date"] == END and funnel["sessions"] == 1 and funnel["purchases"] == 1


def test_the_batch_day_replaces_the_speed_layer_with_the_same_numbers(platform):
    before = {
        "daily_sales_by_category": realtime(platform, "realtime_sales_by_category"),
        "daily_funnel": realtime(platform, "realtime_funnel"),
    }
    do_backfill(platform, START, END)
    assert realtime(platform, "realtime_sales_by_category") == []
    assert realtime(platform, "realtime_funnel") == []
    for mart, rows in before.items():
        batch = [r for r in read_table(platform, f"marts.{mart}") if r["date"] == END]
        assert batch == rows

    # late data for the day: the speed layer has it at once, the batch mart once re-run
    land(platform, "events", "events_late.jsonl", events(END, "Slate", ["page_view"], 0))
    do_ingest(platform)
    (funnel,) = realtime(platform, "realtime_funnel")
    assert funnel["sessions"] == 2 and funnel["purchases"] == 1


def test_the_speed_layer_does_not_wait_for_a_held_warehouse(platform):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('held', flush=True); time.sleep(float(sys.argv[2])); c.close()",
            str(platform.warehouse_path),
            "20",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    land(platform, "events", "events_more.jsonl", events(END, "Smore", ["page_view"], 0))
    ingest = subprocess.Popen(
        [sys.executable, "-m", "assets_pkg.cli.main", "ingest"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while realtime(platform, "realtime_funnel")[0]["sessions"] != 2:
            assert time.monotonic() < deadline, "the speed layer never saw the new file"
            time.sleep(0.2)
        assert holder.poll() is None, "seen while the warehouse was still held"
    finally:
        holder.kill()
        output = ingest.communicate(timeout=300)[0].decode()
    assert ingest.returncode == 0, output
