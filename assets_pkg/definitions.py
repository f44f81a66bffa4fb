"""The Dagster code location: ``dagster dev`` and ``-m assets_pkg.definitions`` load ``defs``.

Definitions are built when Dagster loads them, not at import: settings come from the
environment at that moment.
"""

from __future__ import annotations

import warnings

import dagster as dg

from assets_pkg.automation import build_automation_sensor
from assets_pkg.config import load_settings
from assets_pkg.executors import build_executor
from assets_pkg.jobs import build_jobs
from assets_pkg.lake.assets import build_lake_specs, ingest_job
from assets_pkg.marts.assets import build_mart_assets
from assets_pkg.marts.realtime import build_realtime_specs
from assets_pkg.partitions import daily_partitions
from assets_pkg.resources import build_resources
from assets_pkg.schedules import build_schedules
from assets_pkg.sensors import (
    build_landing_sensor,
    check_failure_alert_sensor,
    dimension_change_sensor,
    run_failure_alert_sensor,
)
from assets_pkg.staging.assets import build_staging_assets
from assets_pkg.warehouse.assets import build_warehouse_assets


def build_definitions() -> dg.Definitions:
    # backfill policies and source-code references are marked beta; both are deliberate
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return _build_definitions()


def _build_definitions() -> dg.Definitions:
    settings = load_settings()
    partitions = daily_partitions(settings)
    assets = [
        *build_lake_specs(partitions),
        *build_staging_assets(partitions),
        *build_warehouse_assets(partitions),
        *build_mart_assets(partitions),
        *build_realtime_specs(),
    ]
    return dg.Definitions(
        assets=dg.with_source_code_references(assets),
        jobs=[ingest_job, *build_jobs(settings)],
        schedules=build_schedules(settings),
        sensors=[
            build_landing_sensor(settings),
            dimension_change_sensor,
            build_automation_sensor(),
            run_failure_alert_sensor,
            check_failure_alert_sensor,
        ],
        resources=build_resources(settings),
        # asset materializations outside the jobs (the UI, `dagster asset materialize`)
        executor=build_executor(settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
