"""Materialization metadata shared by every layer: row counts, previews, column schemas."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Iterable
from typing import Any

import dagster as dg
import duckdb
import polars as pl

_DAGSTER_TYPES = {
    pl.String: "VARCHAR",
    pl.Int64: "BIGINT",
    pl.Int32: "INTEGER",
    pl.UInt32: "UINTEGER",
    pl.Boolean: "BOOLEAN",
    pl.Date: "DATE",
    pl.Float64: "DOUBLE",
}


def sql_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Decimal):
        return f"DECIMAL({dtype.precision},{dtype.scale})"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMP"
    return _DAGSTER_TYPES.get(type(dtype), str(dtype))


def frame_schema(
    schema: dict[str, pl.DataType],
    descriptions: dict[str, str] | None = None,
    not_null: tuple[str, ...] = (),
) -> dg.TableSchema:
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=name,
                type=sql_type(dtype),
                description=descriptions.get(name),
                constraints=dg.TableColumnConstraints(nullable=name not in not_null),
            )
            for name, dtype in schema.items()
        ]
    )


def duckdb_table_schema(
    conn: duckdb.DuckDBPyConnection, table: str, descriptions: dict[str, str] | None = None
) -> dg.TableSchema:
    """The column schema of ``schema.table`` as DuckDB has it (types, NOT NULL)."""
    descriptions = descriptions or {}
    schema, name = table.split(".")
    rows = conn.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, name],
    ).fetchall()
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=col,
                type=dtype,
                description=descriptions.get(col),
                constraints=dg.TableColumnConstraints(nullable=nullable == "YES"),
            )
            for col, dtype, nullable in rows
        ]
    )


def with_constraints(schema: dg.TableSchema, contract) -> dg.TableSchema:
    """A schema read from the warehouse, annotated with the contract's descriptions and rules.

    Types and nullability stay as the table has them (so a drifted table shows as it is);
    columns the contract does not know are kept, undescribed.
    """
    declared = {c.name: c for c in contract.columns}
    columns = []
    for col in schema.columns:
        rule = declared.get(col.name)
        if rule is None:
            columns.append(col)
            continue
        constraints = rule.constraints(contract.key)
        columns.append(
            dg.TableColumn(
                name=col.name,
                type=col.type,
                description=rule.description,
                constraints=dg.TableColumnConstraints(
                    nullable=col.constraints.nullable,
                    unique=constraints.unique,
                    other=constraints.other,
                ),
            )
        )
    return dg.TableSchema(columns=columns)


def ddl_table_schema(
    ddl: str, table: str, descriptions: dict[str, str] | None = None
) -> dg.TableSchema:
    """The column schema a ``CREATE TABLE`` statement defines, read back from DuckDB.

    The DDL runs in a throwaway in-memory database, so the static schema an asset declares
    is the one its table gets, without restating the columns or opening the warehouse.
    """
    schema = table.split(".")[0]
    with duckdb.connect(":memory:") as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        conn.execute(ddl)
        return duckdb_table_schema(conn, table, descriptions)


def markdown_preview(df: pl.DataFrame, rows: int = 5) -> str:
    """A small markdown table of the first rows (no pandas on the hot path)."""
    head = df.head(rows)
    if head.width == 0:
        return "_(no columns)_"

    def cell(v: Any) -> str:
        return "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(head.columns) + " |",
        "| " + " | ".join("---" for _ in head.columns) + " |",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in head.iter_rows()]
    if head.height == 0:
        lines.append("| " + " | ".join("" for _ in head.columns) + " |")
    return "\n".join(lines)


def materialization_metadata(
    df_preview: pl.DataFrame,
    row_count: int,
    schema: dg.TableSchema,
    per_day: dict[dt.date, int] | None = None,
) -> dict[str, Any]:
    """Metadata of one materialization; a dated run also gives its range's totals.

    Dagster copies a ranged step's metadata to the materialization of every partition in
    the range, so nothing here grows with the range: a table of every day's count was 9 KB
    of each of a year's 365 events per asset. Each day's own count is its partition's
    ``dagster/row_count`` (``record_daily_counts``).
    """
    meta: dict[str, Any] = {
        "dagster/column_schema": schema,
        "preview": dg.MetadataValue.md(markdown_preview(df_preview)),
    }
    if per_day is None:
        meta["dagster/row_count"] = row_count
    else:
        meta["rows_in_run"] = row_count
        meta["days_in_run"] = len(per_day)
    return meta


#: entries recorded once per run, on its last day: kilobytes each
HEAVY_ENTRIES = frozenset({"dagster/column_schema", "preview", "profile", "candidate_schema"})


def carrying_day(days: list[dt.date]) -> list[dt.date]:
    """The day whose materialization carries a run's heavy entries (``once_per_range``).

    Its profile and preview describe that day, as a one-day run of it would: a year's
    profile took 7 s of four staging steps (10M items) and was not what the day held.
    """
    return sorted(days)[-1:]


def once_per_range(
    context: dg.AssetExecutionContext, metadata: dict[str, Any], days: Iterable[dt.date] | None
) -> dict[str, Any]:
    """The step's metadata for a ranged run, its heavy entries moved onto the last day.

    Dagster copies a ranged step's metadata onto the materialization of each day: a year's
    backfill stored 365 copies of the column schemas, profile and preview per asset (about
    7 KB an event), and serializing them was a fifth of a 1M-item backfill. The last day's
    materialization is the asset's latest, the one the UI shows and the schema-change check
    reads; a one-day run keeps everything on its day.
    """
    days = sorted(days or [])
    if len(days) < 2:
        return metadata
    heavy = {k: v for k, v in metadata.items() if k in HEAVY_ENTRIES}
    context.add_asset_metadata(heavy, partition_key=days[-1].isoformat())
    return {k: v for k, v in metadata.items() if k not in HEAVY_ENTRIES}


def record_daily_counts(context: dg.AssetExecutionContext, per_day: dict[dt.date, int]) -> None:
    """Row counts that are true per partition, also after a ranged run.

    A ranged step records one materialization per day of its range; metadata scoped to a
    partition overrides the step's, so each day shows its own ``dagster/row_count``.
    """
    for day, rows in per_day.items():
        context.add_asset_metadata({"dagster/row_count": rows}, partition_key=day.isoformat())


def written_by(fn) -> dg.CodeReferencesMetadataValue:
    """A source link for a spec (``with_source_code_references`` links only asset bodies)."""
    return dg.CodeReferencesMetadataValue(
        code_references=[
            dg.LocalFileCodeReference(
                file_path=inspect.getsourcefile(fn),
                line_number=inspect.getsourcelines(fn)[1],
                label=f"written by {fn.__name__}",
            )
        ]
    )
