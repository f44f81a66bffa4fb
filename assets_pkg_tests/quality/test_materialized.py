"""Quality checks through real materializations: generated sample, temp DuckDB and instance.

- a healthy sample passes every check of every staging, warehouse and mart asset;
- a day whose orders are cut to half fails ``fct_orders__drift`` with a WARN (published);
- a bad value in staging (a bug upstream) fails validity and completeness of ``fct_orders``
  with an ERROR, and that day is held back: the warehouse keeps its previous rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets_pkg.cli.main import do_ingest
from assets_pkg.config import Settings
from assets_pkg.instance import ensure_instance
from assets_pkg.marts.assets import build_mart_assets
from assets_pkg.partitions import daily_partitions, range_tags
from assets_pkg.resources import build_resources
from assets_pkg.sample.generator import generate
from assets_pkg.staging.assets import build_staging_assets
from assets_pkg.warehouse.assets import build_warehouse_assets
from assets_pkg_tests.conftest import read_table, use_temp_platform

START = dt.date(2024, 3, 1)
END = dt.date(2024, 3, 14)
#: ~90 orders a day: enough for a halved day to stand out from day-to-day noise
SCALE = 0.3
HALF_DAY = dt.date(2024, 3, 13)
BAD_DAY = dt.date(2024, 3, 10)


def _assets(settings: Settings) -> list[dg.AssetsDefinition]:
    partitions = daily_partitions(settings)
    return [
        *build_staging_assets(partitions),
        *build_warehouse_assets(partitions),
        *build_mart_assets(partitions),
    ]


def _run(
    settings: Settings, start: dt.date, end: dt.date, selection: list[str] | None = None
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        _assets(settings),
        selection=selection,
        resources=build_resources(settings),
        instance=ensure_instance(settings),
        tags=range_tags(start, end),
        raise_on_error=False,
    )


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    found = {}
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            found[f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"] = evaluation
    return found


def materialization(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict:
    """The metadata of the step's materialization (one event per day, the same metadata)."""
    events = result.asset_materializations_for_node(key.to_python_identifier())
    assert events, f"{key.to_user_string()} was not materialized"
    return events[0].metadata


def _staging_file(settings: Settings, source: str, day: dt.date) -> Path:
    (path,) = (settings.data_dir / "lake" / "staging" / f"stg_{source}" / f"date={day}").glob(
        "*.parquet"
    )
    return path


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[tuple[Settings, dg.ExecuteInProcessResult]]:
    root = tmp_path_factory.mktemp("quality")
    with pytest.MonkeyPatch.context() as mp:
        settings = use_temp_platform(root, mp, START, END)
        days = (END - START).days + 1
        generate(settings.landing_dir, start=START, days=days, seed=11, scale=SCALE)
        do_ingest(settings)
        healthy = _run(settings, START, END)
        yield settings, healthy


def test_a_healthy_sample_passes_every_quality_check(platform):
    _, result = platform
    assert result.success
    found = evaluations(result)
    failed = {name: (e.severity, e.description) for name, e in found.items() if not e.passed}
    assert failed == {}
    # every layer's quality rules ran, day by day
    names = set(found)
    for check in (
        "staging/stg_orders:stg_orders__reject_rate",
        "staging/stg_customers:stg_customers__validity",
        "warehouse/fct_orders:fct_orders__drift",
        "warehouse/fct_payments:fct_payments__drift",
        "warehouse/fct_payments:fct_payments__referential_integrity",
        "warehouse/fct_order_items:fct_order_items__reconciliation",
        "marts/daily_sales:daily_sales__reconciliation",
        "marts/daily_funnel:daily_funnel__validity",
    ):
        assert check in names
    drift = found["warehouse/fct_orders:fct_orders__drift"].metadata["day_results"].value
    assert len(drift) == (END - START).days + 1
    assert drift[START.isoformat()]["message"] == "not enough history (0 of 7 days)"
    assert drift[END.isoformat()] == {"passed": True, "severity": "WARN", "message": "passed"}
    for key in (("warehouse", "fct_orders"), ("marts", "daily_sales")):
        assert "held_back_days" not in materialization(result, dg.AssetKey(key))


def test_a_day_with_half_the_orders_fails_drift_with_a_warning(platform):
    settings, _ = platform
    orders_file = _staging_file(settings, "orders", HALF_DAY)
    orders = pl.read_parquet(orders_file).sort("order_id")
    kept = orders.gather_every(2)
    kept.write_parquet(orders_file)
    items_file = _staging_file(settings, "order_items", HALF_DAY)
    items = pl.read_parquet(items_file)
    items.filter(pl.col("order_id").is_in(kept["order_id"].implode())).write_parquet(items_file)
    before = {r["order_date"] for r in read_table(settings, "warehouse.fct_orders")}
    assert HALF_DAY in before

    first = HALF_DAY - dt.timedelta(days=2)
    result = _run(settings, first, HALF_DAY, ["warehouse/fct_order_items", "warehouse/fct_orders"])

    assert result.success
    found = evaluations(result)
    drift = found["warehouse/fct_orders:fct_orders__drift"]
    assert not drift.passed and drift.severity == dg.AssetCheckSeverity.WARN
    days = drift.metadata["day_results"].value
    assert (
        days[first.isoformat()]["passed"]
        and days[(HALF_DAY - dt.timedelta(1)).isoformat()]["passed"]
    )
    message = days[HALF_DAY.isoformat()]["message"]
    assert (
        days[HALF_DAY.isoformat()]["severity"] == "WARN"
        and not days[HALF_DAY.isoformat()]["passed"]
    )
    assert message.startswith(f"{kept.height} rows vs ") and " usual (-" in message, message
    metrics = drift.metadata["failed_day_metrics"].value[HALF_DAY.isoformat()]
    assert metrics["rows"] == kept.height
    assert metrics["usual_rows"] > 1.6 * kept.height
    assert metrics["z"] <= -3
    assert drift.description == f"{HALF_DAY}: {message}"
    assert drift.metadata["days_failed"].value == 1
    # the other checks of the step pass: the smaller day is consistent, and published
    failed = sorted(name for name, e in found.items() if not e.passed)
    assert "warehouse/fct_orders:fct_orders__drift" in failed
    assert all(name.endswith("__drift") for name in failed), failed
    assert "held_back_days" not in materialization(result, dg.AssetKey(["warehouse", "fct_orders"]))
    published = [
        r for r in read_table(settings, "warehouse.fct_orders") if r["order_date"] == HALF_DAY
    ]
    assert len(published) == kept.height


def test_a_bad_staging_value_fails_the_warehouse_check_and_holds_the_day_back(platform):
    settings, _ = platform
    before = read_table(settings, "warehouse.fct_orders")
    before_day = [r for r in before if r["order_date"] == BAD_DAY]
    assert before_day
    path = _staging_file(settings, "orders", BAD_DAY)
    orders = pl.read_parquet(path).sort("order_id")
    bad_status, no_customer = orders["order_id"][0], orders["order_id"][1]
    # a bug upstream: staging published a status outside the contract and a NULL customer
    orders.with_columns(
        status=pl.when(pl.col("order_id") == bad_status)
        .then(pl.lit("lost"))
        .otherwise(pl.col("status")),
        customer_id=pl.when(pl.col("order_id") == no_customer)
        .then(None)
        .otherwise(pl.col("customer_id")),
    ).write_parquet(path)

    result = _run(settings, BAD_DAY - dt.timedelta(days=1), BAD_DAY, ["warehouse/fct_orders"])

    found = evaluations(result)
    validity = found["warehouse/fct_orders:fct_orders__validity"]
    assert not validity.passed and validity.severity == dg.AssetCheckSeverity.ERROR
    assert validity.description == (
        f"{BAD_DAY}: 1 status value(s) not one of placed, shipped, delivered, cancelled, returned"
    )
    assert validity.metadata["failed_day_metrics"].value == {
        BAD_DAY.isoformat(): {"rows": orders.height, "invalid": {"status": 1}}
    }
    completeness = found["warehouse/fct_orders:fct_orders__completeness"]
    assert not completeness.passed and completeness.severity == dg.AssetCheckSeverity.ERROR
    share = (orders.height - 1) / orders.height
    assert completeness.description == f"{BAD_DAY}: customer_id {share:.1%} non-NULL < 100%"
    days = completeness.metadata["day_results"].value
    assert days[(BAD_DAY - dt.timedelta(days=1)).isoformat()]["passed"]
    # write, check, publish: the failing day is held back, the day before is published
    metadata = materialization(result, dg.AssetKey(["warehouse", "fct_orders"]))
    assert metadata["held_back_days"].value == [BAD_DAY.isoformat()]
    after = read_table(settings, "warehouse.fct_orders")
    assert [r for r in after if r["order_date"] == BAD_DAY] == before_day
    assert {r["status"] for r in after} <= {
        "placed",
        "shipped",
        "delivered",
        "cancelled",
        "returned",
    }
    assert after == before
