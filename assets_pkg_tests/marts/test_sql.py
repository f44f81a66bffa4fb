"""Mart SQL and its exact rounding, in an in-memory DuckDB over small warehouse tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets_pkg.marts.sql import (
    DAILY_FUNNEL_DDL,
    DAILY_FUNNEL_SELECT,
    DAILY_PAYMENTS_DDL,
    DAILY_PAYMENTS_SELECT,
    DAILY_SALES_BY_CATEGORY_DDL,
    DAILY_SALES_BY_CATEGORY_SELECT,
    DAILY_SALES_DDL,
    DAILY_SALES_SELECT,
    EXACT_DIV_MACRO,
)
from assets_pkg.warehouse.sql import (
    FCT_ORDER_ITEMS_DDL,
    FCT_ORDERS_DDL,
    FCT_PAYMENTS_DDL,
    FCT_SESSIONS_DDL,
)

D = Decimal
D1, D2, D3, D4 = (dt.date(2024, 3, d) for d in (1, 2, 3, 4))
RANGE = [D1, D4]


@pytest.fixture
def conn() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone='UTC'")
    con.execute("CREATE SCHEMA warehouse")
    con.execute("CREATE SCHEMA marts")
    for ddl in (FCT_ORDERS_DDL, FCT_ORDER_ITEMS_DDL, FCT_PAYMENTS_DDL, FCT_SESSIONS_DDL):
        con.execute(ddl)
    for ddl in (DAILY_SALES_DDL, DAILY_SALES_BY_CATEGORY_DDL, DAILY_PAYMENTS_DDL):
        con.execute(ddl)
    con.execute(DAILY_FUNNEL_DDL)
    con.execute(EXACT_DIV_MACRO)
    yield con
    con.close()


def run(con, select: str, params=RANGE) -> list[tuple]:
    return con.execute(select, params).fetchall()


def exact_div(con, n, d):
    return con.execute("SELECT exact_div(?::HUGEINT, ?::HUGEINT)", [n, d]).fetchone()[0]


# --------------------------------------------------------------------------- exact_div


@pytest.mark.parametrize(
    ("n", "d", "expected"),
    [
        (5, 2, 3),
        (-5, 2, -3),
        (5, -2, -3),
        (-5, -2, 3),
        (7, 2, 4),
        (4, 3, 1),
        (-4, 3, -1),
        (20000, 3, 6667),
        (-20000, 3, -6667),
        (1234500, 1000, 1235),  # 0.12345 -> 0.1235
        (-1234500, 1000, -1235),  # -0.12345 -> -0.1235
        (100, 8, 13),  # 12.5 cents -> 13
        (-100, 8, -13),
        (12, 8, 2),  # 1.5 -> 2
        (1, 8, 0),  # 0.125 -> 0
        (3, 8, 0),  # 0.375 -> 0
        (4, 8, 1),  # 0.5 -> 1
        (0, 5, 0),
        (10**30 + 1, 2, 5 * 10**29 + 1),
        (1, 0, None),
        (None, 1, None),
        (1, None, None),
    ],
)
def test_exact_div_rounds_half_away_from_zero(conn, n, d, expected):
    assert exact_div(conn, n, d) == expected


def test_exact_div_agrees_with_decimal_rounding_on_a_grid(conn):
    pairs = [(n, d) for n in range(-40, 41) for d in (1, 2, 3, 4, 7, 8, -3, -8)]
    got = conn.execute(
        "SELECT n, d, exact_div(n::HUGEINT, d::HUGEINT) FROM (SELECT unnest(?) AS n, "
        "unnest(?) AS d)",
        [[p[0] for p in pairs], [p[1] for p in pairs]],
    ).fetchall()
    for n, d, q in got:
        assert q == int((D(n) / D(d)).quantize(D(1), rounding=ROUND_HALF_UP)), (n, d)


# --------------------------------------------------------------------------- daily_sales


def add_order(con, oid, day, status="placed", items=1, revenue="0.00", cost="0.00", channel="web"):
    con.execute(
        "INSERT INTO warehouse.fct_orders VALUES (?, 'C1', ?, ?, ?, ?, ?, ?, ?)",
        [
            oid,
            day,
            dt.datetime.combine(day, dt.time(12)),
            status,
            channel,
            items,
            D(revenue),
            None if cost is None else D(cost),
        ],
    )


def add_line(con, oid, line, day, category, revenue, cost="0.00", qty=1):
    con.execute(
        "INSERT INTO warehouse.fct_order_items VALUES (?, ?, 'P1', ?, ?, ?, ?, ?, ?)",
        [
            oid,
            line,
            category,
            day,
            qty,
            D(revenue) / qty,
            D(revenue),
            None if cost is None else D(cost),
        ],
    )


def margin_for(con, revenue: str, cost: str | None) -> Decimal | None:
    add_order(con, "O1", D1, revenue=revenue, cost=cost)
    return run(con, "SELECT profit_margin FROM (" + DAILY_SALES_SELECT + ")")[0][0]


@pytest.mark.parametrize(
    ("revenue", "cost", "margin"),
    [
        ("1000.00", "876.55", D("0.1235")),  # 0.12345
        ("1000.00", "1123.45", D("-0.1235")),  # -0.12345
        ("3.00", "1.00", D("0.6667")),  # 2/3
        ("3.00", "2.00", D("0.3333")),  # 1/3
        ("8.00", "7.99", D("0.0013")),  # 1/8 of a cent per unit: 0.00125
        ("8.00", "8.01", D("-0.0013")),
        ("8.00", "7.00", D("0.1250")),
        ("16.00", "15.99", D("0.0006")),  # 0.000625
        ("10.00", "0.00", D("1.0000")),
        ("10.00", "10.00", D("0.0000")),
        ("0.03", "0.05", D("-0.6667")),
        ("0.00", "1.00", None),  # revenue 0: NULL
        ("5.00", None, None),  # cost unknown: gross_profit and margin NULL
    ],
)
def test_profit_margin(conn, revenue, cost, margin):
    got = margin_for(conn, revenue, cost)
    assert got == margin
    if margin is not None:
        assert got.as_tuple().exponent == -4


def test_daily_sales_counts_only_sales_with_lines(conn):
    add_order(conn, "O1", D1, "placed", 2, "10.00", "4.00")
    add_order(conn, "O2", D1, "shipped", 1, "5.50", None)  # NULL cost is skipped
    add_order(conn, "O3", D1, "delivered", 1, "0.25", "0.10")
    add_order(conn, "O4", D1, "cancelled", 1, "100.00", "1.00")
    add_order(conn, "O5", D1, "returned", 1, "100.00", "1.00")
    add_order(conn, "O6", D1, "placed", 0, "0.00", "0.00")  # no lines
    add_order(conn, "O7", D3, "placed", 1, "3.00", None)  # only NULL costs that day
    add_order(conn, "O8", D2, "cancelled", 1, "1.00", "1.00")  # a day of no sales: no row
    add_order(conn, "O9", dt.date(2024, 3, 5), "placed", 1, "1.00", "1.00")  # outside range
    got = conn.sql(DAILY_SALES_SELECT, params=RANGE).pl()
    expected = pl.DataFrame(
        [
            (D1, D("15.75"), D("4.10"), D("11.65"), D("0.7397"), 3),
            (D3, D("3.00"), None, None, None, 1),
        ],
        schema={
            "order_date": pl.Date,
            "revenue": pl.Decimal(18, 2),
            "cost": pl.Decimal(18, 2),
            "gross_profit": pl.Decimal(18, 2),
            "profit_margin": pl.Decimal(9, 4),
            "order_count": pl.Int64,
        },
        orient="row",
    )
    assert_frame_equal(got, expected)
    conn.execute(f"INSERT INTO marts.daily_sales {DAILY_SALES_SELECT}", RANGE)  # fits the DDL


def test_daily_sales_of_a_range_without_data_is_empty(conn):
    add_order(conn, "O1", D1, "placed", 1, "1.00", "1.00")
    assert run(conn, DAILY_SALES_SELECT, [D2, D4]) == []


# --------------------------------------------------------------------------- by category


def test_daily_sales_by_category(conn):
    add_order(conn, "O1", D1, "placed", 3, "17.00")
    add_line(conn, "O1", 1, D1, "Toys", "10.00")
    add_line(conn, "O1", 2, D1, "Toys", "2.00")
    add_line(conn, "O1", 3, D1, None, "5.00")  # unknown product: a NULL group
    add_order(conn, "O2", D1, "shipped", 1, "4.01")
    add_line(conn, "O2", 1, D1, "Toys", "4.01")
    add_order(conn, "O3", D1, "returned", 1, "50.00")
    add_line(conn, "O3", 1, D1, "Toys", "50.00")
    add_order(conn, "O4", D1, "placed", 1, "0.01")
    add_line(conn, "O4", 1, D1, "Books", "0.01")
    add_order(conn, "O5", D1, "placed", 1, "0.02")
    add_line(conn, "O5", 1, D1, "Books", "0.02")
    got = conn.sql(DAILY_SALES_BY_CATEGORY_SELECT, params=RANGE).pl()
    expected = pl.DataFrame(
        [
            (D1, "Books", D("0.03"), 2, D("0.02")),  # 1.5 cents -> 2
            (D1, "Toys", D("16.01"), 2, D("8.01")),  # 8.005 -> 8.01
            (D1, None, D("5.00"), 1, D("5.00")),
        ],
        schema={
            "date": pl.Date,
            "product_category": pl.String,
            "total_sales": pl.Decimal(18, 2),
            "order_count": pl.Int64,
            "avg_order_value": pl.Decimal(18, 2),
        },
        orient="row",
    )
    assert_frame_equal(got, expected)
    conn.execute(
        f"INSERT INTO marts.daily_sales_by_category {DAILY_SALES_BY_CATEGORY_SELECT}", RANGE
    )


def test_categories_add_up_to_the_days_revenue(conn):
    add_order(conn, "O1", D2, "placed", 2, "3.50")
    add_line(conn, "O1", 1, D2, "A", "1.25")
    add_line(conn, "O1", 2, D2, None, "2.25")
    total = sum(r[2] for r in run(conn, DAILY_SALES_BY_CATEGORY_SELECT))
    assert total == run(conn, DAILY_SALES_SELECT)[0][1] == D("3.50")


@pytest.mark.parametrize(
    ("total_cents", "avg"),
    [
        (100, D("0.13")),  # 1.00 / 8 = 0.125
        (12, D("0.02")),  # 0.12 / 8 = 0.015
        (1, D("0.00")),  # 0.01 / 8 = 0.00125
        (4, D("0.01")),  # 0.04 / 8 = 0.005
        (2000, D("2.50")),
    ],
)
def test_avg_order_value_rounds_eighths_of_cents_half_away_from_zero(conn, total_cents, avg):
    # eight orders share the day's total: the first gets everything, the rest 0.00 lines
    for i in range(8):
        cents = total_cents if i == 0 else 0
        add_order(conn, f"O{i}", D1, "placed", 1, f"{D(cents) / 100:.2f}")
        add_line(conn, f"O{i}", 1, D1, "Toys", f"{D(cents) / 100:.2f}")
    assert run(conn, DAILY_SALES_BY_CATEGORY_SELECT) == [(D1, "Toys", D(total_cents) / 100, 8, avg)]


def test_by_category_lines_of_excluded_or_other_day_orders_are_left_out(conn):
    add_order(conn, "O1", D1, "cancelled", 1, "9.00")
    add_line(conn, "O1", 1, D1, "Toys", "9.00")
    add_line(conn, "O404", 1, D1, "Toys", "9.00")  # its order is not in fct_orders
    assert run(conn, DAILY_SALES_BY_CATEGORY_SELECT) == []


# --------------------------------------------------------------------------- payments, funnel


def add_payment(con, pid, day, amount, status, method="card"):
    con.execute(
        "INSERT INTO warehouse.fct_payments VALUES (?, 'O1', ?, ?, ?, 'USD', ?, ?)",
        [pid, day, dt.datetime.combine(day, dt.time(8)), D(amount), method, status],
    )


def test_daily_payments(conn):
    add_payment(conn, "A", D1, "10.00", "settled")
    add_payment(conn, "B", D1, "2.50", "settled")
    add_payment(conn, "C", D1, "4.00", "refunded")
    add_payment(conn, "D", D1, "99.00", "failed")
    add_payment(conn, "E", D1, "1.00", "failed", "paypal")  # only failed: zeros, count 1
    add_payment(conn, "F", D1, "3.00", "settled", None)  # NULL method group, last
    add_payment(conn, "G", D3, "7.77", "refunded", "gift_card")
    got = run(conn, DAILY_PAYMENTS_SELECT)
    assert got == [
        (D1, "card", D("12.50"), D("4.00"), 4),
        (D1, "paypal", D("0.00"), D("0.00"), 1),
        (D1, None, D("3.00"), D("0.00"), 1),
        (D3, "gift_card", D("0.00"), D("7.77"), 1),
    ]
    conn.execute(f"INSERT INTO marts.daily_payments {DAILY_PAYMENTS_SELECT}", RANGE)


def add_session(con, sid, day, views=0, carts=0, checkouts=0, purchases=0):
    start = dt.datetime.combine(day, dt.time(9))
    count = 1 + views + carts + checkouts + purchases
    con.execute(
        "INSERT INTO warehouse.fct_sessions VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)",
        [sid, day, start, start, count, views, carts, checkouts, purchases],
    )


def test_daily_funnel_counts_sessions_per_step(conn):
    add_session(conn, "S1", D1, views=3, carts=2, checkouts=1, purchases=1)
    add_session(conn, "S2", D1, views=1)
    add_session(conn, "S3", D1)
    add_session(conn, "S4", D2, views=1, carts=1, checkouts=1, purchases=2)
    add_session(conn, "S5", D2, purchases=1)
    for i in range(8):
        add_session(conn, f"T{i}", D3, purchases=1 if i == 0 else 0)
    got = run(conn, DAILY_FUNNEL_SELECT)
    assert got == [
        (D1, 3, 2, 1, 1, 1, D("0.3333")),
        (D2, 2, 1, 1, 1, 2, D("1.0000")),
        (D3, 8, 0, 0, 0, 1, D("0.1250")),
    ]
    conn.execute(f"INSERT INTO marts.daily_funnel {DAILY_FUNNEL_SELECT}", RANGE)


def test_conversion_rate_two_thirds(conn):
    for i in range(3):
        add_session(conn, f"S{i}", D4, purchases=0 if i == 0 else 1)
    assert run(conn, DAILY_FUNNEL_SELECT) == [(D4, 3, 0, 0, 0, 2, D("0.6667"))]


def test_marts_have_no_rows_without_data(conn):
    for select in (
        DAILY_SALES_SELECT,
        DAILY_SALES_BY_CATEGORY_SELECT,
        DAILY_PAYMENTS_SELECT,
        DAILY_FUNNEL_SELECT,
    ):
        assert run(conn, select) == []


def test_an_extreme_margin_does_not_fail_the_mart(conn):
    add_order(conn, "O1", D1, "placed", 1, "0.01", "1000.01")
    assert len(run(conn, DAILY_SALES_SELECT)) == 1
