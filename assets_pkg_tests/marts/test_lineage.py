"""The marts' column lineage: complete, pointing at real upstream columns, and loaded.

The lineage is declared by hand from the mart SQL, so these tests guard what a reader of
the lineage view relies on: every mart column has its sources, each source is a column of
a table the mart really reads, and the definitions carry it (with the contract's column
schema and the marts' freshness policy) to the UI.
"""

from __future__ import annotations

import re

import dagster as dg
import pytest

from assets_pkg.contracts import TABLES
from assets_pkg.definitions import build_definitions
from assets_pkg.marts.assets import MART_TABLES
from assets_pkg.marts.lineage import MARTS_FRESHNESS, mart_column_lineage
from assets_pkg.warehouse.tables import TableSpec

MART_IDS = [m.table for m in MART_TABLES]


def _table(key: dg.AssetKey) -> str:
    return ".".join(key.path)


def _deps(table: str, column: str) -> set[str]:
    """The lineage of one mart column as ``schema.table.column`` strings."""
    lineage = mart_column_lineage(table)
    assert lineage is not None, table
    return {f"{_table(d.asset_key)}.{d.column_name}" for d in lineage.deps_by_column[column]}


def test_the_four_marts_are_covered():
    assert set(MART_IDS) == {t for t in TABLES if t.startswith("marts.daily_")}


@pytest.mark.parametrize("mart", MART_TABLES, ids=MART_IDS)
def test_every_mart_column_has_lineage(mart: TableSpec):
    lineage = mart_column_lineage(mart.table)
    assert lineage is not None
    assert set(lineage.deps_by_column) == set(mart.contract.column_names)
    for column, deps in lineage.deps_by_column.items():
        assert deps, f"{mart.table}.{column} has no upstream column"


@pytest.mark.parametrize("mart", MART_TABLES, ids=MART_IDS)
def test_every_dep_is_a_column_of_an_upstream_of_the_mart(mart: TableSpec):
    lineage = mart_column_lineage(mart.table)
    assert lineage is not None
    upstream = {_table(key) for key in mart.deps}
    used = set()
    for column, deps in lineage.deps_by_column.items():
        for dep in deps:
            table = _table(dep.asset_key)
            assert table in upstream, f"{mart.table}.{column}: {table} is not a dep of the mart"
            assert dep.column_name in TABLES[table].column_names, (
                f"{mart.table}.{column}: {table} has no column {dep.column_name}"
            )
            # a dep the SQL never mentions would be invented lineage (a count(*) counts
            # the rows, so it depends on their key, which the SQL need not name)
            mentioned = re.search(rf"\b{dep.column_name}\b", mart.select_sql)
            assert mentioned or dep.column_name in TABLES[table].key, (
                f"{mart.table}.{column}: {dep.column_name} is not in the SQL"
            )
            used.add(table)
    # and no upstream of the mart goes unexplained
    assert used == upstream


def test_no_lineage_for_tables_other_than_marts():
    assert mart_column_lineage("warehouse.fct_orders") is None
    assert mart_column_lineage("marts.realtime_funnel") is None


def test_daily_sales_figures_come_from_the_orders_sold_that_day():
    revenue = _deps("marts.daily_sales", "revenue")
    assert "warehouse.fct_orders.revenue" in revenue
    assert "warehouse.fct_orders.cost" not in revenue
    # which orders are sales, and of which day, decides every figure
    sale_rows = {
        "warehouse.fct_orders.status",
        "warehouse.fct_orders.item_count",
        "warehouse.fct_orders.order_date",
    }
    for column in ("revenue", "cost", "gross_profit", "profit_margin", "order_count"):
        assert sale_rows <= _deps("marts.daily_sales", column), column
    assert {"warehouse.fct_orders.revenue", "warehouse.fct_orders.cost"} <= _deps(
        "marts.daily_sales", "profit_margin"
    )


def test_sales_by_category_reads_lines_filtered_by_their_order():
    total = _deps("marts.daily_sales_by_category", "total_sales")
    assert "warehouse.fct_order_items.line_revenue" in total
    assert "warehouse.fct_order_items.product_category" in total
    # the sale filter lives on the order header, reached through the join
    assert {"warehouse.fct_orders.status", "warehouse.fct_orders.item_count"} <= total
    assert "warehouse.fct_orders.revenue" not in total
    assert "warehouse.fct_order_items.order_id" in _deps(
        "marts.daily_sales_by_category", "order_count"
    )


def test_payments_split_amounts_by_status_and_funnel_counts_sessions():
    for column in ("settled_amount", "refunded_amount"):
        assert {"warehouse.fct_payments.amount", "warehouse.fct_payments.status"} <= _deps(
            "marts.daily_payments", column
        )
    assert "warehouse.fct_payments.method" in _deps("marts.daily_payments", "method")
    conversion = _deps("marts.daily_funnel", "conversion_rate")
    assert {"warehouse.fct_sessions.purchases", "warehouse.fct_sessions.session_id"} <= conversion
    assert "warehouse.fct_sessions.checkouts" not in conversion


def test_definitions_carry_lineage_schema_and_freshness_to_the_marts(settings):
    specs = {spec.key: spec for spec in build_definitions().resolve_all_asset_specs()}
    for mart in MART_TABLES:
        spec = specs[mart.asset_key]
        name = mart.table
        lineage = spec.metadata.get("dagster/column_lineage")
        assert isinstance(lineage, dg.TableColumnLineage), name
        assert set(lineage.deps_by_column) == set(mart.contract.column_names), name
        # the deps point at the keys of assets the definitions hold
        for deps in lineage.deps_by_column.values():
            assert all(d.asset_key in specs for d in deps), name
        schema = spec.metadata.get("dagster/column_schema")
        assert isinstance(schema, dg.TableSchema), name
        assert [c.name for c in schema.columns] == mart.contract.column_names, name
        assert spec.freshness_policy == MARTS_FRESHNESS, name
    # warehouse tables are not declared with lineage (their SQL reads staging Parquet)
    fct_orders = specs[dg.AssetKey(["warehouse", "fct_orders"])]
    assert "dagster/column_lineage" not in fct_orders.metadata


def test_mart_column_schema_shows_the_contract_rules(settings):
    specs = {spec.key: spec for spec in build_definitions().resolve_all_asset_specs()}

    def constraints(table: str, column: str) -> dg.TableColumnConstraints:
        schema = specs[dg.AssetKey(table.split("."))].metadata["dagster/column_schema"]
        return next(c for c in schema.columns if c.name == column).constraints

    # NOT NULL columns are non-nullable; a nullable one (unknown products) stays nullable
    assert constraints("marts.daily_sales", "revenue").nullable is False
    assert constraints("marts.daily_sales", "profit_margin").nullable is True
    assert constraints("marts.daily_sales_by_category", "product_category").nullable is True
    # the single-column key is unique; rules read as text
    assert constraints("marts.daily_sales", "order_date").unique is True
    assert ">= 0" in constraints("marts.daily_sales", "revenue").other
    method = constraints("marts.daily_payments", "method").other
    assert any(o.startswith("one of ") and "card" in o for o in method), method
    category = constraints("marts.daily_sales_by_category", "product_category").other
    assert "part of the key (date, product_category)" in category
