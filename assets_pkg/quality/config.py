"""Thresholds and severities of every quality check, in one place.

The defaults pass on healthy data (the generated sample at any scale); a JSON file named
by ``ASSETS_PKG_QUALITY_FILE`` overrides any of them, e.g. ``{"reject_rate_max": 0.02}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

QUALITY_FILE_VAR = "ASSETS_PKG_QUALITY_FILE"
Severity = Literal["ERROR", "WARN"]


class QualityResource(dg.ConfigurableResource):
    """Check thresholds and severities. An ERROR failure holds that day back from publication."""

    completeness_severity: Severity = Field(default="ERROR", description="Completeness.")
    validity_severity: Severity = Field(default="ERROR", description="Accepted values, ranges.")
    email_invalid_max: float = Field(
        default=0.02, description="Largest share of malformed e-mail addresses a day may have."
    )
    referential_severity: Severity = Field(
        default="WARN", description="Foreign keys that point at nothing (counted, not blocking)."
    )
    referential_max_share: float = Field(
        default=0.01,
        description="Largest share of a day's rows whose foreign key may point at nothing "
        "(a line of an unknown product is kept, with NULL cost and category).",
    )
    reconciliation_severity: Severity = Field(
        default="ERROR", description="Rows and money not carried exactly between layers."
    )
    payment_mismatch_max: float = Field(
        default=0.05,
        description="Largest share of a day's sold orders whose settled payments differ "
        "from their revenue before the reconciliation warns.",
    )
    reject_rate_max: float = Field(
        default=0.05, description="Largest share of a day's rows a source may reject (ERROR)."
    )
    # the generated sample puts one bad row of each kind (up to 9) into a source's first
    # file: on a tiny sample that alone is 20 % of a day, yet the data is healthy
    reject_min_rows: int = Field(
        default=10, description="Fewer rejects than this never fail a day (too few to judge)."
    )
    drift_window: int = Field(default=28, description="Trailing days a day is compared with.")
    drift_min_history: int = Field(default=7, description="Days of history drift needs.")
    drift_rows_z_warn: float = Field(default=3.0, description="|z| of the row count: WARN.")
    drift_rows_z_error: float = Field(default=6.0, description="|z| of the row count: ERROR.")
    drift_rows_change_warn: float = Field(
        default=0.4, description="Relative change of the row count a WARN also needs."
    )
    drift_rows_change_error: float = Field(
        default=0.75, description="Relative change of the row count an ERROR also needs."
    )
    drift_min_rows: int = Field(
        default=100,
        description="NULL shares and the category mix of a day with fewer rows are not judged "
        "(sampling noise alone moves them).",
    )
    drift_null_warn: float = Field(default=0.1, description="Null-share change: WARN.")
    drift_null_error: float = Field(default=0.3, description="Null-share change: ERROR.")
    drift_psi_warn: float = Field(default=0.1, description="Population stability index: WARN.")
    drift_psi_error: float = Field(default=0.25, description="Population stability index: ERROR.")
    schema_change_severity: Severity = Field(
        default="WARN", description="The table's columns changed since the last materialization."
    )


def load_quality(environ: dict[str, str] | None = None) -> QualityResource:
    """Defaults, overridden by the JSON file at ``ASSETS_PKG_QUALITY_FILE`` if set."""
    env = os.environ if environ is None else environ
    path = (env.get(QUALITY_FILE_VAR) or "").strip()
    if not path:
        return QualityResource()
    try:
        overrides = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{QUALITY_FILE_VAR}={path}: not a readable JSON file ({exc})") from exc
    if not isinstance(overrides, dict):
        raise ValueError(f"{QUALITY_FILE_VAR}={path}: expected a JSON object of thresholds")
    unknown = set(overrides) - set(QualityResource.model_fields)
    if unknown:
        raise ValueError(f"{QUALITY_FILE_VAR}={path}: unknown settings {sorted(unknown)}")
    return QualityResource(**overrides)
