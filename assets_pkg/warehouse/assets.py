"""Warehouse assets: SCD2 dimensions and the facts, in DuckDB schema ``warehouse``."""

from __future__ import annotations

import dagster as dg

from assets_pkg.contracts import TABLES
from assets_pkg.staging.assets import staging_key
from assets_pkg.warehouse import sql
from assets_pkg.warehouse.tables import TableSpec, build_table_assets

DIM_CUSTOMER = TableSpec(
    contract=TABLES["warehouse.dim_customer"],
    select_sql=sql.DIM_CUSTOMER_SELECT,
    deps=[staging_key("customers")],
    staged={"_stg": "customers"},
)
DIM_PRODUCT = TableSpec(
    contract=TABLES["warehouse.dim_product"],
    select_sql=sql.DIM_PRODUCT_SELECT,
    deps=[staging_key("products")],
    staged={"_stg": "products"},
    changed_from_sql=sql.DIM_PRODUCT_CHANGED_FROM,
)
FCT_ORDER_ITEMS = TableSpec(
    contract=TABLES["warehouse.fct_order_items"],
    select_sql=sql.FCT_ORDER_ITEMS_SELECT,
    deps=[staging_key("order_items"), staging_key("orders"), DIM_PRODUCT.asset_key],
    staged={"_stg_items": "order_items", "_stg_orders": "orders"},
)
FCT_ORDERS = TableSpec(
    contract=TABLES["warehouse.fct_orders"],
    select_sql=sql.FCT_ORDERS_SELECT,
    deps=[staging_key("orders"), FCT_ORDER_ITEMS.asset_key, DIM_CUSTOMER.asset_key],
    staged={"_stg_orders": "orders"},
    select_takes_range=True,
)
FCT_PAYMENTS = TableSpec(
    contract=TABLES["warehouse.fct_payments"],
    select_sql=sql.FCT_PAYMENTS_SELECT,
    # the orders come first: payments are checked against them (referential integrity)
    deps=[staging_key("payments"), FCT_ORDERS.asset_key],
    staged={"_stg_payments": "payments"},
)
FCT_SESSIONS = TableSpec(
    contract=TABLES["warehouse.fct_sessions"],
    select_sql=sql.FCT_SESSIONS_SELECT,
    deps=[staging_key("events")],
    staged={"_stg_events": "events"},
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
