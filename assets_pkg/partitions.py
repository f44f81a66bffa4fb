"""The one daily partitioning every dated asset shares."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from assets_pkg.config import Settings


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """Daily UTC partitions from ASSETS_PKG_START_DATE to ASSETS_PKG_END_DATE (or today)."""
    start = settings.start_date.isoformat()
    if settings.end_date is not None:
        end = (settings.end_date + dt.timedelta(days=1)).isoformat()  # end_date is exclusive
        return dg.DailyPartitionsDefinition(start_date=start, end_date=end, timezone="UTC")
    return dg.DailyPartitionsDefinition(start_date=start, end_offset=1, timezone="UTC")


def range_tags(start: dt.date, end: dt.date) -> dict[str, str]:
    """Run tags that make one run cover the days ``start..end`` (single-run backfill)."""
    return {
        "dagster/asset_partition_range_start": start.isoformat(),
        "dagster/asset_partition_range_end": end.isoformat(),
    }


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def run_days(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The days a (possibly ranged) run of a daily-partitioned asset covers."""
    window = context.partition_time_window
    start = window.start.date()
    end = window.end.date() - dt.timedelta(days=1)
    return days_between(start, end)


def chunks(days: list[dt.date], size: int) -> list[list[dt.date]]:
    return [days[i : i + size] for i in range(0, len(days), size)]
