"""The project's instance class records the same events as Dagster's stock storage.

It keeps one connection per recent shard and writes a step's batch of asset events in one
transaction; these tests run the same ranged materialization on a real instance with
batching on (the project default) and off (``DAGSTER_EVENT_BATCH_SIZE=0``, Dagster's own
event-by-event path) and compare what the instance then says.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from assets_pkg.instance import TEMPLATE
from assets_pkg.instance.storage import ProjectInstance, WalSqliteEventLogStorage

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-02-01")


@dg.asset(
    partitions_def=DAYS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[dg.AssetCheckSpec("rows_positive", asset="orders_by_day")],
)
def orders_by_day(context: dg.AssetExecutionContext):
    """One row per day (a stand-in for a ranged warehouse step)."""
    days = context.partition_keys
    yield dg.MaterializeResult(metadata={"days": len(days)})
    yield dg.AssetCheckResult(check_name="rows_positive", passed=True)


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run(), deps=[orders_by_day])
def sales_by_day(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """One row per day, downstream."""
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys)})


def _instance(home: Path, stock: bool = False) -> dg.DagsterInstance:
    home.mkdir()
    if stock:  # Dagster's own SQLite storage, as a dagster.yaml without instance_class gives
        (home / "dagster.yaml").write_text(f"storage:\n  sqlite:\n    base_dir: {home}\n")
    else:
        shutil.copyfile(TEMPLATE, home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


def _backfill(instance: dg.DagsterInstance, start: str, end: str) -> None:
    result = dg.materialize(
        [orders_by_day, sales_by_day],
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        },
    )
    assert result.success


def _what_the_instance_says(instance: dg.DagsterInstance) -> dict:
    said: dict = {}
    runs = [r.run_id for r in reversed(instance.get_runs())]  # oldest first
    for key in (orders_by_day.key, sales_by_day.key):
        entry = instance.get_asset_records([key])[0].asset_entry
        records = instance.fetch_materializations(key, limit=1000).records
        # the index shard's planned events, as the instance's deprecated
        # fetch_planned_materializations reads them
        planned = instance.event_log_storage.get_event_records(
            dg.EventRecordsFilter(dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, key),
            limit=1000,
        )
        latest = instance.get_latest_materialization_event(key)
        said[key.to_user_string()] = {
            "partitions": sorted(instance.get_materialized_partitions(key)),
            "materializations": sorted(
                (r.partition_key, r.asset_materialization.metadata["days"].value) for r in records
            ),
            "planned": sorted(r.partition_key for r in planned),
            "latest": latest.asset_materialization.partition if latest else None,
            "status": instance.get_status_by_partition(key, DAYS.get_partition_keys(), DAYS),
            # the asset-key table's row, written once per batch: which run it names
            "last_run": runs.index(entry.last_run_id),
            "last_materialization_run": runs.index(entry.last_materialization_record.run_id),
        }
    check = dg.AssetCheckKey(orders_by_day.key, "rows_positive")
    said["checks"] = [
        r.status.value
        for r in instance.event_log_storage.get_asset_check_execution_history(check, limit=1000)
    ]
    return said


def test_the_project_storage_reads_back_as_dagsters_own(tmp_path, monkeypatch):
    batches: list[int] = []
    store_batch = WalSqliteEventLogStorage.store_event_batch

    def counting(self, events):
        batches.append(len(events))
        return store_batch(self, events)

    monkeypatch.setattr(WalSqliteEventLogStorage, "store_event_batch", counting)

    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    said = {}
    for mode in ("stock", "batched"):
        batches.clear()
        with _instance(tmp_path / mode, stock=mode == "stock") as instance:
            assert isinstance(instance, ProjectInstance) == (mode == "batched")
            _backfill(instance, "2024-01-01", "2024-01-20")
            _backfill(instance, "2024-01-15", "2024-01-31")  # overlapping: later wins
            said[mode] = _what_the_instance_says(instance)
        if mode == "stock":
            assert batches == []
        else:
            # each run: its planned events in one batch, each ranged step's materializations
            assert max(batches) >= 2 * 20 and len(batches) >= 4

    assert said["batched"] == said["stock"]
    orders = said["batched"]["orders_by_day"]
    assert orders["partitions"] == DAYS.get_partition_keys()
    assert orders["latest"] == "2024-01-31"
    assert len(orders["materializations"]) == 20 + 17
    assert said["batched"]["checks"][0] == "SUCCEEDED"
    assert said["batched"]["checks"].count("PLANNED") >= 17  # one per planned partition


def test_another_process_reads_what_a_kept_connection_wrote(tmp_path):
    with _instance(tmp_path / "home") as instance:
        _backfill(instance, "2024-01-01", "2024-01-10")
        # the writer still holds its connections: another process must see every commit
        script = (
            "import sys, dagster as dg\n"
            "with dg.DagsterInstance.from_config(sys.argv[1]) as i:\n"
            "    print(len(i.get_materialized_partitions(dg.AssetKey(['sales_by_day']))))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / "home")],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        assert out.stdout.strip() == "10"
        _backfill(instance, "2024-01-11", "2024-01-12")
        assert len(instance.get_materialized_partitions(sales_by_day.key)) == 12


@pytest.mark.parametrize("size", ["1", "7"])
def test_small_batch_sizes_split_a_step_and_lose_nothing(tmp_path, monkeypatch, size):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", size)
    with _instance(tmp_path / "home") as instance:
        _backfill(instance, "2024-01-01", "2024-01-31")
        said = _what_the_instance_says(instance)
    assert said["sales_by_day"]["partitions"] == DAYS.get_partition_keys()
    assert said["sales_by_day"]["planned"] == DAYS.get_partition_keys()
