"""How staging, warehouse and marts follow their upstream on their own.

``AutomationCondition.eager()`` looks only at the latest day and ignores blocking checks.
Here a partition is requested whenever one of its upstream partitions was updated, on any
day (late data reaches old days), once every upstream blocking check has passed, and not
while it or an upstream is in progress. Dimensions are not followed by dated facts: a new
dimension version makes only the days from its ``valid_from`` on stale, and
``dimension_change_sensor`` requests exactly those.
"""

from __future__ import annotations

import dagster as dg

AUTOMATED_GROUPS = ("staging", "warehouse", "marts")


def follow_upstream(ignore: list[dg.AssetKey] | None = None) -> dg.AutomationCondition:
    condition = (
        dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
    )
    if ignore:
        condition = condition.ignore(dg.AssetSelection.assets(*ignore))
    return condition.with_label("follow_upstream")


def build_automation_sensor() -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        "automation_sensor",
        target=dg.AssetSelection.groups(*AUTOMATED_GROUPS),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description=(
            "Requests staging, warehouse and mart partitions whose upstream was updated "
            "(new files, late data), after upstream blocking checks pass."
        ),
    )
