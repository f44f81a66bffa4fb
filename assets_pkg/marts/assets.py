"""Marts: daily business tables over the warehouse facts, in DuckDB schema ``marts``."""

from __future__ import annotations

import dagster as dg

from assets_pkg.contracts import TABLES
from assets_pkg.marts import sql
from assets_pkg.warehouse.assets import FCT_ORDER_ITEMS, FCT_ORDERS, FCT_PAYMENTS, FCT_SESSIONS
from assets_pkg.warehouse.tables import TableSpec, build_table_assets

DAILY_SALES = TableSpec(
    contract=TABLES["marts.daily_sales"],
    select_sql=sql.DAILY_SALES_SELECT,
    deps=[FCT_ORDERS.asset_key],
    select_takes_range=True,
    setup_sql=(sql.EXACT_DIV_MACRO,),
)
DAILY_SALES_BY_CATEGORY = TableSpec(
    contract=TABLES["marts.daily_sales_by_category"],
    select_sql=sql.DAILY_SALES_BY_CATEGORY_SELECT,
    deps=[FCT_ORDER_ITEMS.asset_key, FCT_ORDERS.asset_key],
    select_takes_range=True,
    setup_sql=(sql.EXACT_DIV_MACRO,),
    realtime_table="marts.realtime_sales_by_category",
)
DAILY_PAYMENTS = TableSpec(
    contract=TABLES["marts.daily_payments"],
    select_sql=sql.DAILY_PAYMENTS_SELECT,
    deps=[FCT_PAYMENTS.asset_key],
    select_takes_range=True,
)
DAILY_FUNNEL = TableSpec(
    contract=TABLES["marts.daily_funnel"],
    select_sql=sql.DAILY_FUNNEL_SELECT,
    deps=[FCT_SESSIONS.asset_key],
    select_takes_range=True,
    setup_sql=(sql.EXACT_DIV_MACRO,),
    realtime_table="marts.realtime_funnel",
)

MART_TABLES = [DAILY_SALES, DAILY_SALES_BY_CATEGORY, DAILY_PAYMENTS, DAILY_FUNNEL]


def build_mart_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return build_table_assets(MART_TABLES, partitions_def, "marts")
