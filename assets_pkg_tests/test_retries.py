"""Storage steps retry what can pass and fail at once on what cannot (real runs, real files)."""

from __future__ import annotations

import errno
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from assets_pkg.cli.main import do_ingest
from assets_pkg.definitions import build_definitions
from assets_pkg.instance import ensure_instance
from assets_pkg.resources.lake import LakeResource
from assets_pkg_tests.conftest import land, read_table

DAY = "2024-03-02"
ORDERS = (
    "order_id,customer_id,order_ts,status,channel\n"
    "O1,C1,2024-03-02T10:00:00Z,placed,web\nO2,C1,2024-03-02T11:00:00Z,placed,web\n"
)


@pytest.fixture
def landed(settings):
    land(settings, "orders", "orders_1.csv", ORDERS)
    do_ingest(settings)
    return settings


def _run(settings, **kwargs) -> dg.ExecuteInProcessResult:
    defs = build_definitions()
    job = defs.resolve_job_def("daily_pipeline")
    instance = ensure_instance(settings)
    return job.execute_in_process(
        instance=instance, partition_key=DAY, raise_on_error=False, **kwargs
    )


def _events(result: dg.ExecuteInProcessResult, kind: dg.DagsterEventType) -> list:
    return [e for e in result.all_events if e.event_type == kind]


def test_a_flaky_lake_write_is_retried_and_the_run_succeeds(landed, monkeypatch):
    real_write = LakeResource.write
    failures = []

    def flaky(self, df, *parts):
        if parts[:2] == ("staging", "stg_orders") and not failures:
            failures.append(parts)
            raise OSError(errno.EIO, "Input/output error (injected)")
        return real_write(self, df, *parts)

    monkeypatch.setattr(LakeResource, "write", flaky)
    result = _run(landed)
    assert result.success
    retried = _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert [e.step_key for e in retried] == ["staging__stg_orders"]
    assert failures, "the fault was injected"
    assert [r["order_id"] for r in read_table(landed, "warehouse.fct_orders")] == ["O1", "O2"]


def test_a_warehouse_held_by_another_process_is_waited_for(landed):
    # another process keeps the DuckDB file open for writing for a few seconds
    landed.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('held', flush=True); time.sleep(4); c.close()",
            str(landed.warehouse_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        result = _run(landed)
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=30)
    assert result.success
    assert waited > 1.0, "the run did meet the lock"
    messages = [
        str(e.event_specific_data.error) for e in _events(result, dg.DagsterEventType.STEP_FAILURE)
    ]
    assert messages == []
    assert not _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)


def test_a_corrupt_lake_file_fails_at_once_with_a_clear_message(landed):
    (lake_file,) = (Path(landed.lake_url) / "lake" / "orders").rglob("*.parquet")
    lake_file.write_bytes(b"not a parquet file")
    result = _run(landed)
    assert not result.success
    assert not _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY), "no retries"
    (failure,) = _events(result, dg.DagsterEventType.STEP_FAILURE)
    assert failure.step_key == "staging__stg_orders"
    error = failure.event_specific_data.error
    assert "ComputeError" in error.message and "not retried" in error.message
