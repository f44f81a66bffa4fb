"""Hand-written baselines that build the project's four marts straight from landing files.

The project ingests landing files into a versioned lake, stages them, loads a DuckDB
warehouse and derives ``marts.*`` from it, all under Dagster. To say what that machinery
costs, the benchmark harness runs the same computation without it, three ways:

``pandas_pipeline``
    What a typical Airflow + pandas job looks like: read every file into a DataFrame,
    concat, parse with ``pd.to_datetime``, dedupe with ``sort_values`` +
    ``drop_duplicates``, ``merge``, ``groupby``, and ``to_sql`` the cleaned tables and
    the marts into SQLite. It is the "classic" baseline a team would write by hand. Money
    is carried as integer cents so the sums equal the project's DECIMAL(18,2) exactly.

``duckdb_floor``
    The same marts as one DuckDB SQL script over ``read_csv``/``read_json`` globs: no
    per-file Python, no lake, no orchestration, no quality checks. It is the engine floor:
    the least wall time this computation can take on this machine with the project's
    engine, so the gap between it and the project is the price of the platform.

``spark_daily_sales_by_category``
    One mart as a local-mode PySpark job, only when ``pyspark`` is importable, to place
    the JVM engine's fixed cost on the same chart.

``read_marts`` and ``compare_marts`` put any of these, and the project's warehouse, into
one canonical form and list their differences; equality is row for row, to the cent.

Semantics followed (see ``/work/shared/CONTRACT.md``): values are trimmed, empty is NULL;
timestamps go to naive UTC with fractions truncated to microseconds; a key's latest
version is the row with the greatest (file name, row number), except events, where the
first delivery wins; order items take their order's date; product category and unit cost
are the product version valid at ``order_ts`` (the first version for older orders);
ratios are exact and rounded half away from zero. Only valid ("clean") input is in scope:
the baselines do no validation and no rejects, which is the project's work, not theirs.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable
from functools import reduce
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import polars as pl

#: the contract's whitespace: ``str.strip()`` would also eat Unicode spaces the project keeps
WHITESPACE = " \t\r\n\x0b\x0c"
SALE_STATUSES = ("placed", "shipped", "delivered")
MARTS = ("daily_sales", "daily_sales_by_category", "daily_payments", "daily_funnel")

#: key, money and ratio columns of each mart: what the canonical form and the diff need
MART_KEYS: dict[str, list[str]] = {
    "daily_sales": ["order_date"],
    "daily_sales_by_category": ["date", "product_category"],
    "daily_payments": ["paid_date", "method"],
    "daily_funnel": ["date"],
}
MART_COLUMNS: dict[str, list[str]] = {
    "daily_sales": [
        "order_date",
        "revenue",
        "cost",
        "gross_profit",
        "profit_margin",
        "order_count",
    ],
    "daily_sales_by_category": [
        "date",
        "product_category",
        "total_sales",
        "order_count",
        "avg_order_value",
    ],
    "daily_payments": [
        "paid_date",
        "method",
        "settled_amount",
        "refunded_amount",
        "payment_count",
    ],
    "daily_funnel": [
        "date",
        "sessions",
        "product_views",
        "add_to_cart",
        "checkouts",
        "purchases",
        "conversion_rate",
    ],
}
MONEY_COLUMNS = {
    "revenue",
    "cost",
    "gross_profit",
    "total_sales",
    "avg_order_value",
    "settled_amount",
    "refunded_amount",
}
RATIO_COLUMNS = {"profit_margin", "conversion_rate"}
DATE_COLUMNS = {"order_date", "date", "paid_date"}
COUNT_COLUMNS = {
    "order_count",
    "payment_count",
    "sessions",
    "product_views",
    "add_to_cart",
    "checkouts",
    "purchases",
}
MONEY = pl.Decimal(18, 2)
RATIO = pl.Decimal(9, 4)


def _files(landing: Path, source: str, suffix: str) -> list[Path]:
    # names that start with "." or end in .tmp/.partial are still being written
    return sorted(
        p
        for p in (landing / source).glob(f"*{suffix}")
        if not p.name.startswith(".") and p.is_file()
    )


# ============================================================================ pandas


def _read_csv_files(files: Iterable[Path]) -> pd.DataFrame:
    frames = []
    for path in files:
        # dtype=str and no NA guessing: ids such as "NA" or "007" must stay text
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        df.columns = df.columns.str.strip(WHITESPACE)
        df["_file"] = path.name
        df["_row"] = np.arange(1, len(df) + 1)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _read_jsonl_files(files: Iterable[Path], columns: list[str]) -> pd.DataFrame:
    frames = []
    for path in files:
        # dtype=str keeps quoted money as its text and numeric ids as their digits; a JSON
        # number still goes through a float, and without precise_float pandas' fast parser
        # turns 4.56 into "4.5600000000000005" (a lost cent per few hundred payments)
        df = pd.read_json(path, lines=True, dtype=dict.fromkeys(columns, str), precise_float=True)
        df = df.reindex(columns=columns)
        df["_file"] = path.name
        df["_row"] = np.arange(1, len(df) + 1)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _clean(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Trim every value; an empty one (or a column a file lacked) is NULL."""
    for c in columns:
        if c not in df.columns:
            df[c] = pd.NA
        df[c] = df[c].astype("string").str.strip(WHITESPACE).replace("", pd.NA)
    return df


def _utc(s: pd.Series) -> pd.Series:
    # the project truncates beyond microseconds and keeps naive UTC
    ts = pd.to_datetime(s, utc=True, format="ISO8601")
    return ts.dt.floor("us").dt.tz_localize(None)


def _cents(s: pd.Series) -> pd.Series:
    """Decimal text with at most 2 places as exact integer cents (nullable)."""
    parts = s.str.extract(r"^([+-]?)([0-9]+)(?:\.([0-9]{1,2}))?$")
    whole = parts[1].astype("Int64")
    frac = parts[2].fillna("0").str.ljust(2, "0").astype("Int64")
    cents = whole * 100 + frac
    return cents.where(parts[0] != "-", -cents)


def _latest(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    return df.sort_values(["_file", "_row"]).drop_duplicates(key, keep="last")


def _sign(s: pd.Series) -> pd.Series:
    return (s > 0).astype("Int64") - (s < 0).astype("Int64")


def _exact_div(n: pd.Series, d: pd.Series) -> pd.Series:
    """round(n / d) half away from zero, in integers, as the project's ``exact_div``."""
    n = n.astype("Int64")
    d = d.astype("Int64")
    q = (2 * n.abs() + d.abs()) // (2 * d.abs()).where(d != 0)
    return _sign(n) * _sign(d) * q


def _decimal_text(units: pd.Series, places: int) -> pd.Series:
    """Integer units of 10**-places as exact decimal text: SQLite has no DECIMAL."""
    units = units.astype("Int64")
    scale = 10**places
    a = units.abs()
    text = (a // scale).astype("string") + "." + (a % scale).astype("string").str.zfill(places)
    return text.where(units >= 0, "-" + text)


def _in_range(days: pd.Series, start: dt.date | None, end: dt.date | None) -> pd.Series:
    keep = pd.Series(True, index=days.index)
    if start is not None:
        keep &= days >= pd.Timestamp(start)
    if end is not None:
        keep &= days <= pd.Timestamp(end)
    return keep


def _day_text(days: pd.Series) -> pd.Series:
    return days.dt.strftime("%Y-%m-%d")


def pandas_pipeline(
    landing: Path,
    db_path: Path,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> dict[str, int]:
    """The four marts the Airflow + pandas way, staged and published into SQLite.

    ``db_path`` is replaced. ``start``/``end`` (inclusive) limit the marts to the project's
    partition range; None takes every date present. Returns the row count of each mart.
    """
    landing = Path(landing)
    Path(db_path).unlink(missing_ok=True)
    con = sqlite3.connect(db_path)
    try:
        # ---- extract + clean
        products = _clean(
            _read_csv_files(_files(landing, "products", ".csv")),
            ["product_id", "name", "category", "list_price", "unit_cost", "updated_at"],
        )
        products["updated_at"] = _utc(products["updated_at"])
        products["unit_cost_cents"] = _cents(products["unit_cost"])
        products["list_price_cents"] = _cents(products["list_price"])
        # a snapshot per (product, updated_at); the SCD2 compression of identical neighbours
        # does not change which attributes an as-of lookup finds, so it is left out
        products = _latest(products, ["product_id", "updated_at"])

        orders = _clean(
            _read_csv_files(_files(landing, "orders", ".csv")),
            ["order_id", "customer_id", "order_ts", "status", "channel"],
        )
        orders["order_ts"] = _utc(orders["order_ts"])
        orders = _latest(orders, ["order_id"])
        orders["order_date"] = orders["order_ts"].dt.floor("D")

        items = _clean(
            _read_csv_files(_files(landing, "order_items", ".csv")),
            ["order_id", "line_number", "product_id", "quantity", "unit_price"],
        )
        items["line_number"] = items["line_number"].astype("Int64")
        items["quantity"] = items["quantity"].astype("Int64")
        items["unit_price_cents"] = _cents(items["unit_price"])
        items = _latest(items, ["order_id", "line_number"])

        payment_cols = [
            "payment_id",
            "order_id",
            "amount",
            "currency",
            "method",
            "status",
            "paid_ts",
        ]
        payments = _clean(
            _read_jsonl_files(_files(landing, "payments", ".jsonl"), payment_cols), payment_cols
        )
        payments["currency"] = payments["currency"].fillna("USD")
        payments["paid_ts"] = _utc(payments["paid_ts"])
        payments["amount_cents"] = _cents(payments["amount"])
        payments = _latest(payments, ["payment_id"])
        payments["paid_date"] = payments["paid_ts"].dt.floor("D")

        event_cols = [
            "event_id",
            "user_id",
            "session_id",
            "event_type",
            "event_ts",
            "page_url",
            "product_id",
            "order_id",
        ]
        events = _clean(
            _read_jsonl_files(_files(landing, "events", ".jsonl"), event_cols), event_cols
        )
        events["event_ts"] = _utc(events["event_ts"])
        # events are delivered at least once: the first delivery wins
        events = events.sort_values(["_file", "_row"]).drop_duplicates("event_id", keep="first")
        events["event_date"] = events["event_ts"].dt.floor("D")

        # ---- transform: order lines, dated by their order, costed at order time
        lines = items.merge(
            orders[["order_id", "order_ts", "order_date", "status"]], on="order_id", how="inner"
        )
        lines = lines[_in_range(lines["order_date"], start, end)]
        dim = products[["product_id", "updated_at", "category", "unit_cost_cents"]]
        lines = pd.merge_asof(
            lines.sort_values("order_ts"),
            dim.sort_values("updated_at"),
            left_on="order_ts",
            right_on="updated_at",
            by="product_id",
            direction="backward",
        )
        first = dim.sort_values("updated_at").drop_duplicates("product_id", keep="first")
        lines = lines.merge(
            first[["product_id", "category", "unit_cost_cents"]],
            on="product_id",
            how="left",
            suffixes=("", "_first"),
        )
        # an order older than the product's first version takes the first version
        matched = lines["updated_at"].notna()
        lines["product_category"] = lines["category"].where(matched, lines["category_first"])
        unit_cost = lines["unit_cost_cents"].where(matched, lines["unit_cost_cents_first"])
        lines["line_revenue_cents"] = lines["quantity"] * lines["unit_price_cents"]
        lines["line_cost_cents"] = lines["quantity"] * unit_cost.astype("Int64")

        order_totals = (
            lines.groupby("order_id")
            .agg(
                item_count=("line_number", "size"),
                revenue_cents=("line_revenue_cents", "sum"),
                cost_cents=("line_cost_cents", lambda s: s.sum(min_count=1)),
            )
            .reset_index()
        )
        fct_orders = orders[_in_range(orders["order_date"], start, end)].merge(
            order_totals, on="order_id", how="left"
        )
        fct_orders["item_count"] = fct_orders["item_count"].fillna(0).astype("int64")
        fct_orders["revenue_cents"] = fct_orders["revenue_cents"].fillna(0).astype("Int64")
        fct_orders["cost_cents"] = fct_orders["cost_cents"].astype("Int64")
        sales = fct_orders[
            fct_orders["status"].isin(SALE_STATUSES) & (fct_orders["item_count"] > 0)
        ]

        # ---- marts
        ds = (
            sales.groupby("order_date")
            .agg(
                revenue=("revenue_cents", "sum"),
                cost=("cost_cents", lambda s: s.sum(min_count=1)),
                order_count=("order_id", "size"),
            )
            .reset_index()
            .sort_values("order_date")
        )
        ds["revenue"] = ds["revenue"].astype("Int64")
        ds["cost"] = ds["cost"].astype("Int64")
        gross = ds["revenue"] - ds["cost"]
        margin = _exact_div(gross * 10000, ds["revenue"])
        # the project's TRY_CAST to DECIMAL(9,4): a margin beyond it is NULL
        margin = margin.where(margin.abs() < 10**9)
        daily_sales = pd.DataFrame(
            {
                "order_date": _day_text(ds["order_date"]),
                "revenue": _decimal_text(ds["revenue"], 2),
                "cost": _decimal_text(ds["cost"], 2),
                "gross_profit": _decimal_text(gross, 2),
                "profit_margin": _decimal_text(margin, 4),
                "order_count": ds["order_count"].astype("int64"),
            }
        )

        sale_lines = lines[lines["order_id"].isin(sales["order_id"])]
        cat = (
            sale_lines.groupby(["order_date", "product_category"], dropna=False)
            .agg(
                total_sales=("line_revenue_cents", "sum"),
                order_count=("order_id", "nunique"),
            )
            .reset_index()
            .sort_values(["order_date", "product_category"], na_position="last")
        )
        daily_sales_by_category = pd.DataFrame(
            {
                "date": _day_text(cat["order_date"]),
                "product_category": cat["product_category"],
                "total_sales": _decimal_text(cat["total_sales"], 2),
                "order_count": cat["order_count"].astype("int64"),
                "avg_order_value": _decimal_text(
                    _exact_div(cat["total_sales"], cat["order_count"]), 2
                ),
            }
        )

        pays = payments[_in_range(payments["paid_date"], start, end)].copy()
        pays["settled"] = pays["amount_cents"].where(pays["status"] == "settled", 0)
        pays["refunded"] = pays["amount_cents"].where(pays["status"] == "refunded", 0)
        dp = (
            pays.groupby(["paid_date", "method"], dropna=False)
            .agg(
                settled_amount=("settled", "sum"),
                refunded_amount=("refunded", "sum"),
                payment_count=("payment_id", "size"),
            )
            .reset_index()
            .sort_values(["paid_date", "method"], na_position="last")
        )
        daily_payments = pd.DataFrame(
            {
                "paid_date": _day_text(dp["paid_date"]),
                "method": dp["method"],
                "settled_amount": _decimal_text(dp["settled_amount"], 2),
                "refunded_amount": _decimal_text(dp["refunded_amount"], 2),
                "payment_count": dp["payment_count"].astype("int64"),
            }
        )

        ev = events[_in_range(events["event_date"], start, end)]
        steps = {
            "product_views": "product_view",
            "add_to_cart": "add_to_cart",
            "checkouts": "checkout",
            "purchases": "purchase",
        }
        flags = pd.DataFrame(
            {"session_id": ev["session_id"], "event_date": ev["event_date"]}
            | {col: ev["event_type"] == kind for col, kind in steps.items()}
        )
        sessions = flags.groupby(["event_date", "session_id"]).agg({col: "any" for col in steps})
        funnel = sessions.groupby(level="event_date").agg(
            sessions=("product_views", "size"), **{col: (col, "sum") for col in steps}
        )
        funnel = funnel.reset_index().sort_values("event_date")
        daily_funnel = pd.DataFrame(
            {"date": _day_text(funnel["event_date"])}
            | {col: funnel[col].astype("int64") for col in ["sessions", *steps]}
            | {
                "conversion_rate": _decimal_text(
                    _exact_div(funnel["purchases"] * 10000, funnel["sessions"]), 4
                )
            }
        )

        # ---- load: the staged tables as such a job keeps them, then the marts
        staged = {
            "stg_products": products.drop(columns=["list_price", "unit_cost"]),
            "stg_orders": orders,
            "stg_order_items": items.drop(columns=["unit_price"]),
            "stg_payments": payments.drop(columns=["amount"]),
            "stg_events": events,
            "fct_order_items": lines[
                [
                    "order_id",
                    "line_number",
                    "product_id",
                    "product_category",
                    "order_date",
                    "quantity",
                    "unit_price_cents",
                    "line_revenue_cents",
                    "line_cost_cents",
                ]
            ],
            "fct_orders": fct_orders,
        }
        for name, frame in staged.items():
            frame.to_sql(name, con, if_exists="replace", index=False)
        marts = {
            "daily_sales": daily_sales,
            "daily_sales_by_category": daily_sales_by_category,
            "daily_payments": daily_payments,
            "daily_funnel": daily_funnel,
        }
        for name, frame in marts.items():
            frame.to_sql(name, con, if_exists="replace", index=False)
        con.commit()
        return {name: len(frame) for name, frame in marts.items()}
    finally:
        con.close()


# ============================================================================ DuckDB

#: The whole computation as one script. Paths and the date range come in as DuckDB
#: variables (``landing``, ``start_date``, ``end_date``), so the text is a constant.
#: Within a file the baseline has no row number: which of two copies of a key in one file
#: wins is arbitrary, which only matters for rows the project rejects as duplicate_key.
DUCKDB_FLOOR_SQL = r"""
CREATE SCHEMA IF NOT EXISTS marts;

CREATE OR REPLACE TEMP MACRO clean(x) AS
    nullif(trim(x, chr(32) || chr(9) || chr(10) || chr(13) || chr(11) || chr(12)), '');
-- TIMESTAMPTZ parsing applies the offset (a plain TIMESTAMP cast would drop it) and
-- truncates fractions beyond microseconds, as the project does
CREATE OR REPLACE TEMP MACRO utc(x) AS timezone('UTC', CAST(clean(x) AS TIMESTAMPTZ));
CREATE OR REPLACE TEMP MACRO money(x) AS CAST(clean(x) AS DECIMAL(18,2));
CREATE OR REPLACE TEMP MACRO exact_div(n, d) AS
    CASE WHEN d = 0 OR d IS NULL OR n IS NULL THEN NULL
         ELSE sign(n) * sign(d) * ((2 * abs(n) + abs(d)) // (2 * abs(d))) END;
CREATE OR REPLACE TEMP MACRO cents(x) AS CAST(x * 100 AS HUGEINT);
CREATE OR REPLACE TEMP MACRO in_range(d) AS
    d BETWEEN coalesce(getvariable('start_date'), DATE '0001-01-01')
          AND coalesce(getvariable('end_date'), DATE '9999-12-31');

-- the CSV dialect is the contract's (RFC 4180), pinned rather than sniffed per file
CREATE OR REPLACE TEMP TABLE products AS
SELECT product_id, updated_at, category, unit_cost
FROM (
    SELECT clean(product_id) AS product_id, utc(updated_at) AS updated_at,
           clean(category) AS category, money(unit_cost) AS unit_cost, filename
    FROM read_csv(getvariable('landing') || '/products/*.csv', header = true,
                  all_varchar = true, union_by_name = true, filename = true,
                  delim = ',', quote = '"', escape = '"')
)
QUALIFY row_number() OVER (PARTITION BY product_id, updated_at ORDER BY filename DESC) = 1;

CREATE OR REPLACE TEMP TABLE orders AS
SELECT order_id, status, order_ts, CAST(order_ts AS DATE) AS order_date
FROM (
    SELECT clean(order_id) AS order_id, clean(status) AS status,
           utc(order_ts) AS order_ts, filename
    FROM read_csv(getvariable('landing') || '/orders/*.csv', header = true,
                  all_varchar = true, union_by_name = true, filename = true,
                  delim = ',', quote = '"', escape = '"')
)
QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY filename DESC) = 1;

CREATE OR REPLACE TEMP TABLE lines AS
WITH items AS (
    SELECT clean(order_id) AS order_id, CAST(clean(line_number) AS BIGINT) AS line_number,
           clean(product_id) AS product_id, CAST(clean(quantity) AS BIGINT) AS quantity,
           money(unit_price) AS unit_price, filename
    FROM read_csv(getvariable('landing') || '/order_items/*.csv', header = true,
                  all_varchar = true, union_by_name = true, filename = true,
                  delim = ',', quote = '"', escape = '"')
    QUALIFY row_number() OVER (PARTITION BY order_id, line_number ORDER BY filename DESC) = 1
), dated AS (
    -- an item lives on its order's date; an item without an order never loads
    SELECT i.order_id, i.product_id, i.quantity, i.unit_price,
           o.order_ts, o.order_date, o.status
    FROM items i JOIN orders o USING (order_id)
    WHERE in_range(o.order_date)
), first_version AS (
    SELECT product_id, category, unit_cost
    FROM products
    QUALIFY row_number() OVER (PARTITION BY product_id ORDER BY updated_at) = 1
)
SELECT d.order_id, d.order_date, d.status,
       CASE WHEN p.product_id IS NULL THEN f.category ELSE p.category END AS product_category,
       CAST(d.quantity * d.unit_price AS DECIMAL(18,2)) AS line_revenue,
       CAST(d.quantity * CASE WHEN p.product_id IS NULL THEN f.unit_cost ELSE p.unit_cost END
            AS DECIMAL(18,2)) AS line_cost
FROM dated d
ASOF LEFT JOIN products p ON d.product_id = p.product_id AND d.order_ts >= p.updated_at
LEFT JOIN first_version f ON f.product_id = d.product_id
WHERE d.status IN ('placed', 'shipped', 'delivered');

CREATE OR REPLACE TABLE marts.daily_sales AS
WITH per_order AS (
    SELECT order_date, order_id,
           sum(line_revenue) AS revenue, sum(line_cost) AS cost
    FROM lines GROUP BY order_date, order_id
), d AS (
    SELECT order_date,
           CAST(sum(revenue) AS DECIMAL(18,2)) AS revenue,
           CAST(sum(cost) AS DECIMAL(18,2)) AS cost,
           count(*) AS order_count
    FROM per_order GROUP BY order_date
)
SELECT order_date, revenue, cost,
       CAST(revenue - cost AS DECIMAL(18,2)) AS gross_profit,
       TRY_CAST(exact_div(cents(revenue - cost) * 10000, cents(revenue)) * 0.0001
                AS DECIMAL(9,4)) AS profit_margin,
       order_count
FROM d ORDER BY order_date;

CREATE OR REPLACE TABLE marts.daily_sales_by_category AS
WITH d AS (
    SELECT order_date AS date, product_category,
           CAST(sum(line_revenue) AS DECIMAL(18,2)) AS total_sales,
           count(DISTINCT order_id) AS order_count
    FROM lines GROUP BY ALL
)
SELECT date, product_category, total_sales, order_count,
       CAST(exact_div(cents(total_sales), order_count) * 0.01 AS DECIMAL(18,2))
           AS avg_order_value
FROM d ORDER BY date, product_category NULLS LAST;

CREATE OR REPLACE TABLE marts.daily_payments AS
WITH p AS (
    SELECT clean(payment_id) AS payment_id, clean(method) AS method,
           clean(status) AS status, money(amount) AS amount, utc(paid_ts) AS paid_ts, filename
    FROM read_json(getvariable('landing') || '/payments/*.jsonl',
                   format = 'newline_delimited', filename = true,
                   columns = {payment_id: 'VARCHAR', amount: 'VARCHAR', method: 'VARCHAR',
                              status: 'VARCHAR', paid_ts: 'VARCHAR'})
    QUALIFY row_number() OVER (PARTITION BY clean(payment_id) ORDER BY filename DESC) = 1
)
SELECT CAST(paid_ts AS DATE) AS paid_date, method,
       CAST(coalesce(sum(amount) FILTER (WHERE status = 'settled'), 0) AS DECIMAL(18,2))
           AS settled_amount,
       CAST(coalesce(sum(amount) FILTER (WHERE status = 'refunded'), 0) AS DECIMAL(18,2))
           AS refunded_amount,
       count(*) AS payment_count
FROM p
WHERE in_range(CAST(paid_ts AS DATE))
GROUP BY ALL
ORDER BY paid_date, method NULLS LAST;

CREATE OR REPLACE TABLE marts.daily_funnel AS
WITH e AS (
    SELECT clean(session_id) AS session_id, clean(event_type) AS event_type,
           CAST(utc(event_ts) AS DATE) AS date
    FROM read_json(getvariable('landing') || '/events/*.jsonl',
                   format = 'newline_delimited', filename = true,
                   columns = {event_id: 'VARCHAR', session_id: 'VARCHAR',
                              event_type: 'VARCHAR', event_ts: 'VARCHAR'})
    -- delivered at least once: the first delivery wins
    QUALIFY row_number() OVER (PARTITION BY clean(event_id) ORDER BY filename) = 1
), s AS (
    SELECT date, session_id,
           bool_or(event_type = 'product_view') AS pv,
           bool_or(event_type = 'add_to_cart') AS atc,
           bool_or(event_type = 'checkout') AS co,
           bool_or(event_type = 'purchase') AS pu
    FROM e WHERE in_range(date) GROUP BY date, session_id
), d AS (
    SELECT date, count(*) AS sessions,
           count(*) FILTER (WHERE pv) AS product_views,
           count(*) FILTER (WHERE atc) AS add_to_cart,
           count(*) FILTER (WHERE co) AS checkouts,
           count(*) FILTER (WHERE pu) AS purchases
    FROM s GROUP BY date
)
SELECT date, sessions, product_views, add_to_cart, checkouts, purchases,
       CAST(exact_div(CAST(purchases AS HUGEINT) * 10000, sessions) * 0.0001 AS DECIMAL(9,4))
           AS conversion_rate
FROM d ORDER BY date;
"""


def duckdb_floor(
    landing: Path,
    db_path: Path,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> dict[str, int]:
    """The four marts as one DuckDB script over the landing globs, into ``marts.*``.

    ``db_path`` is replaced; ``start``/``end`` as for :func:`pandas_pipeline`.
    """
    import duckdb

    Path(db_path).unlink(missing_ok=True)
    with duckdb.connect(str(db_path)) as con:
        con.execute("SET VARIABLE landing = ?", [str(Path(landing).resolve())])
        con.execute("SET VARIABLE start_date = CAST(? AS DATE)", [start])
        con.execute("SET VARIABLE end_date = CAST(? AS DATE)", [end])
        con.execute(DUCKDB_FLOOR_SQL)
        return {
            name: con.execute(f"SELECT count(*) FROM marts.{name}").fetchone()[0] for name in MARTS
        }


# ============================================================================ Spark


def spark_daily_sales_by_category(
    landing: Path,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pl.DataFrame | None:
    """``daily_sales_by_category`` as a local-mode PySpark job; None without pyspark."""
    try:
        from pyspark.sql import SparkSession, Window
        from pyspark.sql import functions as F
    except ImportError:
        return None

    landing = Path(landing).resolve()
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("classic-daily-sales-by-category")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:

        def read(source: str) -> object:
            # Spark maps every file it reads at once onto the first file's header by
            # position; landing files order their columns freely, so the files are read in
            # groups that share a header (a handful), then lined up by name
            groups: dict[bytes, list[str]] = {}
            for path in _files(landing, source, ".csv"):
                with open(path, "rb") as fh:
                    groups.setdefault(fh.readline().rstrip(b"\r\n"), []).append(str(path))
            frames = []
            for paths in groups.values():
                df = spark.read.option("header", True).option("escape", '"').csv(paths)
                df = df.toDF(*[c.lstrip("\ufeff").strip(WHITESPACE) for c in df.columns])
                name = F.regexp_extract(F.input_file_name(), r"([^/]+)$", 1)
                frames.append(df.withColumn("_file", name))
            return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)

        def clean(name: str) -> object:
            trimmed = F.trim(F.col(name))
            return F.when(trimmed == "", None).otherwise(trimmed)

        def latest(df: object, key: list[str], order: str = "_file") -> object:
            w = Window.partitionBy(*key).orderBy(F.col(order).desc())
            return df.withColumn("_n", F.row_number().over(w)).filter("_n = 1").drop("_n")

        # Spark's timestamp parser knows the contract's spellings but rounds nothing past
        # microseconds; cut the 7th fraction digit off first so it truncates like the project
        def utc(name: str) -> object:
            text = F.regexp_replace(clean(name), r"(\.[0-9]{6})[0-9]+", "$1")
            return F.to_timestamp(text)

        orders = latest(
            read("orders").select(
                clean("order_id").alias("order_id"),
                clean("status").alias("status"),
                utc("order_ts").alias("order_ts"),
                "_file",
            ),
            ["order_id"],
        ).withColumn("order_date", F.to_date("order_ts"))
        items = latest(
            read("order_items").select(
                clean("order_id").alias("order_id"),
                clean("line_number").cast("bigint").alias("line_number"),
                clean("product_id").alias("product_id"),
                clean("quantity").cast("bigint").alias("quantity"),
                clean("unit_price").cast("decimal(18,2)").alias("unit_price"),
                "_file",
            ),
            ["order_id", "line_number"],
        )
        products = latest(
            read("products").select(
                clean("product_id").alias("product_id"),
                clean("category").alias("category"),
                utc("updated_at").alias("updated_at"),
                "_file",
            ),
            ["product_id", "updated_at"],
        )
        lines = items.join(orders, "order_id").filter(F.col("status").isin(*SALE_STATUSES))
        if start is not None:
            lines = lines.filter(F.col("order_date") >= F.lit(start))
        if end is not None:
            lines = lines.filter(F.col("order_date") <= F.lit(end))
        # Spark has no as-of join: rank the versions at or before order_ts, newest first,
        # falling back to the first version for orders older than every version
        cand = lines.join(products, "product_id", "left").withColumn(
            "_before", F.col("updated_at") <= F.col("order_ts")
        )
        w = Window.partitionBy("order_id", "line_number").orderBy(
            F.col("_before").desc(),
            F.when(F.col("_before"), F.col("updated_at")).desc(),
            F.col("updated_at").asc(),
        )
        pit = cand.withColumn("_n", F.row_number().over(w)).filter("_n = 1")
        totals = pit.groupBy(
            F.col("order_date").alias("date"), F.col("category").alias("product_category")
        ).agg(
            F.sum(F.col("quantity") * F.col("unit_price"))
            .cast("decimal(18,2)")
            .alias("total_sales"),
            F.countDistinct("order_id").alias("order_count"),
        )
        # Spark divides decimals rounded to 6 places, which can tip a later rounding of a
        # .xx5 boundary; integer cents and a half-away-from-zero division are exact
        rows = totals.select(
            "date",
            "product_category",
            "total_sales",
            "order_count",
            F.expr(
                "CAST(CAST(sign(total_sales) * ((2 * abs(CAST(total_sales * 100 AS BIGINT))"
                " + order_count) div (2 * order_count)) AS DECIMAL(20,0)) / 100"
                " AS DECIMAL(18,2))"
            ).alias("avg_order_value"),
        ).collect()
    finally:
        spark.stop()
    frame = pl.DataFrame(
        [r.asDict() for r in rows],
        schema={
            "date": pl.Date,
            "product_category": pl.String,
            "total_sales": MONEY,
            "order_count": pl.Int64,
            "avg_order_value": MONEY,
        },
        orient="row",
    )
    return canonical("daily_sales_by_category", frame)


# ============================================================================ compare


def canonical(mart: str, df: pl.DataFrame) -> pl.DataFrame:
    """Fixed columns and types, sorted by key: money DECIMAL(18,2), ratios DECIMAL(9,4)."""
    exprs = []
    for c in MART_COLUMNS[mart]:
        col = pl.col(c)
        dtype = df.schema[c]
        if c in DATE_COLUMNS:
            exprs.append(col.str.to_date() if dtype == pl.String else col.cast(pl.Date))
        elif c in MONEY_COLUMNS:
            exprs.append(col.cast(MONEY))
        elif c in RATIO_COLUMNS:
            exprs.append(col.cast(RATIO))
        elif c in COUNT_COLUMNS:
            exprs.append(col.cast(pl.Int64))
        else:
            exprs.append(col.cast(pl.String))
    return df.select(exprs).sort(MART_KEYS[mart], nulls_last=True)


def read_marts(db_path: Path, kind: Literal["duckdb", "sqlite"]) -> dict[str, pl.DataFrame]:
    """The four marts of a baseline's database or of the project's warehouse, canonical.

    ``kind="duckdb"`` reads ``marts.*`` (the project's warehouse or ``duckdb_floor``'s
    file), opened read-only; ``kind="sqlite"`` reads ``pandas_pipeline``'s file.
    """
    out: dict[str, pl.DataFrame] = {}
    if kind == "duckdb":
        import duckdb

        with duckdb.connect(str(db_path), read_only=True) as con:
            for mart in MARTS:
                table = con.sql(f"SELECT * FROM marts.{mart}").to_arrow_table()
                out[mart] = canonical(mart, pl.from_arrow(table))
        return out
    con = sqlite3.connect(db_path)
    try:
        for mart in MARTS:
            cursor = con.execute(f"SELECT * FROM {mart}")
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            # every value as text first: money is stored as exact decimal text
            frame = pl.DataFrame(
                [[None if v is None else str(v) for v in r] for r in rows],
                schema=dict.fromkeys(names, pl.String),
                orient="row",
            )
            out[mart] = canonical(mart, frame)
    finally:
        con.close()
    return out


def compare_marts(
    expected: dict[str, pl.DataFrame],
    actual: dict[str, pl.DataFrame],
    limit: int = 5,
) -> list[str]:
    """Differences between two sets of canonical marts; an empty list means equal."""
    problems: list[str] = []
    for mart in sorted(set(expected) | set(actual)):
        if mart not in actual:
            problems.append(f"{mart}: missing from actual")
            continue
        if mart not in expected:
            problems.append(f"{mart}: not expected")
            continue
        exp, act = expected[mart], actual[mart]
        if exp.columns != act.columns:
            problems.append(f"{mart}: columns {exp.columns} != {act.columns}")
            continue
        key = MART_KEYS.get(mart, exp.columns[:1])
        values = [c for c in exp.columns if c not in key]
        joined = exp.with_columns(_e=pl.lit(True)).join(
            act.with_columns(_a=pl.lit(True)),
            on=key,
            how="full",
            coalesce=True,
            suffix="_actual",
            nulls_equal=True,
        )
        found: list[str] = []
        for row in joined.filter(pl.col("_a").is_null()).head(limit).iter_rows(named=True):
            found.append(f"{mart}: {_key_text(key, row)} only in expected")
        for row in joined.filter(pl.col("_e").is_null()).head(limit).iter_rows(named=True):
            found.append(f"{mart}: {_key_text(key, row)} only in actual")
        both = joined.filter(pl.col("_e") & pl.col("_a"))
        differs = [pl.col(c).ne_missing(pl.col(f"{c}_actual")).alias(c) for c in values]
        flagged = both.with_columns(_diff=pl.concat_list(differs)).filter(
            pl.col("_diff").list.any()
        )
        for row in flagged.head(limit).iter_rows(named=True):
            cols = [
                f"{c} {row[c]} != {row[f'{c}_actual']}"
                for c, bad in zip(values, row["_diff"], strict=True)
                if bad
            ]
            found.append(f"{mart}: {_key_text(key, row)}: {'; '.join(cols)}")
        total = (
            joined.filter(pl.col("_a").is_null()).height
            + joined.filter(pl.col("_e").is_null()).height
            + flagged.height
        )
        problems.extend(found[:limit])
        if total > len(found[:limit]):
            problems.append(f"{mart}: ... {total} differing rows in all")
    return problems


def _key_text(key: list[str], row: dict) -> str:
    return ", ".join(f"{k}={row[k]}" for k in key)
