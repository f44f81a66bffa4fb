"""Generated data through two ingest passes and a backfill, on a real instance and DuckDB file.

- the warehouse equals the independent reference model, table by table, and so do rejects;
- running the same backfill again leaves every table's content hash unchanged;
- a backfill killed with SIGKILL mid-run, then run again, ends in the clean state;
- the Dagster CLI's ``--partition-range`` path works on the same definitions.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets_pkg.cli.main import do_backfill, do_ingest
from assets_pkg.sample.generator import generate
from assets_pkg_tests.conftest import (
    END,
    START,
    TABLE_KEYS,
    read_table,
    sort_rows,
    use_temp_platform,
    wait_for_run_start,
)
from assets_pkg_tests.oracle import Oracle

SCALE = 0.05
LATE_ORDER_DAYS = ("2024-03-09", "2024-03-10")


def _landing_files(landing: Path) -> dict[str, dict[str, bytes]]:
    return {
        folder.name: {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        for folder in sorted(landing.iterdir())
        if folder.is_dir()
    }


def _split_passes(landing: Path, holding: Path) -> tuple[dict, dict]:
    """Hold back the last days' orders: their items are orphans until pass 2."""
    everything = _landing_files(landing)
    held = {
        name for name in everything.get("orders", {}) if any(day in name for day in LATE_ORDER_DAYS)
    }
    holding.mkdir(parents=True, exist_ok=True)
    for name in held:
        os.replace(landing / "orders" / name, holding / name)
    first = {
        s: {n: c for n, c in files.items() if n not in held or s != "orders"}
        for s, files in everything.items()
    }
    second = {"orders": {n: everything["orders"][n] for n in held}}
    return first, second


def table_hashes(settings) -> dict[str, str]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return {
            table: conn.execute(
                f"SELECT count(*) || ':' || coalesce(md5(string_agg(t::VARCHAR, '|' "
                f"ORDER BY t::VARCHAR)), '') FROM {table} t"
            ).fetchall()[0][0]
            for table in TABLE_KEYS
        } | {
            "quarantine.rejects": conn.execute(
                "SELECT count(*) || ':' || md5(string_agg(concat_ws('/', source, file_name, "
                "row_number, reason, partition_date, resolved_at IS NULL), '|' ORDER BY ALL)) "
                "FROM quarantine.rejects"
            ).fetchall()[0][0]
        }


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    with pytest.MonkeyPatch.context() as mp:
        settings = use_temp_platform(root, mp)
        days = (END - START).days + 1
        generate(settings.landing_dir, start=START, days=days, seed=11, scale=SCALE)
        first, second = _split_passes(settings.landing_dir, root / "held")
        do_ingest(settings)
        for name in second["orders"]:
            os.replace(root / "held" / name, settings.landing_dir / "orders" / name)
        do_ingest(settings)
        do_backfill(settings, START, END)
        oracle = Oracle(START, END)
        oracle.ingest_pass(first)
        oracle.ingest_pass(second)
        yield settings, oracle, root


@pytest.mark.parametrize("table", list(TABLE_KEYS))
def test_warehouse_equals_reference_model(pipeline, table):
    settings, oracle, _ = pipeline
    expected = oracle.tables()[table]
    assert expected, f"the sample should produce rows for {table}"
    actual = read_table(settings, table, list(expected[0]))
    assert actual == sort_rows(expected, TABLE_KEYS[table])


def test_rejects_equal_reference_model(pipeline):
    settings, oracle, _ = pipeline
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        rel = conn.sql(
            "SELECT source, file_name, row_number, reason, partition_date, "
            "resolved_at IS NOT NULL AS resolved FROM quarantine.rejects"
        )
        actual = [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]
    cols = ["source", "file_name", "row_number", "reason", "partition_date", "resolved"]
    expected = [{c: r[c] for c in cols} for r in oracle.rejects()]
    key = ["source", "file_name", "row_number"]
    assert sort_rows(actual, key) == sort_rows(expected, key)
    reasons = {r["reason"] for r in actual}
    assert {"orphan_order_item", "bad_timestamp", "missing_required"} <= reasons
    assert any(r["resolved"] for r in actual if r["reason"] == "orphan_order_item")


def test_quarantined_files_have_reasons(pipeline):
    settings, oracle, _ = pipeline
    notes = sorted(settings.quarantine_dir.glob("*/*.error.json"))
    assert len(notes) == len(oracle.quarantined) >= 2


def test_backfill_twice_leaves_tables_identical(pipeline):
    settings, _, _ = pipeline
    before = table_hashes(settings)
    do_backfill(settings, START, END)
    assert table_hashes(settings) == before


def _cli_env(settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ASSETS_PKG_DATA_DIR=str(settings.data_dir),
        ASSETS_PKG_START_DATE=START.isoformat(),
        ASSETS_PKG_END_DATE=END.isoformat(),
        DAGSTER_HOME=os.environ["DAGSTER_HOME"],
    )
    return env


def test_killed_backfill_rerun_ends_in_clean_state(pipeline, tmp_path):
    settings, _, _ = pipeline
    clean = table_hashes(settings)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", os.environ["DAGSTER_HOME"])
        env = _cli_env(settings)
        instance = dg.DagsterInstance.get()
        backfill = [
            sys.executable, "-m", "assets_pkg.cli.main", "backfill",
            "--start", START.isoformat(), "--end", END.isoformat(),
        ]  # fmt: skip
        for delay in (0.0, 0.7, 1.5):
            proc = subprocess.Popen(
                backfill,
                env=env,
                cwd=tmp_path,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            # kill once its run has started (then a little later each time), so every
            # kill lands mid-run however slow the interpreter is to start
            assert wait_for_run_start(instance, proc), "the backfill ended before its run"
            time.sleep(delay)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        rerun = subprocess.run(
            backfill, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
    assert rerun.returncode == 0, rerun.stderr
    assert table_hashes(settings) == clean
    # at least one kill landed mid-run: that run was left STARTED and has been reaped
    assert "its process is gone" in rerun.stderr


def test_dagster_cli_partition_range(pipeline, tmp_path):
    settings, _, _ = pipeline
    clean = table_hashes(settings)
    result = subprocess.run(
        [
            "dagster",
            "asset",
            "materialize",
            "-m",
            "assets_pkg.definitions",
            "--select",
            "group:staging or group:warehouse or group:marts",
            "--partition-range",
            f"{START.isoformat()}...{END.isoformat()}",
        ],
        env=_cli_env(settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RUN_SUCCESS" in result.stderr + result.stdout
    assert table_hashes(settings) == clean


def test_a_ranged_run_records_schemas_profile_and_preview_once_on_its_last_day(pipeline):
    """Each day's materialization has its row count; the kilobytes that are the same for
    every day sit on the last one, the asset's latest, which the UI and the schema-change
    check read."""
    from assets_pkg.metadata import HEAVY_ENTRIES

    instance = dg.DagsterInstance.get()
    for key, heavy in (
        (dg.AssetKey(["staging", "stg_orders"]), HEAVY_ENTRIES),
        (dg.AssetKey(["warehouse", "fct_orders"]), HEAVY_ENTRIES - {"candidate_schema"}),
        (dg.AssetKey(["marts", "daily_sales"]), HEAVY_ENTRIES - {"candidate_schema"}),
    ):
        latest = instance.get_latest_materialization_event(key).asset_materialization
        assert latest.partition == END.isoformat(), key
        assert heavy <= set(latest.metadata), key
        earlier = (
            instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[START.isoformat()]), limit=1
            )
            .records[0]
            .asset_materialization
        )
        assert not HEAVY_ENTRIES & set(earlier.metadata), key
        assert {"dagster/row_count", "rows_in_run", "days_in_run"} <= set(earlier.metadata)


def test_a_ranged_runs_profile_and_preview_describe_the_day_that_carries_them(pipeline):
    """The last day's profile and preview are that day's rows, as a one-day run of it
    would record, not a profile of the whole range."""
    from assets_pkg.contracts import TABLES
    from assets_pkg.staging.transforms import DATE_COLUMN

    instance = dg.DagsterInstance.get()
    for key, date_column in (
        (dg.AssetKey(["staging", "stg_orders"]), DATE_COLUMN["orders"]),
        (dg.AssetKey(["warehouse", "fct_orders"]), TABLES["warehouse.fct_orders"].date_column),
        (dg.AssetKey(["marts", "daily_sales"]), TABLES["marts.daily_sales"].date_column),
    ):
        metadata = instance.get_latest_materialization_event(key).asset_materialization.metadata
        rows = {
            cells[0]: cells
            for line in metadata["profile"].value.splitlines()[2:]
            for cells in [[c.strip() for c in line.strip("|").split("|")]]
        }
        assert rows[date_column][4:6] == [END.isoformat(), END.isoformat()], (key, rows)
        preview = metadata["preview"].value
        assert END.isoformat() in preview and START.isoformat() not in preview, (key, preview)


def test_the_warehouse_file_keeps_no_view_of_the_staging_files(pipeline):
    """Steps read staging Parquet through views of their own connection: none is left in
    the warehouse file, where it would name staging files by path."""
    settings, _, _ = pipeline
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        views = conn.execute(
            "SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal"
        ).fetchall()
        tables = conn.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0]
    assert tables > 0, "the pipeline built the warehouse"
    assert views == []


def test_row_counts_are_true_per_day_after_a_ranged_run(pipeline):
    settings, _, _ = pipeline
    instance = dg.DagsterInstance.get()
    orders = read_table(settings, "warehouse.fct_orders")
    key = dg.AssetKey(["warehouse", "fct_orders"])
    days = sorted({r["order_date"] for r in orders})
    assert len(days) > 3
    for day in days:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1
        ).records
        metadata = records[0].asset_materialization.metadata
        expected = sum(1 for r in orders if r["order_date"] == day)
        assert metadata["dagster/row_count"].value == expected, day
