"""Sensors: landed files become runs, dimension changes re-run the days they made stale,
failed runs and failed checks become alerts."""

from assets_pkg.sensors.alerts import check_failure_alert_sensor, run_failure_alert_sensor
from assets_pkg.sensors.dimensions import dimension_change_sensor
from assets_pkg.sensors.landing import build_landing_sensor

__all__ = [
    "build_landing_sensor",
    "check_failure_alert_sensor",
    "dimension_change_sensor",
    "run_failure_alert_sensor",
]
