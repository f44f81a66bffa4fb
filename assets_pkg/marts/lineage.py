"""Column lineage of the marts and their freshness policy.

The lineage is read off the SQL in ``assets_pkg.marts.sql``: a mart column depends on the
warehouse columns its value is computed from, and on the columns that decide which rows
feed it (the grouping columns, the sale filter on ``status``/``item_count``, the join
keys). The latter are declared once per mart as its "rows" and added to every column,
because a change to any of them changes every figure of the day.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

#: marts are built for yesterday at 02:00 UTC: warn when a day late, fail when two
MARTS_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=dt.timedelta(hours=50), warn_window=dt.timedelta(hours=26)
)

#: per mart, the warehouse columns ("schema.table.column") deciding which rows count
MART_ROWS: dict[str, list[str]] = {
    "marts.daily_sales": [
        "warehouse.fct_orders.order_date",
        "warehouse.fct_orders.status",
        "warehouse.fct_orders.item_count",
    ],
    "marts.daily_sales_by_category": [
        "warehouse.fct_order_items.order_date",
        "warehouse.fct_order_items.product_category",
        # the join to the order header, whose status and line count make it a sale
        "warehouse.fct_order_items.order_id",
        "warehouse.fct_orders.order_id",
        "warehouse.fct_orders.order_date",
        "warehouse.fct_orders.status",
        "warehouse.fct_orders.item_count",
    ],
    "marts.daily_payments": [
        "warehouse.fct_payments.paid_date",
        "warehouse.fct_payments.method",
    ],
    "marts.daily_funnel": ["warehouse.fct_sessions.session_date"],
}

#: per mart, per column, the warehouse columns its value is computed from
#: (a count(*) depends on the key of the rows it counts)
MART_COLUMNS: dict[str, dict[str, list[str]]] = {
    "marts.daily_sales": {
        "order_date": ["warehouse.fct_orders.order_date"],
        "revenue": ["warehouse.fct_orders.revenue"],
        "cost": ["warehouse.fct_orders.cost"],
        "gross_profit": ["warehouse.fct_orders.revenue", "warehouse.fct_orders.cost"],
        "profit_margin": ["warehouse.fct_orders.revenue", "warehouse.fct_orders.cost"],
        "order_count": ["warehouse.fct_orders.order_id"],
    },
    "marts.daily_sales_by_category": {
        "date": ["warehouse.fct_order_items.order_date"],
        "product_category": ["warehouse.fct_order_items.product_category"],
        "total_sales": ["warehouse.fct_order_items.line_revenue"],
        "order_count": ["warehouse.fct_order_items.order_id"],
        "avg_order_value": [
            "warehouse.fct_order_items.line_revenue",
            "warehouse.fct_order_items.order_id",
        ],
    },
    "marts.daily_payments": {
        "paid_date": ["warehouse.fct_payments.paid_date"],
        "method": ["warehouse.fct_payments.method"],
        "settled_amount": ["warehouse.fct_payments.amount", "warehouse.fct_payments.status"],
        "refunded_amount": ["warehouse.fct_payments.amount", "warehouse.fct_payments.status"],
        "payment_count": ["warehouse.fct_payments.payment_id"],
    },
    "marts.daily_funnel": {
        "date": ["warehouse.fct_sessions.session_date"],
        "sessions": ["warehouse.fct_sessions.session_id"],
        "product_views": ["warehouse.fct_sessions.product_views"],
        "add_to_cart": ["warehouse.fct_sessions.add_to_cart"],
        "checkouts": ["warehouse.fct_sessions.checkouts"],
        "purchases": ["warehouse.fct_sessions.purchases"],
        "conversion_rate": [
            "warehouse.fct_sessions.purchases",
            "warehouse.fct_sessions.session_id",
        ],
    },
}


def column_dep(ref: str) -> dg.TableColumnDep:
    """``schema.table.column`` as a dependency on that column of the table's asset."""
    schema, table, column = ref.split(".")
    return dg.TableColumnDep(asset_key=dg.AssetKey([schema, table]), column_name=column)


def mart_column_lineage(table: str) -> dg.TableColumnLineage | None:
    """Which warehouse columns feed each column of a mart (None for other tables)."""
    columns = MART_COLUMNS.get(table)
    if columns is None:
        return None
    rows = MART_ROWS[table]
    return dg.TableColumnLineage(
        deps_by_column={
            # dict.fromkeys: the column's own inputs first, each dependency once
            column: [column_dep(ref) for ref in dict.fromkeys([*refs, *rows])]
            for column, refs in columns.items()
        }
    )
