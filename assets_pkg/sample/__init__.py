"""Deterministic sample data for the landing zone (see ``generator``)."""
