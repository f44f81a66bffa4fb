"""Schedules evaluated at fixed times: which days they ask for."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import dagster as dg
import pytest

from assets_pkg.config import ConfigError, load_settings
from assets_pkg.definitions import build_definitions
from assets_pkg.schedules import DAILY_SCHEDULE, LATE_DATA_SCHEDULE
from assets_pkg_tests.conftest import use_temp_platform

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


@pytest.fixture(autouse=True)
def instance() -> Iterator[dg.DagsterInstance]:
    # definitions load inside an open instance, as they do in a code server
    with dg.instance_for_test() as instance:
        yield instance


def _evaluate(
    instance: dg.DagsterInstance, name: str, when: dt.datetime
) -> dg.RunRequest | dg.SkipReason:
    defs = build_definitions()
    schedule = defs.resolve_schedule_def(name)
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=when,
        repository_def=defs.get_repository_def(),
    )
    data = schedule.evaluate_tick(context)
    if data.run_requests:
        (request,) = data.run_requests
        return request
    return dg.SkipReason(data.skip_message)


@pytest.fixture
def open_ended(tmp_path, monkeypatch):
    """Partitions from 2024-01-01 with no end date: today (UTC) is the last one."""
    settings = use_temp_platform(tmp_path, monkeypatch, start=dt.date(2024, 1, 1))
    monkeypatch.delenv("ASSETS_PKG_END_DATE")
    return settings


def test_daily_schedule_asks_for_yesterday_not_the_last_partition(open_ended, instance):
    defs = build_definitions()
    schedule = defs.resolve_schedule_def(DAILY_SCHEDULE)
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    request = _evaluate(instance, DAILY_SCHEDULE, dt.datetime(2024, 3, 1, 2, 0, tzinfo=dt.UTC))
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2024-02-29"
    assert request.run_key == "daily-2024-02-29"
    assert request.job_name in (None, "daily_pipeline")


def test_daily_schedule_uses_the_utc_day_of_the_tick(open_ended, instance):
    # 01:30 on March 1st in UTC+05:00 is still February 29th, 20:30 UTC
    tick = dt.datetime(2024, 3, 1, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    request = _evaluate(instance, DAILY_SCHEDULE, tick)
    assert request.partition_key == "2024-02-28"


def test_daily_schedule_skips_days_outside_the_partitions(open_ended, instance):
    result = _evaluate(instance, DAILY_SCHEDULE, dt.datetime(2024, 1, 1, 2, 0, tzinfo=dt.UTC))
    assert isinstance(result, dg.SkipReason)
    assert "2023-12-31" in result.skip_message


def test_late_data_schedule_asks_for_the_last_n_days_as_one_range(
    open_ended, monkeypatch, instance
):
    monkeypatch.setenv("ASSETS_PKG_LATE_DATA_DAYS", "5")
    monkeypatch.setenv("ASSETS_PKG_LATE_DATA_CRON", "30 6 * * *")
    defs = build_definitions()
    assert defs.resolve_schedule_def(LATE_DATA_SCHEDULE).cron_schedule == "30 6 * * *"
    request = _evaluate(
        instance, LATE_DATA_SCHEDULE, dt.datetime(2024, 3, 10, 6, 30, tzinfo=dt.UTC)
    )
    assert isinstance(request, dg.RunRequest)
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == ("2024-03-05", "2024-03-09")
    assert request.partition_key is None


def test_late_data_window_is_cut_to_the_configured_partitions(tmp_path, monkeypatch, instance):
    use_temp_platform(tmp_path, monkeypatch, start=dt.date(2024, 3, 6), end=dt.date(2024, 3, 8))
    request = _evaluate(instance, LATE_DATA_SCHEDULE, dt.datetime(2024, 3, 10, 5, 0, tzinfo=dt.UTC))
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == ("2024-03-06", "2024-03-08")
    skipped = _evaluate(instance, LATE_DATA_SCHEDULE, dt.datetime(2024, 3, 6, 5, 0, tzinfo=dt.UTC))
    assert isinstance(skipped, dg.SkipReason)


def test_a_scheduled_run_request_targets_a_real_partition_of_the_job(open_ended, instance):
    defs = build_definitions()
    job = defs.resolve_job_def("daily_pipeline")
    request = _evaluate(instance, DAILY_SCHEDULE, dt.datetime(2024, 6, 2, 2, 0, tzinfo=dt.UTC))
    assert job.partitions_def.has_partition_key(request.partition_key)


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("ASSETS_PKG_DAILY_CRON", "every day", "ASSETS_PKG_DAILY_CRON must be a cron"),
        ("ASSETS_PKG_LATE_DATA_DAYS", "0", "ASSETS_PKG_LATE_DATA_DAYS must be a whole number"),
        ("ASSETS_PKG_LATE_DATA_DAYS", "three", "ASSETS_PKG_LATE_DATA_DAYS must be a whole"),
    ],
)
def test_bad_schedule_settings_fail_with_the_variable_named(var, value, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({var: value})
