"""Sensors that turn landed files into runs."""

from assets_pkg.sensors.landing import landing_sensor

__all__ = ["landing_sensor"]
