"""What an ingest run records of the lake partitions it wrote (``assets_pkg.lake.assets``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from dagster._core.events.log import EventLogEntry

from assets_pkg.contracts import SOURCES
from assets_pkg.definitions import build_definitions
from assets_pkg.instance import ensure_instance
from assets_pkg.sample.generator import generate
from assets_pkg_tests.conftest import START, use_temp_platform


def _lake_rows(lake: Path) -> dict[tuple[dg.AssetKey, str | None], int]:
    """Rows each lake dataset holds, per day for the dated ones (the lake was empty)."""
    rows: dict[tuple[dg.AssetKey, str | None], int] = {}
    for source, contract in SOURCES.items():
        key = dg.AssetKey(["lake", source])
        files = sorted((lake / "lake" / source).rglob("*.parquet"))
        if not contract.partitioned:
            rows[key, None] = sum(
                pl.scan_parquet(f).select(pl.len()).collect().item() for f in files
            )
            continue
        for folder in sorted({f.parent for f in files}):
            day = folder.name.removeprefix("date=")
            rows[key, day] = pl.scan_parquet(folder / "*.parquet").select(pl.len()).collect().item()
    return rows


def _count(m: dg.AssetMaterialization) -> int:
    value = m.metadata.get("rows_written") or m.metadata["dagster/row_count"]
    return int(value.value)


def test_an_ingest_records_each_lake_partition_it_wrote_once_in_one_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    settings = use_temp_platform(tmp_path, monkeypatch)
    generate(settings.landing_dir, start=START, days=4, seed=5, scale=0.05)
    instance = ensure_instance(settings)
    storage = instance.event_log_storage
    batches: list[list[dg.AssetKey]] = []
    store = storage.store_event_batch

    def spied(events: Sequence[EventLogEntry]) -> None:
        batches.append(
            [
                e.dagster_event.asset_key
                for e in events
                if e.dagster_event is not None
                and e.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
            ]
        )
        store(events)

    monkeypatch.setattr(storage, "store_event_batch", spied)
    result = build_definitions().resolve_job_def("ingest_job").execute_in_process(instance=instance)
    assert result.success

    # in the run's own events: one per lake partition written, with the rows it holds
    events = result.asset_materializations_for_node("ingest_landing")
    recorded = {(m.asset_key, m.partition): _count(m) for m in events}
    assert len(recorded) == len(events)
    assert recorded == _lake_rows(Path(settings.lake_url))
    assert sum(1 for _, day in recorded if day) >= 4 * 4  # four days of four dated sources

    # the instance has them too: the partitions' status and the same counts
    stored = {}
    for key in {k for k, _ in recorded}:
        for record in instance.fetch_materializations(key, limit=1000).records:
            m = record.asset_materialization
            stored[key, m.partition] = _count(m)
    assert stored == recorded
    for key in {k for k, day in recorded if day}:
        assert instance.get_materialized_partitions(key) == {day for k, day in recorded if k == key}

    # and were written together: each logged alone was its own transactions
    lake = [b for b in batches if any(k.path[0] == "lake" for k in b)]
    assert [len(b) for b in lake] == [len(recorded)]
