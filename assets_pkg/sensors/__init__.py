"""Sensors that turn landed files into runs."""

from assets_pkg.sensors.dimensions import dimension_change_sensor
from assets_pkg.sensors.landing import landing_sensor

__all__ = ["dimension_change_sensor", "landing_sensor"]
