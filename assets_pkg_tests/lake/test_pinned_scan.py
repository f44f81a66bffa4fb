"""``LakeResource.pinned_scan`` on a local lake: a file's copy held while a writer replaces it.

- a scan planned before an ingest pass rewrites a version index reads the old copy whole,
  however the file changed (the unpinned scan can be handed the new file's bytes);
- the pin is gone afterwards, also when the block raises; a missing file is an empty frame;
- pins left by dead processes of this host are swept; live ones and other hosts' stay.
"""

from __future__ import annotations

import os
import subprocess
import sys

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets_pkg.resources.lake import LakeResource, _owner

PARTS = ("lake", "_index", "orders.parquet")
SCHEMA = {"order_id": pl.String, "date": pl.Date, "_ingest_id": pl.String}


def _frame(rows: int, tag: str) -> pl.DataFrame:
    return pl.select(
        order_id=pl.format("{}-{}", pl.lit(tag), pl.int_range(rows)),
        date=pl.date(2024, 3, 1) + pl.duration(days=pl.int_range(rows) % 28),
        _ingest_id=pl.lit(tag),
    )


def _dot_files(lake: LakeResource) -> list[str]:
    return sorted(p.name for p in lake.path(*PARTS[:-1]).iterdir() if p.name.startswith("."))


def test_a_pinned_scan_reads_the_copy_it_pinned_while_the_file_is_replaced(tmp_path):
    lake = LakeResource(root=str(tmp_path))
    before, after = _frame(1_000, "old"), _frame(300_000, "new")
    lake.write(before, *PARTS)
    with lake.pinned_scan(*PARTS, schema=SCHEMA) as index:
        march_5 = index.filter(pl.col("date") == pl.date(2024, 3, 5))
        assert len(_dot_files(lake)) == 1
        lake.write(after, *PARTS)  # an ingest pass commits its version index
        assert_frame_equal(march_5.collect(), before.filter(pl.col("date") == pl.date(2024, 3, 5)))
        assert_frame_equal(index.collect(), before)
    assert _dot_files(lake) == []
    assert_frame_equal(lake.read(*PARTS), after)


def test_the_pin_is_removed_when_the_block_raises_and_a_missing_file_scans_empty(tmp_path):
    lake = LakeResource(root=str(tmp_path))
    with lake.pinned_scan(*PARTS, schema=SCHEMA) as index:
        assert index.collect().schema == pl.Schema(SCHEMA)
        assert index.collect().height == 0
    lake.write(_frame(10, "old"), *PARTS)
    with (
        pytest.raises(RuntimeError, match="staging failed"),
        lake.pinned_scan(*PARTS, schema=SCHEMA),
    ):
        raise RuntimeError("staging failed")
    assert _dot_files(lake) == []


def test_pins_of_dead_processes_on_this_host_are_swept_and_no_others(tmp_path):
    lake = LakeResource(root=str(tmp_path))
    lake.write(_frame(10, "old"), *PARTS)
    folder = lake.path(*PARTS[:-1])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    host = _owner().rpartition("-")[0]
    names = {
        "dead": f".orders.parquet.{host}-{dead}.0a.pin",
        "alive": f".orders.parquet.{_owner()}.0b.pin",
        "elsewhere": f".orders.parquet.otherhost{host}-{dead}.0c.pin",
        "other_file": f".customers.parquet.{host}-{dead}.0d.pin",
    }
    for name in names.values():
        os.link(folder / "orders.parquet", folder / name)
    with lake.pinned_scan(*PARTS, schema=SCHEMA) as index:
        assert index.collect().height == 10
    left = set(_dot_files(lake))
    assert names["dead"] not in left
    assert {names["alive"], names["elsewhere"], names["other_file"]} <= left
