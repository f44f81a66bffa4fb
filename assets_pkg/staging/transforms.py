"""Staging transforms: pure functions over Polars LazyFrames, no I/O.

The lake holds every valid version a source ever sent, in the partition of its date at
the time; the version index says which version of each key is live and on which date.
Staging keeps exactly the live versions, typed, one row per key.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from assets_pkg.contracts import STAGING_DATE_COLUMN, SourceContract

#: name of the business-date column each partitioned staging table carries
DATE_COLUMN = STAGING_DATE_COLUMN


def staging_schema(contract: SourceContract) -> dict[str, pl.DataType]:
    schema = {c.name: c.dtype for c in contract.columns}
    if contract.name in DATE_COLUMN:
        schema[DATE_COLUMN[contract.name]] = pl.Date()
    return schema | {"_file_name": pl.String(), "_row_number": pl.Int64()}


def live_versions(
    contract: SourceContract,
    lake_rows: pl.LazyFrame,
    index: pl.LazyFrame,
    days: list[dt.date],
) -> pl.LazyFrame:
    """The live version of every key whose current date is one of ``days``, in no order.

    ``lake_rows`` is the lake partitions of those days; the index (key, date, version)
    decides which rows are live and which moved away or were superseded. Order is left to
    the writer (``day_frames``): one sort over many days by (date, key) costs 3x the
    per-day sorts.
    """
    key = list(contract.key)
    version = ["_file_name", "_row_number"]
    live = index.filter(pl.col("date").is_in(days)).select([*key, *version, "date"])
    date_col = DATE_COLUMN[contract.name]
    return (
        lake_rows.join(live, on=[*key, *version], how="inner")
        # a version moved between two of the days is in both partitions: keep one copy.
        # A filter on first occurrences rather than unique(), which gathers every column
        # per key: a month of 10M-item events took 1.4 to 1.6 s, not 3.2 to 3.8 s
        .filter(pl.struct(key).is_first_distinct())
        .rename({"date": date_col})
        .select(list(staging_schema(contract)))
    )


def day_frames(contract: SourceContract, rows: pl.DataFrame) -> dict[dt.date, pl.DataFrame]:
    """Staged rows split by their date, each day sorted by key (what a day's file holds)."""
    date_col = DATE_COLUMN[contract.name]
    key = list(contract.key)
    return {
        day: frame.sort(key) for (day,), frame in rows.partition_by(date_col, as_dict=True).items()
    }


def latest_snapshots(contract: SourceContract, lake_rows: pl.LazyFrame) -> pl.LazyFrame:
    """Dimension snapshots: one row per (id, updated_at), the greatest (file, row) winning."""
    key = list(contract.key)
    return (
        lake_rows.sort(["_file_name", "_row_number"])
        .unique(subset=key, keep="last")
        .select(list(staging_schema(contract)))
        .sort(key)
    )
