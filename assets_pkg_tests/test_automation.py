"""Automation on a real instance: late data and new product versions reach exactly the
days they touch, and running what was requested gives the tables a full rebuild gives."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from assets_pkg.cli.main import do_backfill, do_ingest
from assets_pkg.definitions import build_definitions
from assets_pkg.instance import ensure_instance
from assets_pkg.resources import build_resources
from assets_pkg.sensors import dimension_change_sensor
from assets_pkg_tests.conftest import TABLE_KEYS, land, read_table, use_temp_platform

START, END = dt.date(2024, 3, 1), dt.date(2024, 3, 5)
DAYS = [(START + dt.timedelta(days=i)).isoformat() for i in range(5)]
DIMENSIONS = {"stg_customers", "stg_products", "dim_customer", "dim_product"}

PRODUCTS_HEADER = "product_id,name,category,list_price,unit_cost,updated_at\n"
BASE = {
    ("products", "products_1.csv"): PRODUCTS_HEADER
    + "P1,Lamp,Home,20.00,4.00,2024-01-01T00:00:00Z\nP2,Kite,Toys,8.00,3.00,2024-01-01T00:00:00Z\n",
    ("customers", "customers_1.csv"): "customer_id,email,status,country,signup_ts,updated_at\n"
    "C1,a@example.com,active,US,2023-01-01T00:00:00Z,2024-01-01T00:00:00Z\n",
    ("orders", "orders_1.csv"): "order_id,customer_id,order_ts,status,channel\n"
    + "".join(f"O{d},C1,2024-03-0{d}T10:00:00Z,placed,web\n" for d in range(1, 6)),
    ("order_items", "order_items_1.csv"): "order_id,line_number,product_id,quantity,unit_price\n"
    + "".join(f"O{d},1,P1,2,20.00\nO{d},2,P2,1,8.00\n" for d in range(1, 6)),
}


@pytest.fixture
def platform(tmp_path, monkeypatch):
    settings = use_temp_platform(tmp_path, monkeypatch, start=START, end=END)
    for (source, name), text in BASE.items():
        land(settings, source, name, text)
    do_ingest(settings)
    do_backfill(settings, START, END)
    instance = ensure_instance(settings)
    return settings, instance, build_definitions()


def _requested(defs, instance, cursor):
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    requested = {}
    for res in result.results:
        if result.get_num_requested(res.key):
            name = res.key.path[-1]
            requested[name] = (
                "whole" if name in DIMENSIONS else sorted(result.get_requested_partitions(res.key))
            )
    return requested, result.cursor


def _run(defs, instance, names, **kwargs):
    keys = [k for k in defs.resolve_all_asset_keys() if k.path[-1] in names]
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance, asset_selection=keys, **kwargs).success


def _snapshot(settings):
    return {table: read_table(settings, table) for table in TABLE_KEYS}


def test_late_data_for_an_old_day_flows_to_that_day_only(platform):
    settings, instance, defs = platform
    requested, cursor = _requested(defs, instance, None)
    assert requested == {}, "a settled platform asks for nothing"
    land(
        settings,
        "orders",
        "orders_2.csv",
        "order_id,customer_id,order_ts,status,channel\nO2,C1,2024-03-02T10:00:00Z,shipped,web\n",
    )
    do_ingest(settings)
    requested, cursor = _requested(defs, instance, cursor)
    assert requested == {
        "stg_orders": ["2024-03-02"],
        "fct_order_items": ["2024-03-02"],
        "fct_orders": ["2024-03-02"],
        "daily_sales": ["2024-03-02"],
        "daily_sales_by_category": ["2024-03-02"],
        # payments are checked against their orders (referential integrity)
        "fct_payments": ["2024-03-02"],
        "daily_payments": ["2024-03-02"],
    }
    _run(defs, instance, set(requested), partition_key="2024-03-02")
    assert _requested(defs, instance, cursor)[0] == {}
    statuses = {r["order_id"]: r["status"] for r in read_table(settings, "warehouse.fct_orders")}
    assert statuses["O2"] == "shipped"


def test_a_new_product_version_reruns_the_days_from_its_valid_from(platform, tmp_path, monkeypatch):
    settings, instance, defs = platform
    _, cursor = _requested(defs, instance, None)
    sensor_context = dg.build_sensor_context(
        instance=instance,
        resources={"platform": build_resources(settings)["platform"]},
        definitions=defs,
    )
    # the backfill built dim_product after the facts' inputs: nothing is stale yet
    settled = dimension_change_sensor(sensor_context)
    assert not settled.run_requests
    sensor_context.update_cursor(settled.cursor)

    land(
        settings,
        "products",
        "products_2.csv",
        PRODUCTS_HEADER + "P1,Lamp,Lighting,22.00,5.00,2024-03-03T12:00:00Z\n",
    )
    do_ingest(settings)
    requested, cursor = _requested(defs, instance, cursor)
    # automation rebuilds the dimension, but does not follow it into every day of the facts
    assert requested == {"stg_products": "whole", "dim_product": "whole"}
    _run(defs, instance, set(requested))

    result = dimension_change_sensor(sensor_context)
    (request,) = result.run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2024-03-03"
    assert request.tags["dagster/asset_partition_range_end"] == "2024-03-05"
    assert sorted(k.path[-1] for k in request.asset_selection) == [
        "daily_sales",
        "daily_sales_by_category",
        "fct_order_items",
        "fct_orders",
    ]
    job = defs.resolve_job_def("daily_pipeline")
    assert job.execute_in_process(
        instance=instance, asset_selection=request.asset_selection, tags=request.tags
    ).success
    sensor_context.update_cursor(result.cursor)
    assert not dimension_change_sensor(sensor_context).run_requests

    categories = {
        (r["date"].isoformat(), r["product_category"])
        for r in read_table(settings, "marts.daily_sales_by_category")
    }
    # the 03-03 order (10:00) predates the new version (12:00); 03-04 and 03-05 take it
    assert {("2024-03-03", "Home"), ("2024-03-04", "Lighting")} <= categories
    assert ("2024-03-04", "Home") not in categories
    incremental = _snapshot(settings)

    # the same files through a fresh platform and one full backfill give the same tables
    fresh = use_temp_platform(tmp_path / "fresh", monkeypatch, START, END)
    for (source, name), text in BASE.items():
        land(fresh, source, name, text)
    land(
        fresh,
        "products",
        "products_2.csv",
        PRODUCTS_HEADER + "P1,Lamp,Lighting,22.00,5.00,2024-03-03T12:00:00Z\n",
    )
    do_ingest(fresh)
    do_backfill(fresh, START, END)
    assert _snapshot(fresh) == incremental
