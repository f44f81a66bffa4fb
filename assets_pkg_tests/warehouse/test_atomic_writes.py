"""A partition write that fails halfway leaves the previous partition as it was, and the
run fails with a message that says why (real runs, real DuckDB and Parquet files)."""

from __future__ import annotations

import dataclasses
import errno

import dagster as dg
import pytest

from assets_pkg.cli.main import do_backfill, do_ingest
from assets_pkg.definitions import build_definitions
from assets_pkg.instance import ensure_instance
from assets_pkg.partitions import daily_partitions
from assets_pkg.resources import build_resources
from assets_pkg.resources.lake import LakeResource
from assets_pkg.warehouse.assets import FCT_ORDERS
from assets_pkg.warehouse.tables import build_table_asset
from assets_pkg_tests.conftest import land, read_table

DAY = "2024-03-02"
ORDERS = (
    "order_id,customer_id,order_ts,status,channel\n"
    "O1,C1,2024-03-02T10:00:00Z,placed,web\nO2,C1,2024-03-03T11:00:00Z,placed,web\n"
)


@pytest.fixture
def built(settings):
    land(settings, "orders", "orders_1.csv", ORDERS)
    do_ingest(settings)
    do_backfill(settings, settings.start_date, settings.end_date)
    return settings


def _broken_run(settings, **changes) -> dg.ExecuteInProcessResult:
    broken = build_table_asset(
        dataclasses.replace(FCT_ORDERS, **changes), daily_partitions(settings), "warehouse"
    )
    return dg.materialize(
        [broken],
        partition_key=DAY,
        resources=build_resources(settings),
        instance=ensure_instance(settings),
        raise_on_error=False,
    )


def _failure(result: dg.ExecuteInProcessResult) -> str:
    """The step failure's message and those of its causes."""
    (event,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    error, messages = event.event_specific_data.error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # the DELETE has run inside the transaction when the INSERT's query fails
        (
            {"select_sql": "SELECT * FROM (SELECT error('injected failure after the delete'))"},
            "injected failure after the delete",
        ),
        # a query whose columns do not match the table (INSERT ... BY NAME refuses it)
        ({"select_sql": "SELECT 'O9' AS order_id, 1 AS no_such_column"}, "no_such_column"),
    ],
)
def test_a_failed_slice_write_keeps_the_old_rows(built, changes, message):
    before = read_table(built, "warehouse.fct_orders")
    assert [r["order_id"] for r in before] == ["O1", "O2"]
    result = _broken_run(built, select_takes_range=False, **changes)
    assert not result.success
    text = _failure(result)
    assert message in text and "not retried" in text
    assert read_table(built, "warehouse.fct_orders") == before


def test_a_full_disk_during_a_lake_write_keeps_the_old_partition(built, monkeypatch):
    folder = built.data_dir / "lake" / "staging" / "stg_orders" / f"date={DAY}"
    (data,) = folder.glob("*.parquet")
    before = data.read_bytes()
    real_write = LakeResource.write

    def full_disk(self, df, *parts):
        if parts[:2] == ("staging", "stg_orders"):
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        return real_write(self, df, *parts)

    monkeypatch.setattr(LakeResource, "write", full_disk)
    job = build_definitions().resolve_job_def("daily_pipeline")
    result = job.execute_in_process(
        instance=ensure_instance(built), partition_key=DAY, raise_on_error=False
    )
    assert not result.success
    retries = [
        e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]
    assert len(retries) == 3, "ENOSPC may pass: retried, then failed"
    assert "No space left on device" in _failure(result)
    assert data.read_bytes() == before, "the previous partition is intact"

    monkeypatch.setattr(LakeResource, "write", real_write)
    assert job.execute_in_process(instance=ensure_instance(built), partition_key=DAY).success
    assert data.read_bytes() == before  # same data, same file
