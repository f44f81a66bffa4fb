"""Storage faults: a full disk, a corrupt lake file, a missing lake partition.

Each is detected and reported by a real run on real files, the previous good state is
kept, and the fix (a re-run, or `assets-pkg repair-lake` and a re-run) ends exactly where
a run that never met the fault ends.
"""

from __future__ import annotations

import datetime as dt
import errno
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets_pkg.cli.main import do_repair_lake
from assets_pkg.config import Settings
from assets_pkg.definitions import build_definitions
from assets_pkg.instance import ensure_instance
from assets_pkg.partitions import range_tags
from assets_pkg.resources.lake import WRITE_THREADS
from assets_pkg.sample.generator import generate
from assets_pkg.sensors.alerts import run_failure_alert
from assets_pkg_tests.conftest import START, TABLE_KEYS, read_table, use_temp_platform

DAYS = [START + dt.timedelta(days=i) for i in range(3)]
LAST = DAYS[-1].isoformat()


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sample")
    generate(folder, start=START, days=len(DAYS), seed=11, scale=0.1)
    return folder


def _land(settings: Settings, sample: Path, *, last_day: bool) -> None:
    """Land the sample in two waves: everything but the last day's files, then those."""
    for path in sample.rglob("*"):
        if path.is_file() and (LAST in path.name) == last_day:
            target = settings.landing_dir / path.relative_to(sample)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def _job(settings: Settings, name: str, tags: dict[str, str] | None = None):
    job = build_definitions().resolve_job_def(name)
    return job.execute_in_process(
        instance=ensure_instance(settings), tags=tags or {}, raise_on_error=False
    )


def _ingest(settings: Settings) -> dg.ExecuteInProcessResult:
    return _job(settings, "ingest_job")


def _backfill(settings: Settings, first: dt.date, last: dt.date) -> dg.ExecuteInProcessResult:
    return _job(settings, "daily_pipeline", range_tags(first, last))


def _chain(error) -> str:
    """A step failure's message with its causes (after retries Dagster says only
    "Exceeded max_retries" and keeps the error itself as the cause)."""
    messages = []
    while error is not None:
        messages.append(error.message.strip())
        error = error.cause
    return " <- ".join(messages)


def _failures(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    return {
        e.step_key: _chain(e.event_specific_data.error)
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.STEP_FAILURE
    }


def _retries(result: dg.ExecuteInProcessResult) -> list[str]:
    return [
        e.step_key
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]


def _run_failure_alert(settings: Settings, run_id: str) -> dict:
    """The alert the run failure sensor writes for this run."""
    instance = ensure_instance(settings)
    (record,) = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_event=record.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run_id),
    ).for_run_failure()
    return run_failure_alert(context)


def _frame_rows(files: list[Path], drop: tuple[str, ...] = ("_ingest_id",)) -> list[tuple]:
    if not files:
        return []
    df = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
    df = df.drop([c for c in drop if c in df.columns])
    return sorted(df.select(sorted(df.columns)).rows(), key=repr)


def snapshot(settings: Settings, layers: tuple[str, ...] = ("staging", "lake")) -> dict[str, list]:
    """What a reader sees: warehouse tables, rejects, and the rows of these Parquet layers."""
    state: dict[str, list] = {t: read_table(settings, t) for t in TABLE_KEYS}
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        state["quarantine.rejects"] = conn.execute(
            "SELECT source, file_name, row_number, reason, partition_date, "
            "resolved_at IS NOT NULL FROM quarantine.rejects ORDER BY ALL"
        ).fetchall()
    root = Path(settings.lake_url)
    for layer in layers:
        for dataset in sorted(p for p in (root / layer).iterdir() if p.name != "_rejects"):
            files = sorted(f for f in dataset.rglob("*.parquet") if not f.name.startswith("."))
            state[f"{layer}/{dataset.name}"] = _frame_rows(files)
    return state


def _derived(state: dict[str, list]) -> dict[str, list]:
    """All but the lake's own files: a rebuild takes the archive in one pass, not in the
    original waves, so it stores the same versions in other files (and no copies of items
    that followed a moved order); the version index and everything built on it agree."""
    return {k: v for k, v in state.items() if not k.startswith("lake/") or k == "lake/_index"}


def _visible_files(settings: Settings) -> dict[str, bytes]:
    root = Path(settings.lake_url)
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _temp_files(settings: Settings) -> list[str]:
    return [p.name for p in Path(settings.lake_url).rglob("*") if p.name.endswith(".tmp")]


def _all_readable(settings: Settings) -> None:
    for path in Path(settings.lake_url).rglob("*.parquet"):
        pl.read_parquet(path)  # a half-written file would raise here


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, sample: Path) -> dict[str, list]:
    """The state after the same two ingest waves and a backfill, without any fault."""
    with pytest.MonkeyPatch.context() as mp:
        settings = use_temp_platform(tmp_path_factory.mktemp("clean"), mp)
        _land(settings, sample, last_day=False)
        assert _ingest(settings).success
        _land(settings, sample, last_day=True)
        assert _ingest(settings).success
        assert _backfill(settings, DAYS[0], DAYS[-1]).success
        return snapshot(settings)


@pytest.fixture
def good_state(settings: Settings, sample: Path) -> Settings:
    """First wave ingested and its days built: the previous good state."""
    _land(settings, sample, last_day=False)
    assert _ingest(settings).success
    assert _backfill(settings, DAYS[0], DAYS[1]).success
    return settings


class DiskFull:
    """``DataFrame.write_parquet`` that fills the disk: half the bytes land, then ENOSPC.

    Only for targets under ``folder``, after ``allow`` successful writes there.
    """

    def __init__(self, folder: Path, allow: int) -> None:
        self.folder = folder
        self.allow = allow
        self.hits = 0
        self.real = pl.DataFrame.write_parquet

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        fault = self

        def write_parquet(df: pl.DataFrame, file, *args, **kwargs):
            target = Path(file)
            if fault.folder not in target.parents:
                return fault.real(df, file, *args, **kwargs)
            if fault.allow > 0:
                fault.allow -= 1
                return fault.real(df, file, *args, **kwargs)
            fault.hits += 1
            fault.real(df, target, *args, **kwargs)
            data = target.read_bytes()
            target.write_bytes(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", str(target))

        monkeypatch.setattr(pl.DataFrame, "write_parquet", write_parquet)


def test_disk_full_during_ingest_keeps_the_lake_and_a_rerun_recovers(
    good_state: Settings, sample: Path, clean: dict, monkeypatch: pytest.MonkeyPatch
):
    settings = good_state
    before_lake = _visible_files(settings)
    before = snapshot(settings, layers=("staging",))
    _land(settings, sample, last_day=True)
    disk = DiskFull(Path(settings.lake_url) / "lake", allow=2)
    with monkeypatch.context() as mp:
        disk.install(mp)
        result = _ingest(settings)
    assert not result.success
    # the first attempt and its three retries all met the full disk (each stops starting
    # writes at its first failure; the ones under way in other threads may meet it too)
    assert 4 <= disk.hits <= 4 * WRITE_THREADS
    assert _retries(result) == ["ingest_landing"] * 3
    (message,) = _failures(result).values()
    assert "No space left on device" in message
    alert = _run_failure_alert(settings, result.run_id)
    assert "ingest_landing: OSError: [Errno 28] No space left on device" in alert["message"]
    assert _temp_files(settings) == []
    _all_readable(settings)
    after_lake = _visible_files(settings)
    changed = {
        name
        for name, data in before_lake.items()
        if after_lake.get(name) != data and "/_index/" not in f"/{name}"
    }
    assert changed == set(), "the lake files of the previous pass are unchanged"
    # new lake files of the failed pass may be there, but nothing reads them yet
    assert snapshot(settings, layers=("staging",)) == before, "staging and warehouse untouched"
    assert list((settings.landing_dir / "orders").glob(f"*{LAST}*")), "landed files are kept"

    # space freed: the same ingest again, then the days, end where a clean run ends
    assert _ingest(settings).success
    assert _backfill(settings, DAYS[0], DAYS[-1]).success
    assert snapshot(settings) == clean


def test_disk_full_during_staging_keeps_staging_and_a_rerun_recovers(
    good_state: Settings, sample: Path, clean: dict, monkeypatch: pytest.MonkeyPatch
):
    settings = good_state
    _land(settings, sample, last_day=True)
    assert _ingest(settings).success
    orders = Path(settings.lake_url) / "staging" / "stg_orders"
    before_orders = {p: p.read_bytes() for p in orders.rglob("*.parquet")}
    downstream = ("warehouse.fct_orders", "marts.daily_sales", "marts.daily_sales_by_category")
    before = {t: read_table(settings, t) for t in downstream}
    disk = DiskFull(orders, allow=1)  # one day is written, then the disk is full
    with monkeypatch.context() as mp:
        disk.install(mp)
        result = _backfill(settings, DAYS[0], DAYS[-1])
    assert not result.success
    failures = _failures(result)
    assert list(failures) == ["staging__stg_orders"]
    assert "No space left on device" in failures["staging__stg_orders"]
    assert _retries(result).count("staging__stg_orders") == 3
    assert _temp_files(settings) == []
    _all_readable(settings)
    # days are written several at a time: which one the disk took is not fixed, but only
    # that one changed; every day it could not write keeps its previous file
    after_orders = {p: p.read_bytes() for p in orders.rglob("*.parquet")}
    changed = [p for p, data in after_orders.items() if before_orders.get(p) != data]
    assert len(changed) <= 1, changed
    assert set(before_orders) <= set(after_orders), "no day's file was lost"
    # what reads stg_orders did not run: the warehouse keeps its previous orders and sales
    assert {t: read_table(settings, t) for t in downstream} == before

    assert _backfill(settings, DAYS[0], DAYS[-1]).success
    assert snapshot(settings) == clean


@pytest.fixture
def built(good_state: Settings, sample: Path) -> Iterator[Settings]:
    settings = good_state
    _land(settings, sample, last_day=True)
    assert _ingest(settings).success
    assert _backfill(settings, DAYS[0], DAYS[-1]).success
    yield settings


def test_a_corrupt_lake_file_is_named_the_state_kept_and_repair_restores_it(
    built: Settings, clean: dict
):
    settings = built
    assert snapshot(settings) == clean
    day = DAYS[1]
    folder = Path(settings.lake_url) / "lake" / "orders" / f"date={day.isoformat()}"
    victim = sorted(folder.glob("*.parquet"))[0]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 40])  # the footer is gone
    before = {t: read_table(settings, t) for t in TABLE_KEYS}

    result = _backfill(settings, day, day)
    assert not result.success
    failures = _failures(result)
    assert list(failures) == ["staging__stg_orders"]
    assert str(victim) in failures["staging__stg_orders"]
    assert "is corrupt" in failures["staging__stg_orders"]
    assert "repair-lake" in failures["staging__stg_orders"]
    assert not _retries(result), "a corrupt file is not retried"
    assert {t: read_table(settings, t) for t in TABLE_KEYS} == before

    assert "orders" in do_repair_lake(settings)
    assert not (settings.data_dir / ".repair-lake").exists()
    assert _backfill(settings, day, day).success
    assert _derived(snapshot(settings)) == _derived(clean)


def test_a_missing_lake_partition_fails_naming_the_day_instead_of_wiping_it(
    built: Settings, clean: dict
):
    settings = built
    day = DAYS[0]
    shutil.rmtree(Path(settings.lake_url) / "lake" / "order_items" / f"date={day.isoformat()}")
    staged = (
        Path(settings.lake_url) / "staging" / "stg_order_items" / f"date={day}" / "data.parquet"
    )
    staged_before = staged.read_bytes()
    before = {t: read_table(settings, t) for t in TABLE_KEYS}
    assert any(r["order_date"] == day for r in before["marts.daily_sales"])

    result = _backfill(settings, day, day)
    assert not result.success
    failures = _failures(result)
    assert list(failures) == ["staging__stg_order_items"]
    message = failures["staging__stg_order_items"]
    assert f"{day}: lake/order_items/date={day} is missing" in message
    assert "live rows in the version index, 0 found" in message
    assert staged.read_bytes() == staged_before, "no empty partition was staged"
    assert {t: read_table(settings, t) for t in TABLE_KEYS} == before

    assert "order_items" in do_repair_lake(settings)
    assert _backfill(settings, day, day).success
    assert _derived(snapshot(settings)) == _derived(clean)


def _lake_days(result: dg.ExecuteInProcessResult, source: str) -> set[str]:
    """Days of ``lake/<source>`` the ingest run recorded as materialized."""
    return {
        m.partition
        for m in result.asset_materializations_for_node("ingest_landing")
        if m.asset_key == dg.AssetKey(["lake", source])
    }


def test_a_rerun_after_a_partial_pass_announces_every_day_it_wrote(
    good_state: Settings, sample: Path, clean: dict, monkeypatch: pytest.MonkeyPatch
):
    settings = good_state
    _land(settings, sample, last_day=True)
    # orders (lake files and version index) are written, then the disk fills on the items
    disk = DiskFull(Path(settings.lake_url) / "lake" / "order_items", allow=0)
    with monkeypatch.context() as mp:
        disk.install(mp)
        assert not _ingest(settings).success
    assert disk.hits == 4
    rerun = _ingest(settings)
    assert rerun.success
    # automation follows these records: a day the failed attempt already indexed must be
    # announced by the re-run, or its staging would never be refreshed
    assert LAST in _lake_days(rerun, "orders")
    assert LAST in _lake_days(rerun, "order_items")
    assert LAST in _lake_days(rerun, "events")
    assert _backfill(settings, DAYS[0], DAYS[-1]).success
    assert snapshot(settings) == clean
