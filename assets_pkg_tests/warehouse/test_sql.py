"""Warehouse SQL run in an in-memory DuckDB over small registered Polars frames."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from assets_pkg.contracts import SOURCES
from assets_pkg.staging.transforms import staging_schema
from assets_pkg.warehouse.sql import (
    DIM_CUSTOMER_DDL,
    DIM_CUSTOMER_SELECT,
    DIM_PRODUCT_DDL,
    DIM_PRODUCT_SELECT,
    FCT_ORDER_ITEMS_DDL,
    FCT_ORDER_ITEMS_SELECT,
    FCT_ORDERS_SELECT,
    FCT_SESSIONS_SELECT,
)

D = Decimal
T = dt.datetime
D1, D2 = dt.date(2024, 3, 1), dt.date(2024, 3, 2)


@pytest.fixture
def conn() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone='UTC'")
    con.execute("CREATE SCHEMA warehouse")
    yield con
    con.close()


def stage(source: str, rows: list[dict]) -> pl.DataFrame:
    schema = staging_schema(SOURCES[source])
    full = [{c: r.get(c) for c in schema} | {"_file_name": "f", "_row_number": 1} for r in rows]
    return pl.DataFrame(full, schema=schema, orient="row")


def rows_of(con: duckdb.DuckDBPyConnection, sql: str, columns: str, params=None) -> list[tuple]:
    rel = con.execute(f"SELECT {columns} FROM ({sql})", params or [])
    return rel.fetchall()


# --------------------------------------------------------------------------- dim_customer


def customer(cid: str, updated: T, email: str | None = "a@x", status: str = "active") -> dict:
    return {
        "customer_id": cid,
        "email": email,
        "status": status,
        "country": "US",
        "signup_ts": T(2023, 1, 1),
        "updated_at": updated,
    }


def scd(con, select: str, df: pl.DataFrame, columns: str) -> list[tuple]:
    con.register("_stg", df)
    try:
        return rows_of(con, select, columns)
    finally:
        con.unregister("_stg")


T1, T2, T3, T4 = T(2024, 3, 1), T(2024, 3, 2), T(2024, 3, 3, 12, 30), T(2024, 3, 4)


def test_a_b_a_is_three_versions_chained_by_valid_to(conn):
    df = stage(
        "customers",
        [
            customer("C1", T3, status="active"),  # staging order does not matter
            customer("C1", T1, status="active"),
            customer("C1", T2, status="inactive"),
        ],
    )
    got = scd(
        conn, DIM_CUSTOMER_SELECT, df, "customer_id, status, valid_from, valid_to, is_current"
    )
    assert got == [
        ("C1", "active", T1, T2, False),
        ("C1", "inactive", T2, T3, False),
        ("C1", "active", T3, None, True),
    ]


def test_a_a_b_is_two_versions(conn):
    df = stage(
        "customers",
        [customer("C1", T1), customer("C1", T2), customer("C1", T3, email="new@x")],
    )
    got = scd(conn, DIM_CUSTOMER_SELECT, df, "email, valid_from, valid_to, is_current")
    assert got == [("a@x", T1, T3, False), ("new@x", T3, None, True)]


def test_null_safe_comparison(conn):
    df = stage(
        "customers",
        [
            customer("C1", T1, email=None),
            customer("C1", T2, email=None),  # NULL -> NULL: no change
            customer("C1", T3, email="x@x"),  # NULL -> x: a change
            customer("C1", T4, email=None),  # x -> NULL: a change
        ],
    )
    got = scd(conn, DIM_CUSTOMER_SELECT, df, "email, valid_from, valid_to, is_current")
    assert got == [(None, T1, T3, False), ("x@x", T3, T4, False), (None, T4, None, True)]


def test_every_attribute_opens_a_version_and_ids_are_independent(conn):
    base = customer("C1", T1)
    df = stage(
        "customers",
        [
            base,
            base | {"updated_at": T2, "country": "DE"},
            base | {"updated_at": T3, "country": "DE", "signup_ts": T(2023, 1, 2)},
            customer("C2", T2),
            customer("C2", T4),
        ],
    )
    got = scd(conn, DIM_CUSTOMER_SELECT, df, "customer_id, valid_from, valid_to, is_current")
    assert got == [
        ("C1", T1, T2, False),
        ("C1", T2, T3, False),
        ("C1", T3, None, True),
        ("C2", T2, None, True),
    ]


def test_dim_customer_fits_its_ddl(conn):
    conn.execute(DIM_CUSTOMER_DDL)
    conn.register("_stg", stage("customers", [customer("C1", T1), customer("C1", T2, "b")]))
    conn.execute(f"INSERT INTO warehouse.dim_customer {DIM_CUSTOMER_SELECT}")
    assert conn.execute("SELECT count(*) FROM warehouse.dim_customer").fetchone() == (2,)


def keys(con, df: pl.DataFrame) -> dict[tuple[str, T], int]:
    rows = scd(con, DIM_CUSTOMER_SELECT, df, "customer_id, valid_from, customer_key")
    return {(cid, vf): key for cid, vf, key in rows}


def test_surrogate_keys_are_deterministic(conn):
    rows = [
        customer("C1", T1),
        customer("C1", T2, "b"),
        customer("C2", T1),
        customer("C2", T1 + dt.timedelta(microseconds=1), "b") | {"customer_id": "C3"},
    ]
    first = keys(conn, stage("customers", rows))
    assert first == keys(conn, stage("customers", rows))
    assert first == keys(conn, stage("customers", list(reversed(rows))))
    # the same (id, valid_from) has the same key whatever else is in the data
    more = keys(conn, stage("customers", [*rows, customer("C1", T4, "c"), customer("C9", T1)]))
    assert {k: more[k] for k in first} == first
    assert len(set(more.values())) == len(more)
    assert all(isinstance(k, int) and 0 <= k < 2**63 for k in more.values())


def test_different_valid_from_gives_a_different_key(conn):
    one = keys(conn, stage("customers", [customer("C1", T1)]))
    other = keys(conn, stage("customers", [customer("C1", T1 + dt.timedelta(microseconds=1))]))
    assert one.popitem()[1] != other.popitem()[1]
    assert keys(conn, stage("customers", [customer("C2", T1)])) != keys(
        conn, stage("customers", [customer("C1", T1)])
    )


def product(pid: str, updated: T, category: str = "Toys", cost: str | None = "1.00", **kw) -> dict:
    return {
        "product_id": pid,
        "name": kw.get("name", f"name {pid}"),
        "category": category,
        "list_price": D(kw.get("price", "9.99")),
        "unit_cost": None if cost is None else D(cost),
        "updated_at": updated,
    }


def test_dim_product_versions_and_types(conn):
    df = stage(
        "products",
        [
            product("P1", T1),
            product("P1", T2, cost="1.0"),  # the same decimal: no change
            product("P1", T3, cost="1.01"),
            product("P1", T4, cost="1.01", name="renamed"),
        ],
    )
    conn.register("_stg", df)
    got = conn.sql(DIM_PRODUCT_SELECT).pl().drop("product_key")
    expected = pl.DataFrame(
        {
            "product_id": ["P1"] * 3,
            "name": ["name P1", "name P1", "renamed"],
            "category": ["Toys"] * 3,
            "list_price": [D("9.99")] * 3,
            "unit_cost": [D("1.00"), D("1.01"), D("1.01")],
            "valid_from": [T1, T3, T4],
            "valid_to": [T3, T4, None],
            "is_current": [False, False, True],
        },
        schema={
            "product_id": pl.String,
            "name": pl.String,
            "category": pl.String,
            "list_price": pl.Decimal(18, 2),
            "unit_cost": pl.Decimal(18, 2),
            "valid_from": pl.Datetime("us"),
            "valid_to": pl.Datetime("us"),
            "is_current": pl.Boolean,
        },
    )
    assert_frame_equal(got, expected)


# --------------------------------------------------------------------------- fct_order_items

V1, V2 = T(2024, 3, 1), T(2024, 3, 5)


def with_products(con, rows: list[dict]) -> None:
    con.execute(DIM_PRODUCT_DDL)
    con.register("_stg", stage("products", rows))
    con.execute(f"INSERT INTO warehouse.dim_product {DIM_PRODUCT_SELECT}")
    con.unregister("_stg")


def items_and_orders(con, lines: list[tuple[str, int, str, int, str]], orders: dict) -> None:
    """lines: (order_id, line_number, product_id, quantity, unit_price); orders: id -> ts."""
    con.register(
        "_stg_orders",
        stage(
            "orders",
            [
                {"order_id": o, "customer_id": "C1", "order_ts": ts, "status": "placed"}
                | {"order_date": ts.date()}
                for o, ts in orders.items()
            ],
        ),
    )
    con.register(
        "_stg_items",
        stage(
            "order_items",
            [
                {"order_id": o, "line_number": n, "product_id": p, "quantity": q}
                | {"unit_price": D(price), "order_date": orders[o].date()}
                for o, n, p, q, price in lines
            ],
        ),
    )


PRODUCTS = [
    product("P1", V1, "Lamps", "1.00"),
    product("P1", V2, "Lighting", "2.50"),
    product("P2", V1, "Books", None),
]


def test_point_in_time_cost_and_category(conn):
    with_products(conn, PRODUCTS)
    orders = {
        "O_BEFORE": T(2024, 2, 1),  # before P1's first version: the first version
        "O_V1": T(2024, 3, 3),
        "O_EDGE": V2 - dt.timedelta(microseconds=1),  # valid_to is exclusive
        "O_V2": V2,  # valid_from is inclusive
        "O_LATER": T(2024, 4, 1),
    }
    lines = [(o, 1, "P1", 3, "4.00") for o in orders]
    lines += [("O_V1", 2, "P2", 2, "7.50"), ("O_V1", 3, "P404", 4, "0.10")]
    items_and_orders(conn, lines, orders)
    got = rows_of(
        conn,
        FCT_ORDER_ITEMS_SELECT,
        "order_id, line_number, product_category, line_revenue, line_cost",
    )
    assert sorted(got) == sorted(
        [
            ("O_BEFORE", 1, "Lamps", D("12.00"), D("3.00")),
            ("O_V1", 1, "Lamps", D("12.00"), D("3.00")),
            ("O_V1", 2, "Books", D("15.00"), None),  # the version has no unit_cost
            ("O_V1", 3, None, D("0.40"), None),  # unknown product
            ("O_EDGE", 1, "Lamps", D("12.00"), D("3.00")),
            ("O_V2", 1, "Lighting", D("12.00"), D("7.50")),
            ("O_LATER", 1, "Lighting", D("12.00"), D("7.50")),
        ]
    )


# The lookup as an ASOF join states it: the latest version from before the order, or the
# first version for an order older than all of them (the reference the range join must match)
ASOF_REFERENCE = """
WITH lines AS (
    SELECT i.order_id, i.line_number, i.product_id, i.quantity, o.order_ts
    FROM _stg_items i LEFT JOIN _stg_orders o USING (order_id)
), firsts AS (
    SELECT product_id, category, unit_cost
    FROM warehouse.dim_product
    QUALIFY valid_from = min(valid_from) OVER (PARTITION BY product_id)
)
SELECT l.order_id, l.line_number,
       CASE WHEN p.product_key IS NULL THEN f.category ELSE p.category END AS product_category,
       CAST(l.quantity * CASE WHEN p.product_key IS NULL THEN f.unit_cost ELSE p.unit_cost END
            AS DECIMAL(18,2)) AS line_cost
FROM lines l
ASOF LEFT JOIN warehouse.dim_product p
    ON l.product_id = p.product_id AND l.order_ts >= p.valid_from
LEFT JOIN firsts f ON f.product_id = l.product_id
"""

INSTANTS = [T(2024, 3, d, h) for d in (1, 2, 3) for h in (0, 12)]


@st.composite
def histories(draw) -> tuple[list[dict], dict, list[tuple]]:
    """Product snapshots (some changing nothing), orders at and around their instants, and
    lines of known, unknown and order-less items."""
    snapshots = []
    for pid in ("P1", "P2", "P3"):
        for at in draw(st.lists(st.sampled_from(INSTANTS), min_size=1, max_size=4, unique=True)):
            category = draw(st.sampled_from(["Home", "Toys"]))
            snapshots.append(
                product(pid, at, category, draw(st.sampled_from([None, "1.00", "2.50"])))
            )
    nudge = st.sampled_from([dt.timedelta(0), dt.timedelta(microseconds=-1), dt.timedelta(hours=5)])
    times = draw(st.lists(st.tuples(st.sampled_from(INSTANTS), nudge), min_size=1, max_size=6))
    orders = {f"O{i}": at + delta for i, (at, delta) in enumerate(times)}
    lines = [
        (o, n, draw(st.sampled_from(["P1", "P2", "P3", "P404"])), 2, "1.00")
        for o in orders
        for n in range(1, draw(st.integers(1, 3)) + 1)
    ]
    return snapshots, orders, lines


@settings(max_examples=60, deadline=None)
@given(histories())
def test_the_range_join_picks_the_version_an_asof_join_picks(history):
    snapshots, orders, lines = history
    with duckdb.connect(":memory:") as con:
        con.execute("SET TimeZone='UTC'")
        con.execute("CREATE SCHEMA warehouse")
        with_products(con, snapshots)
        items_and_orders(con, lines, orders)
        # an item whose order is not staged has no order_ts: no version, the first one
        con.register(
            "_stg_orders",
            con.sql("SELECT * FROM _stg_orders WHERE order_id <> 'O0'").pl(),
        )
        got = rows_of(
            con, FCT_ORDER_ITEMS_SELECT, "order_id, line_number, product_category, line_cost"
        )
        want = rows_of(con, ASOF_REFERENCE, "*")
    assert sorted(got, key=str) == sorted(want, key=str)


def test_line_revenue_is_exact(conn):
    with_products(conn, [product("P1", V1, cost="0.33")])
    orders = {"O1": T(2024, 3, 2)}
    lines = [
        ("O1", 1, "P1", 3, "0.10"),
        ("O1", 2, "P1", 7, "19.99"),
        ("O1", 3, "P1", 1000000, "9999999999.99"),
        ("O1", 4, "P1", 1, "0.01"),
    ]
    items_and_orders(conn, lines, orders)
    got = rows_of(conn, FCT_ORDER_ITEMS_SELECT, "line_number, line_revenue, line_cost")
    assert got == [
        (1, D("0.30"), D("0.99")),
        (2, D("139.93"), D("2.31")),
        (3, D("9999999999990000.00"), D("330000.00")),
        (4, D("0.01"), D("0.33")),
    ]


def test_fct_order_items_fits_its_ddl_and_keeps_staging_columns(conn):
    with_products(conn, PRODUCTS)
    items_and_orders(conn, [("O1", 1, "P1", 2, "1.25")], {"O1": T(2024, 3, 2, 23, 59)})
    conn.execute(FCT_ORDER_ITEMS_DDL)
    conn.execute(f"INSERT INTO warehouse.fct_order_items {FCT_ORDER_ITEMS_SELECT}")
    assert conn.sql("SELECT * FROM warehouse.fct_order_items").fetchall() == [
        ("O1", 1, "P1", "Lamps", D2, 2, D("1.25"), D("2.50"), D("2.00"))
    ]


def test_fct_orders_with_and_without_lines(conn):
    with_products(conn, PRODUCTS)
    orders = {"O1": T(2024, 3, 1, 9), "O2": T(2024, 3, 1, 10), "O3": T(2024, 3, 2, 11)}
    lines = [("O1", 1, "P1", 2, "1.25"), ("O1", 2, "P404", 1, "3.00"), ("O2", 1, "P2", 1, "4")]
    items_and_orders(conn, lines, orders)
    conn.execute(FCT_ORDER_ITEMS_DDL)
    conn.execute(f"INSERT INTO warehouse.fct_order_items {FCT_ORDER_ITEMS_SELECT}")
    got = rows_of(
        conn, FCT_ORDERS_SELECT, "order_id, order_date, item_count, revenue, cost", [D1, D2]
    )
    assert got == [
        ("O1", D1, 2, D("5.50"), D("2.00")),  # the unknown product's NULL cost is skipped
        ("O2", D1, 1, D("4.00"), None),  # every line cost NULL: NULL
        ("O3", D2, 0, D("0.00"), D("0.00")),  # no lines
    ]


# --------------------------------------------------------------------------- fct_sessions


def event(eid: str, session: str, ts: T, kind: str, user: str | None = None) -> dict:
    return {
        "event_id": eid,
        "session_id": session,
        "user_id": user,
        "event_type": kind,
        "event_ts": ts,
        "event_date": ts.date(),
    }


def test_sessions_user_is_first_non_null_by_ts_then_event_id_and_steps_are_counted(conn):
    t = T(2024, 3, 1, 10)
    events = [
        event("E5", "S1", t, "page_view"),  # first, but no user
        event("E9", "S1", t + dt.timedelta(seconds=1), "product_view", "U9"),
        event("E2", "S1", t + dt.timedelta(seconds=1), "product_view", "U2"),  # ties: E2 < E9
        event("E1", "S1", t + dt.timedelta(minutes=5), "add_to_cart", "U1"),
        event("E3", "S1", t + dt.timedelta(minutes=6), "add_to_cart"),
        event("E4", "S1", t + dt.timedelta(minutes=7), "checkout"),
        event("E6", "S1", t + dt.timedelta(minutes=8), "purchase", "U1"),
        # S1 again on the next UTC day: another session row
        event("E7", "S1", T(2024, 3, 2, 0, 0, 1), "page_view", "U7"),
        # S2: no user at all
        event("E8", "S2", T(2024, 3, 1, 23, 59, 59), "purchase"),
    ]
    conn.register("_stg_events", stage("events", events))
    got = conn.sql(FCT_SESSIONS_SELECT).pl()
    expected = pl.DataFrame(
        [
            ("S1", "U2", D1, t, t + dt.timedelta(minutes=8), 7, 2, 2, 1, 1),
            ("S2", None, D1, T(2024, 3, 1, 23, 59, 59), T(2024, 3, 1, 23, 59, 59), 1, 0, 0, 0, 1),
            ("S1", "U7", D2, T(2024, 3, 2, 0, 0, 1), T(2024, 3, 2, 0, 0, 1), 1, 0, 0, 0, 0),
        ],
        schema={
            "session_id": pl.String,
            "user_id": pl.String,
            "session_date": pl.Date,
            "session_start": pl.Datetime("us"),
            "session_end": pl.Datetime("us"),
            "event_count": pl.Int64,
            "product_views": pl.Int64,
            "add_to_cart": pl.Int64,
            "checkouts": pl.Int64,
            "purchases": pl.Int64,
        },
        orient="row",
    )
    assert_frame_equal(got, expected)


def test_staged_parquet_reads_as_the_polars_scan_of_the_staging_schema(conn, tmp_path):
    """A local lake's staging files are DuckDB views typed as the staging schema, whatever
    schema an older file was written with (missing columns NULL, extra ones left out,
    older types cast), the same rows as the Polars scan the S3 path uses."""
    from assets_pkg.resources.lake import LakeResource, partition_dir
    from assets_pkg.warehouse.tables import register_staged

    lake = LakeResource(root=str(tmp_path / "lake"))
    schema = staging_schema(SOURCES["payments"])
    current = pl.DataFrame(
        {
            "payment_id": ["P1"],
            "order_id": ["O1"],
            "amount": [D("12.50")],
            "currency": ["EUR"],
            "method": ["card"],
            "status": ["captured"],
            "paid_ts": [T(2024, 3, 1, 9, 30)],
            "paid_date": [D1],
            "_file_name": ["payments_2.jsonl"],
            "_row_number": [3],
        },
        schema=schema,
    )
    older = (
        current.with_columns(payment_id=pl.lit("P0"), paid_date=pl.lit(D2))
        .drop("method")
        .with_columns(pl.col("_row_number").cast(pl.Int32), legacy=pl.lit("x"))
    )
    for day, frame in ((D1, current), (D2, older)):
        lake.write(frame, "staging", "stg_payments", partition_dir(day), "data.parquet")

    register_staged(conn, lake, {"_stg": "payments"}, [D1, D2])
    got = conn.sql("SELECT * FROM _stg ORDER BY payment_id").pl()
    expected = pl.concat(
        [older.drop("legacy").with_columns(method=pl.lit(None, pl.String)), current],
        how="diagonal_relaxed",
    ).select(list(schema))
    assert got.schema == pl.Schema(schema)
    assert_frame_equal(got, expected.cast(schema))
    assert got["method"].to_list() == [None, "card"]
    # the current day alone: the same rows as the Polars scan of the S3 path
    register_staged(conn, lake, {"_stg": "payments"}, [D1])
    assert_frame_equal(
        conn.sql("SELECT * FROM _stg").pl(),
        lake.scan("staging/stg_payments", [D1], schema).collect(),
    )
