"""``LakeResource.write_many`` on a local lake: each file written atomically, several at once.

- every file reads back as written, whatever order the threads finished in;
- a failed write fails the call and no other write starts; those under way end whole;
- two files in one directory are refused before anything is written;
- ``write_file`` links a finished file in (a copy across filesystems) and leaves it in
  place; rewriting that file later never changes the lake's.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets_pkg.resources.lake import LakeResource, partition_dir, write_parquet_file

DAYS = [dt.date(2024, 3, 1) + dt.timedelta(days=i) for i in range(9)]


def _frame(day: dt.date) -> pl.DataFrame:
    return pl.DataFrame({"id": [f"{day}-{i}" for i in range(day.day)], "n": list(range(day.day))})


def test_every_file_reads_back_as_written(tmp_path):
    lake = LakeResource(root=str(tmp_path))
    lake.write_many(
        (_frame(d), ("staging", "stg_orders", partition_dir(d), "data.parquet")) for d in DAYS
    )
    for day in DAYS:
        got = lake.read("staging", "stg_orders", partition_dir(day), "data.parquet")
        assert_frame_equal(got, _frame(day))
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]  # no temps left


def test_a_failed_write_fails_the_call_and_starts_no_more(tmp_path):
    lake = LakeResource(root=str(tmp_path))
    days = [DAYS[0] + dt.timedelta(days=i) for i in range(40)]
    blocked = tmp_path / "lake" / "orders" / partition_dir(days[0])
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the partition's directory should be")
    with pytest.raises(OSError):
        lake.write_many(
            (_frame(d), ("lake", "orders", partition_dir(d), "ing-1.parquet")) for d in days
        )
    written = [
        d for d in days[1:] if lake.exists("lake", "orders", partition_dir(d), "ing-1.parquet")
    ]
    # the writes under way when the first failed finished, whole; the rest never started
    assert len(written) < len(days) - 1
    for day in written:
        got = lake.read("lake", "orders", partition_dir(day), "ing-1.parquet")
        assert_frame_equal(got, _frame(day))
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]


def test_two_files_in_one_directory_are_refused_before_any_write(tmp_path):
    lake = LakeResource(root=str(tmp_path))
    folder = ("lake", "orders", partition_dir(DAYS[0]))
    with pytest.raises(ValueError, match="two files in one directory"):
        lake.write_many(
            [(_frame(DAYS[0]), (*folder, "a.parquet")), (_frame(DAYS[1]), (*folder, "b.parquet"))]
        )
    assert not (tmp_path / "lake").exists()


# ---- write_file: a finished Parquet file put in the lake as it is (a pass's parked indexes)


def test_write_file_links_the_file_in_and_a_later_write_of_it_leaves_the_lake_alone(tmp_path):
    lake = LakeResource(root=str(tmp_path / "lake-root"))
    parked = tmp_path / "spool" / "lake-_index-orders.parquet"
    parked.parent.mkdir()
    write_parquet_file(_frame(DAYS[2]), parked)

    target = lake.write_file(parked, "lake", "_index", "orders.parquet")

    assert_frame_equal(lake.read("lake", "_index", "orders.parquet"), _frame(DAYS[2]))
    assert parked.exists()  # left in place: a replayed commit puts it in again
    assert os.stat(target).st_ino == os.stat(parked).st_ino  # linked, not encoded again
    # the next pass parks under the same name: a new file, never the lake's truncated
    write_parquet_file(_frame(DAYS[5]), parked)
    assert_frame_equal(lake.read("lake", "_index", "orders.parquet"), _frame(DAYS[2]))
    lake.write_file(parked, "lake", "_index", "orders.parquet")  # replayed: same result
    assert_frame_equal(lake.read("lake", "_index", "orders.parquet"), _frame(DAYS[5]))
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]


def test_write_file_copies_where_the_file_cannot_be_linked(tmp_path, monkeypatch):
    """A lake on another filesystem than the spool (os.link fails with EXDEV) gets a copy."""
    lake = LakeResource(root=str(tmp_path / "lake-root"))
    parked = tmp_path / "parked.parquet"
    write_parquet_file(_frame(DAYS[3]), parked)

    def cross_device(src, dst, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link", str(src))

    monkeypatch.setattr(os, "link", cross_device)
    target = lake.write_file(parked, "lake", "_index", "events.parquet")

    assert_frame_equal(lake.read("lake", "_index", "events.parquet"), _frame(DAYS[3]))
    assert os.stat(target).st_ino != os.stat(parked).st_ino
    assert parked.read_bytes() == Path(target).read_bytes()
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]
