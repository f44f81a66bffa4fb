"""Re-run the dated facts a new product version made stale, and only those days.

Automation does not follow dimensions into dated facts (a dimension is one unpartitioned
table: following it would recompute every day). Instead each rebuild of ``dim_product``
records ``changed_from``, the first day whose point-in-time lookup may differ; this sensor
requests, as one ranged run per contiguous stretch, the days of ``fct_order_items`` (and
what reads it) from that day on that were last materialized before the rebuild.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from assets_pkg.jobs import DAILY_PIPELINE
from assets_pkg.partitions import range_tags
from assets_pkg.resources import PlatformResource
from assets_pkg.warehouse.assets import DIM_PRODUCT, FCT_ORDER_ITEMS, FCT_PAYMENTS
from assets_pkg.warehouse.tables import CHANGED_FROM


def stale_days(
    instance: dg.DagsterInstance, dimension_storage_id: int, changed_from: dt.date
) -> list[dt.date]:
    """Days of the fact from ``changed_from`` on last written before the dimension was."""
    latest = instance.get_latest_storage_id_by_partition(
        FCT_ORDER_ITEMS.asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION
    )
    days = (dt.date.fromisoformat(p) for p, sid in latest.items() if sid < dimension_storage_id)
    return sorted(d for d in days if d >= changed_from)


def stretches(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Contiguous runs of days as (first, last)."""
    out: list[tuple[dt.date, dt.date]] = []
    for day in days:
        if out and day == out[-1][1] + dt.timedelta(days=1):
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


@dg.sensor(
    name="dimension_change_sensor",
    job_name=DAILY_PIPELINE,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "After dim_product changes, re-runs fct_order_items and what reads it for the days "
        "the new product versions made stale."
    ),
)
def dimension_change_sensor(context: dg.SensorEvaluationContext, platform: PlatformResource):
    records = context.instance.fetch_materializations(DIM_PRODUCT.asset_key, limit=1).records
    cursor = int(context.cursor) if context.cursor else 0
    if not records or records[0].storage_id <= cursor:
        return dg.SensorResult(skip_reason="dim_product has not changed since the last evaluation")
    record = records[0]
    materialization = record.asset_materialization
    value = materialization.metadata.get(CHANGED_FROM) if materialization else None
    changed = str(value.value) if value is not None else ""
    if not changed:
        return dg.SensorResult(
            skip_reason="no product version changed", cursor=str(record.storage_id)
        )
    settings = platform.settings()
    first = max(dt.date.fromisoformat(changed), settings.start_date)
    days = [
        d for d in stale_days(context.instance, record.storage_id, first) if settings.in_range(d)
    ]
    # payments follow fct_orders only to be checked against it: products change none of them
    selection = (
        dg.AssetSelection.assets(FCT_ORDER_ITEMS.asset_key).downstream()
        - dg.AssetSelection.assets(FCT_PAYMENTS.asset_key).downstream()
    )
    keys = sorted(selection.resolve(context.repository_def.asset_graph))
    requests = [
        dg.RunRequest(
            run_key=f"dim_product-{record.storage_id}-{start}-{end}",
            asset_selection=keys,
            tags={"assets_pkg/trigger": "dimension_change_sensor", **range_tags(start, end)},
        )
        for start, end in stretches(days)
    ]
    return dg.SensorResult(run_requests=requests, cursor=str(record.storage_id))
