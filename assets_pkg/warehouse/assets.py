"""Warehouse assets: SCD2 dimensions and the facts, in DuckDB schema ``warehouse``."""

from __future__ import annotations

import dagster as dg

from assets_pkg.staging.assets import staging_key
from assets_pkg.warehouse import sql
from assets_pkg.warehouse.tables import TableSpec, build_table_assets

DIM_CUSTOMER = TableSpec(
    table="warehouse.dim_customer",
    ddl=sql.DIM_CUSTOMER_DDL,
    select_sql=sql.DIM_CUSTOMER_SELECT,
    key=["customer_key"],
    description="One row per customer version (SCD type 2), valid on [valid_from, valid_to).",
    deps=[staging_key("customers")],
    staged={"_stg": "customers"},
    column_descriptions={"customer_key": "surrogate key, a hash of (customer_id, valid_from)"},
)
DIM_PRODUCT = TableSpec(
    table="warehouse.dim_product",
    ddl=sql.DIM_PRODUCT_DDL,
    select_sql=sql.DIM_PRODUCT_SELECT,
    key=["product_key"],
    description="One row per product version (SCD type 2), valid on [valid_from, valid_to).",
    deps=[staging_key("products")],
    staged={"_stg": "products"},
    changed_from_sql=sql.DIM_PRODUCT_CHANGED_FROM,
    column_descriptions={"product_key": "surrogate key, a hash of (product_id, valid_from)"},
)
FCT_ORDER_ITEMS = TableSpec(
    table="warehouse.fct_order_items",
    ddl=sql.FCT_ORDER_ITEMS_DDL,
    select_sql=sql.FCT_ORDER_ITEMS_SELECT,
    key=["order_id", "line_number"],
    date_column="order_date",
    description="One row per order line, costed at the product version valid at order_ts.",
    deps=[staging_key("order_items"), staging_key("orders"), DIM_PRODUCT.asset_key],
    staged={"_stg_items": "order_items", "_stg_orders": "orders"},
    column_descriptions={
        "line_revenue": "quantity x unit_price",
        "line_cost": "quantity x unit_cost of the product version valid at order_ts",
        "product_category": "category of the product version valid at order_ts",
    },
)
FCT_ORDERS = TableSpec(
    table="warehouse.fct_orders",
    ddl=sql.FCT_ORDERS_DDL,
    select_sql=sql.FCT_ORDERS_SELECT,
    key=["order_id"],
    date_column="order_date",
    description="One row per order in its latest state, with its lines' revenue and cost.",
    deps=[staging_key("orders"), FCT_ORDER_ITEMS.asset_key],
    staged={"_stg_orders": "orders"},
    select_takes_range=True,
    column_descriptions={
        "revenue": "sum of line_revenue over the order's lines",
        "cost": "sum of the known line_cost over the order's lines",
    },
)
FCT_PAYMENTS = TableSpec(
    table="warehouse.fct_payments",
    ddl=sql.FCT_PAYMENTS_DDL,
    select_sql=sql.FCT_PAYMENTS_SELECT,
    key=["payment_id"],
    date_column="paid_date",
    description="One row per payment in its latest state.",
    deps=[staging_key("payments")],
    staged={"_stg_payments": "payments"},
)
FCT_SESSIONS = TableSpec(
    table="warehouse.fct_sessions",
    ddl=sql.FCT_SESSIONS_DDL,
    select_sql=sql.FCT_SESSIONS_SELECT,
    key=["session_id", "session_date"],
    date_column="session_date",
    description="One row per session: the events of one session_id on one UTC date.",
    deps=[staging_key("events")],
    staged={"_stg_events": "events"},
    column_descriptions={"user_id": "first non-NULL user_id by (event_ts, event_id)"},
)

WAREHOUSE_TABLES = [
    DIM_CUSTOMER,
    DIM_PRODUCT,
    FCT_ORDER_ITEMS,
    FCT_ORDERS,
    FCT_PAYMENTS,
    FCT_SESSIONS,
]


def build_warehouse_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return build_table_assets(WAREHOUSE_TABLES, partitions_def, "warehouse")
