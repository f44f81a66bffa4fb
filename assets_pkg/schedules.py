"""Schedules: yesterday's partition every day, and a late-data pass over the last N days.

A schedule built from a partitioned job would target the last partition, which may be
today (with ``end_offset=1``) or a fixed end date; these say which days they mean.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from assets_pkg.config import Settings
from assets_pkg.jobs import DAILY_PIPELINE
from assets_pkg.partitions import range_tags

DAILY_SCHEDULE = "daily_pipeline_schedule"
LATE_DATA_SCHEDULE = "late_data_schedule"


def clamp_days(settings: Settings, start: dt.date, end: dt.date) -> tuple[dt.date, dt.date] | None:
    """``[start, end]`` cut to the configured partitions, or None if nothing is left."""
    start = max(start, settings.start_date)
    if settings.end_date is not None:
        end = min(end, settings.end_date)
    return (start, end) if start <= end else None


def _tick_date(context: dg.ScheduleEvaluationContext) -> dt.date:
    when = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    return when.astimezone(dt.UTC).date()


def build_schedules(settings: Settings) -> list[dg.ScheduleDefinition]:
    @dg.schedule(
        name=DAILY_SCHEDULE,
        job_name=DAILY_PIPELINE,
        cron_schedule=settings.daily_cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Materializes yesterday's partition (UTC) across staging, warehouse and marts.",
    )
    def daily_schedule(context: dg.ScheduleEvaluationContext):
        yesterday = _tick_date(context) - dt.timedelta(days=1)
        if clamp_days(settings, yesterday, yesterday) is None:
            return dg.SkipReason(f"{yesterday} is outside the configured partitions")
        return dg.RunRequest(
            run_key=f"daily-{yesterday.isoformat()}",
            partition_key=yesterday.isoformat(),
            tags={"assets_pkg/trigger": "daily_schedule"},
        )

    days = settings.late_data_days

    @dg.schedule(
        name=LATE_DATA_SCHEDULE,
        job_name=DAILY_PIPELINE,
        cron_schedule=settings.late_data_cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            f"Re-runs the last {days} days (up to yesterday, UTC) as one ranged run, "
            "so data that landed late reaches the marts."
        ),
    )
    def late_data_schedule(context: dg.ScheduleEvaluationContext):
        yesterday = _tick_date(context) - dt.timedelta(days=1)
        window = clamp_days(settings, yesterday - dt.timedelta(days=days - 1), yesterday)
        if window is None:
            return dg.SkipReason(f"the last {days} days before today are outside the partitions")
        start, end = window
        return dg.RunRequest(
            run_key=f"late-data-{start.isoformat()}-{end.isoformat()}",
            tags={"assets_pkg/trigger": "late_data_schedule", **range_tags(start, end)},
        )

    return [daily_schedule, late_data_schedule]
