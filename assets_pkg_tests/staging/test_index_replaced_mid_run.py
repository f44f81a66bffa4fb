"""An ingest pass that commits its version indexes while a backfill stages changes nothing
that backfill reads: staging holds the index as it was when the step began.

Unpinned, the step's lazy scans read whichever index file was current at each collect: a
newer one lists versions in lake files the step never listed (a false "lake data missing"),
and one replaced between a scan's footer read and its data read fails to decode ("Invalid
thrift"; a CI run of the concurrency test hit it). Through a real ingest, a real Dagster
instance and a real DuckDB file.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from assets_pkg.cli.main import do_backfill, do_ingest
from assets_pkg.config import Settings
from assets_pkg.resources.lake import LakeResource
from assets_pkg.staging import assets as staging_assets
from assets_pkg_tests.conftest import END, START, read_table
from assets_pkg_tests.staging.test_moved_copies import _first_pass

D2 = dt.date(2024, 3, 2)
ORDERS_INDEX = ("lake", "_index", "orders.parquet")


def test_a_version_index_committed_mid_step_is_not_read_by_it(settings: Settings, monkeypatch):
    _first_pass(settings)
    do_ingest(settings)
    lake = LakeResource(root=settings.lake_url)
    check_complete = staging_assets.check_complete
    committed = []

    def a_pass_commits_first(source, index, found, days, files):
        if source == "orders" and not committed:
            # a later pass's index: one more live order on 03-02, in a file not listed here
            current = lake.read(*ORDERS_INDEX)
            extra = current.head(1).with_columns(
                order_id=pl.lit("O9"), _file_name=pl.lit("orders_later.csv")
            )
            lake.write(pl.concat([current, extra]), *ORDERS_INDEX)
            committed.append(source)
        return check_complete(source, index, found, days, files)

    monkeypatch.setattr(staging_assets, "check_complete", a_pass_commits_first)
    do_backfill(settings, START, END)  # raises on a failed run

    assert committed == ["orders"]
    orders = read_table(settings, "warehouse.fct_orders")
    assert [(r["order_id"], r["order_date"]) for r in orders] == [("O1", D2), ("O2", D2)]
    assert lake.read(*ORDERS_INDEX).height == 3  # the pass's index stands for the next run
