"""Marts: daily business tables over the warehouse facts, in DuckDB schema ``marts``."""

from __future__ import annotations

import dagster as dg

from assets_pkg.marts import sql
from assets_pkg.warehouse.assets import FCT_ORDER_ITEMS, FCT_ORDERS, FCT_PAYMENTS, FCT_SESSIONS
from assets_pkg.warehouse.tables import TableSpec, build_table_assets

DAILY_SALES = TableSpec(
    table="marts.daily_sales",
    ddl=sql.DAILY_SALES_DDL,
    select_sql=sql.DAILY_SALES_SELECT,
    key=["order_date"],
    date_column="order_date",
    description="One row per order date: revenue, cost and margin of the day's sales.",
    deps=[FCT_ORDERS.asset_key],
    select_takes_range=True,
    setup_sql=(sql.EXACT_DIV_MACRO,),
    column_descriptions={"profit_margin": "gross_profit / revenue, NULL when revenue is 0"},
)
DAILY_SALES_BY_CATEGORY = TableSpec(
    table="marts.daily_sales_by_category",
    ddl=sql.DAILY_SALES_BY_CATEGORY_DDL,
    select_sql=sql.DAILY_SALES_BY_CATEGORY_SELECT,
    key=["date", "product_category"],
    not_null=["date"],
    date_column="date",
    description="One row per (date, product category): sales and orders in that category.",
    deps=[FCT_ORDER_ITEMS.asset_key, FCT_ORDERS.asset_key],
    select_takes_range=True,
    setup_sql=(sql.EXACT_DIV_MACRO,),
    column_descriptions={"avg_order_value": "total_sales / order_count"},
    realtime_table="marts.realtime_sales_by_category",
)
DAILY_PAYMENTS = TableSpec(
    table="marts.daily_payments",
    ddl=sql.DAILY_PAYMENTS_DDL,
    select_sql=sql.DAILY_PAYMENTS_SELECT,
    key=["paid_date", "method"],
    not_null=["paid_date"],
    date_column="paid_date",
    description="One row per (paid date, method): settled and refunded amounts.",
    deps=[FCT_PAYMENTS.asset_key],
    select_takes_range=True,
)
DAILY_FUNNEL = TableSpec(
    table="marts.daily_funnel",
    ddl=sql.DAILY_FUNNEL_DDL,
    select_sql=sql.DAILY_FUNNEL_SELECT,
    key=["date"],
    date_column="date",
    description="One row per event date: sessions reaching each funnel step, and conversion.",
    deps=[FCT_SESSIONS.asset_key],
    select_takes_range=True,
    setup_sql=(sql.EXACT_DIV_MACRO,),
    column_descriptions={"conversion_rate": "sessions with a purchase / sessions"},
    realtime_table="marts.realtime_funnel",
)

MART_TABLES = [DAILY_SALES, DAILY_SALES_BY_CATEGORY, DAILY_PAYMENTS, DAILY_FUNNEL]


def build_mart_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return build_table_assets(MART_TABLES, partitions_def, "marts")
