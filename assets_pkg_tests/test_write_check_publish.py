"""Write, check, publish: a day failing an ERROR check never reaches the marts.

A late orders file makes one day's reject rate jump over its threshold. The next backfill
of the range publishes the other days, keeps that day's staging, warehouse and mart rows
as they were, and `assets-pkg backfill` exits non-zero naming the check.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import duckdb

from assets_pkg_tests.conftest import START, land

DAYS = [START + dt.timedelta(days=i) for i in range(5)]
BAD_DAY = DAYS[2]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "assets_pkg.cli.main", *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _marts_by_day(settings) -> dict[dt.date, list[tuple]]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        rows = conn.execute(
            "SELECT order_date, revenue, order_count, 'daily_sales' FROM marts.daily_sales "
            "UNION ALL SELECT date, total_sales, order_count, product_category "
            "FROM marts.daily_sales_by_category ORDER BY ALL"
        ).fetchall()
    out: dict[dt.date, list[tuple]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(row)
    return out


def _daily_sales(rows: list[tuple]) -> tuple:
    return next(r for r in rows if r[3] == "daily_sales")


def _some_ids(settings) -> tuple[str, str]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        customer = conn.execute("SELECT min(customer_id) FROM warehouse.dim_customer").fetchone()
        product = conn.execute("SELECT min(product_id) FROM warehouse.dim_product").fetchone()
    return customer[0], product[0]


def test_failing_day_keeps_its_marts_and_backfill_names_the_check(settings):
    end = DAYS[-1].isoformat()
    generate = _cli("generate", "--start", START.isoformat(), "--days", "5", "--seed", "3")
    assert generate.returncode == 0, generate.stderr
    assert _cli("ingest").returncode == 0
    first = _cli("backfill", "--start", START.isoformat(), "--end", end)
    assert first.returncode == 0, first.stderr
    before = _marts_by_day(settings)
    assert set(before) == set(DAYS)

    # late data: one good order on every day, and a burst of bad rows dated BAD_DAY
    customer, product = _some_ids(settings)
    orders = ["order_id,customer_id,order_ts,status,channel"]
    items = ["order_id,line_number,product_id,quantity,unit_price"]
    for i, day in enumerate(DAYS):
        orders.append(f"LATE-{i},{customer},{day}T12:00:00Z,placed,web")
        items.append(f"LATE-{i},1,{product},1,1000.00")
    orders += [f"BAD-{i},{customer},{BAD_DAY}T13:00:00Z,lost_in_transit,web" for i in range(60)]
    land(settings, "orders", "orders_zz_late.csv", "\n".join(orders) + "\n")
    land(settings, "order_items", "order_items_zz_late.csv", "\n".join(items) + "\n")
    assert _cli("ingest").returncode == 0

    second = _cli("backfill", "--start", START.isoformat(), "--end", end)
    assert second.returncode == 1
    assert "stg_orders__reject_rate" in second.stderr
    assert BAD_DAY.isoformat() in second.stderr

    after = _marts_by_day(settings)
    # the failing day kept its published rows, to the cent
    assert after[BAD_DAY] == before[BAD_DAY]
    # every other day published its late order (1000.00 more revenue, one more order)
    for day in DAYS:
        if day == BAD_DAY:
            continue
        (_, revenue_before, orders_before, _) = _daily_sales(before[day])
        (_, revenue_after, orders_after, _) = _daily_sales(after[day])
        assert revenue_after - revenue_before == 1000
        assert orders_after == orders_before + 1

    # the staging and warehouse rows of that day were held back too
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        late = conn.execute(
            "SELECT order_date FROM warehouse.fct_orders WHERE order_id LIKE 'LATE-%' ORDER BY 1"
        ).fetchall()
    assert [d for (d,) in late] == [d for d in DAYS if d != BAD_DAY]

    quality = _cli("quality", "--date", BAD_DAY.isoformat())
    assert quality.returncode == 1
    assert "stg_orders__reject_rate" in quality.stdout + quality.stderr
