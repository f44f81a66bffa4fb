"""Quality results as Dagster sees them: check specs, check results, held-back days, profiles.

A ranged run records one evaluation per check, so each evaluation carries its verdict per
day in ``day_results`` (``{"2024-01-02": {"passed": ..., "severity": ..., "message": ...}}``,
``"all"`` for an undated table); ``assets-pkg quality --date`` reads it back.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dagster as dg
import duckdb

from assets_pkg.quality.checks import DayResult, schema_change

RULE_DESCRIPTIONS = {
    "completeness": "required columns fully populated, declared columns above their share",
    "validity": "accepted values, ranges, non-negative money, e-mail shape",
    "referential_integrity": "foreign keys point at existing rows",
    "reconciliation": "rows and money carried from the layer below add up, per day",
    "reject_rate": "rejected rows of the source stay under the threshold, per day",
    "drift": "row count, NULL shares and category mix against the trailing days",
    "schema_change": "columns unchanged since the last materialization",
}
#: rules judged per day; an ERROR failure holds that day back from publication
GATING = {"completeness", "validity", "referential_integrity", "reconciliation", "reject_rate"}
GATING |= {"drift"}


def quality_check_specs(asset_key: dg.AssetKey, rules: list[str]) -> list[dg.AssetCheckSpec]:
    name = asset_key.path[-1]
    return [
        dg.AssetCheckSpec(
            f"{name}__{rule}",
            asset=asset_key,
            description=RULE_DESCRIPTIONS[rule]
            + (" (an ERROR holds the failing day back)" if rule in GATING else ""),
        )
        for rule in rules
    ]


def _day_key(day: dt.date | None) -> str:
    return "all" if day is None else day.isoformat()


def quality_check_results(
    asset_key: dg.AssetKey, rules: list[str], results: list[DayResult]
) -> list[dg.AssetCheckResult]:
    """One check result per rule, with every day's verdict in its metadata."""
    name = asset_key.path[-1]
    out = []
    for rule in rules:
        mine = [r for r in results if r.rule == rule]
        failed = [r for r in mine if not r.passed]
        if failed:
            severity = "ERROR" if any(r.severity == "ERROR" for r in failed) else "WARN"
        else:
            severity = mine[0].severity if mine else "WARN"
        shown = failed[:5]
        description = "; ".join(f"{_day_key(r.day)}: {r.message}" for r in shown)
        if len(failed) > len(shown):
            description += f"; and {len(failed) - len(shown)} more day(s)"
        metadata: dict[str, Any] = {
            "days_checked": len(mine),
            "days_failed": len(failed),
            "day_results": dg.MetadataValue.json(
                {
                    _day_key(r.day): {
                        "passed": r.passed,
                        "severity": r.severity,
                        "message": r.message,
                    }
                    for r in mine
                }
            ),
        }
        if failed:
            metadata["failed_day_metrics"] = dg.MetadataValue.json(
                {_day_key(r.day): r.metrics for r in failed[:20]}
            )
        elif mine:
            metadata["last_day_metrics"] = dg.MetadataValue.json(mine[-1].metrics)
        out.append(
            dg.AssetCheckResult(
                check_name=f"{name}__{rule}",
                asset_key=asset_key,
                passed=not failed,
                severity=dg.AssetCheckSeverity(severity),
                description=description or None,
                metadata=metadata,
            )
        )
    return out


def held_back(results: list[DayResult]) -> set[dt.date | None]:
    """Days with an ERROR failure of a gating rule: they are not published."""
    return {r.day for r in results if not r.passed and r.severity == "ERROR" and r.rule in GATING}


#: top values are counted for columns with at most this many distinct values (approx.): on an
#: id column they say nothing and the count is a hash table of every id
TOP_VALUES_MAX_DISTINCT = 100_000


def profile(
    conn: duckdb.DuckDBPyConnection, query: str, params: list, top: int = 3
) -> dg.MetadataValue:
    """Per-column profile of a query's rows: NULL share, distinct values, min, max, top values.

    One scan with plain aggregates: ``SUMMARIZE`` also computes quantiles, mean and standard
    deviation of every column, which the profile does not show and which cost 10x the scan.
    """
    columns = [(r[0], r[1]) for r in conn.execute(f"DESCRIBE {query}", params).fetchall()]
    lines = [
        "| column | type | null % | distinct (approx.) | min | max | top values |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    if not columns:
        return dg.MetadataValue.md("\n".join(lines))
    aggregates = ", ".join(
        f'count("{n}"), approx_count_distinct("{n}"), CAST(min("{n}") AS VARCHAR), '
        f'CAST(max("{n}") AS VARCHAR)'
        for n, _ in columns
    )
    row = conn.execute(f"SELECT count(*), {aggregates} FROM ({query})", params).fetchone()
    count = row[0]
    for i, (name, kind) in enumerate(columns):
        non_null, distinct, low, high = row[1 + 4 * i : 5 + 4 * i]
        null_pct = 100.0 * (count - non_null) / count if count else 0.0
        tops = ""
        if kind == "VARCHAR" and count and int(distinct or 0) > TOP_VALUES_MAX_DISTINCT:
            tops = "(key-like: too many distinct values)"
        elif kind == "VARCHAR" and count:
            values = conn.execute(
                f'SELECT "{name}", count(*) FROM ({query}) WHERE "{name}" IS NOT NULL '
                f"GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {int(top)}",
                params,
            ).fetchall()
            tops = ", ".join(f"{_cell(v)} ({n})" for v, n in values)
        lines.append(
            f"| {name} | {kind} | {float(null_pct or 0):.1f} | {distinct} | {_cell(low)} | "
            f"{_cell(high)} | {tops} |"
        )
    return dg.MetadataValue.md("\n".join(lines))


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 40 else text[:37] + "..."


def _columns(schema: dg.TableSchema) -> list[tuple[str, str, bool]]:
    return [(c.name, c.type, c.constraints.nullable) for c in schema.columns]


def schema_change_result(
    context: dg.AssetExecutionContext,
    schema: dg.TableSchema,
    metadata_key: str,
    severity: str,
) -> DayResult:
    """``schema`` against the one the last materialization recorded under ``metadata_key``."""
    event = context.instance.get_latest_materialization_event(context.asset_key)
    materialization = event.asset_materialization if event else None
    previous = materialization.metadata.get(metadata_key) if materialization else None
    before = _columns(previous.value) if previous is not None else None
    return schema_change(before, _columns(schema), severity)
