"""An ingest pass that commits its version indexes while a backfill stages changes nothing
that backfill reads: staging holds the index as it was when the step began.

Unpinned, the step's lazy scans read whichever index file was current at each collect: a
newer one can move a version the step counted for a day into a lake file the step never
listed (a false "lake data missing"), and one replaced between a scan's footer read and its
data read fails to decode ("Invalid thrift"; a CI run of the concurrency test hit it).
Through a real ingest, a real Dagster instance and a real DuckDB file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from assets_pkg.cli.main import do_backfill, do_ingest
from assets_pkg.config import Settings
from assets_pkg.resources.lake import LakeResource
from assets_pkg.staging import assets as staging_assets
from assets_pkg_tests.conftest import END, START, read_table
from assets_pkg_tests.staging.test_moved_copies import _first_pass

D2 = dt.date(2024, 3, 2)
D3 = dt.date(2024, 3, 3)
ORDERS_INDEX = ("lake", "_index", "orders.parquet")


def test_a_version_index_committed_mid_step_is_not_read_by_it(settings: Settings, monkeypatch):
    _first_pass(settings)
    do_ingest(settings)
    lake = LakeResource(root=settings.lake_url)
    collect_lake = staging_assets.collect_lake
    committed = []

    def a_pass_commits_first(lake_, frame, files):
        # the step has counted the index's rows per day and is about to read the lake
        if not committed and any(Path(f).parent.parent.name == "orders" for f in files):
            # a later pass's index: O2 moved to 03-03, its version in a file not listed here
            current = lake.read(*ORDERS_INDEX)
            o2 = pl.col("order_id") == "O2"
            moved = current.with_columns(
                date=pl.when(o2).then(pl.lit(D3)).otherwise(pl.col("date")),
                _file_name=pl.when(o2).then(pl.lit("orders_later.csv")).otherwise("_file_name"),
            )
            lake.write(moved, *ORDERS_INDEX)
            committed.append(moved)
        return collect_lake(lake_, frame, files)

    monkeypatch.setattr(staging_assets, "collect_lake", a_pass_commits_first)
    do_backfill(settings, START, END)  # raises on a failed run

    assert len(committed) == 1
    orders = read_table(settings, "warehouse.fct_orders")
    assert [(r["order_id"], r["order_date"]) for r in orders] == [("O1", D2), ("O2", D2)]
    # the pass's index stands for the next run
    assert lake.read(*ORDERS_INDEX).sort("order_id").equals(committed[0].sort("order_id"))
