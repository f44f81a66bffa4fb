"""Building blocks for warehouse and mart assets: a table, its SQL, its range write.

An asset built here writes the days of its run with one set-based statement per chunk of
days, in one transaction per chunk (delete that slice, insert it by name), then checks
exactly those rows and reports per-day counts.
"""

import datetime as dt
from dataclasses import dataclass, field

import dagster as dg
import duckdb

from assets_pkg.automation import follow_upstream
from assets_pkg.checks import OWNERS, key_check_results, key_check_specs
from assets_pkg.metadata import (
    ddl_table_schema,
    duckdb_table_schema,
    materialization_metadata,
    record_daily_counts,
)
from assets_pkg.partitions import chunks, run_days
from assets_pkg.resources.lake import LakeResource
from assets_pkg.resources.warehouse import (
    WarehouseResource,
    check_identifier,
    delete_range_if_exists,
    ensure_schemas,
    replace_slice,
)
from assets_pkg.retries import STORAGE_RETRY, storage_errors
from assets_pkg.staging.transforms import staging_schema

WAREHOUSE_POOL = "warehouse"
#: metadata key of a dimension's materialization: first day of facts it made stale
CHANGED_FROM = "changed_from"
#: days per transaction inside a ranged step (bounds memory of the staged Arrow input)
CHUNK_DAYS = 92


@dataclass(frozen=True)
class TableSpec:
    """A warehouse or mart table: where it lives, how it is filled, what its grain is."""

    table: str
    ddl: str
    select_sql: str
    key: list[str]
    description: str
    deps: list[dg.AssetKey]
    date_column: str | None = None
    #: relation name -> staging source registered for the statement (e.g. _stg_orders)
    staged: dict[str, str] = field(default_factory=dict)
    #: the SELECT takes the chunk's (start, end) as its parameters
    select_takes_range: bool = False
    column_descriptions: dict[str, str] = field(default_factory=dict)
    setup_sql: tuple[str, ...] = ()
    #: key columns that may never be NULL (default: all of them); a mart may group NULLs
    not_null: list[str] | None = None
    #: for a dimension: SQL giving the first day whose facts its rebuild made stale,
    #: comparing the table with its previous state in ``_before``
    changed_from_sql: str | None = None
    #: a mart's speed-layer table (in realtime.duckdb), whose days this mart replaces
    realtime_table: str | None = None

    @property
    def not_null_columns(self) -> list[str]:
        return self.key if self.not_null is None else self.not_null

    @property
    def schema_name(self) -> str:
        return self.table.split(".")[0]

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(self.table.split("."))


def register_staged(
    conn: duckdb.DuckDBPyConnection,
    lake: LakeResource,
    staged: dict[str, str],
    days: list[dt.date] | None,
) -> None:
    """Hand staging Parquet to DuckDB as Arrow (Polars scan, no row-by-row copies)."""
    from assets_pkg.contracts import SOURCES

    for relation, source in staged.items():
        check_identifier(relation)
        contract = SOURCES[source]
        dataset = f"staging/stg_{source}"
        frame = lake.scan(
            dataset, None if contract.is_dimension else days, staging_schema(contract)
        )
        conn.register(relation, frame.collect(engine="streaming").to_arrow())


def table_column_schema(conn: duckdb.DuckDBPyConnection, spec: TableSpec) -> dg.TableSchema:
    """The table's columns as the warehouse has them (what a materialization reports)."""
    return duckdb_table_schema(conn, spec.table, spec.column_descriptions)


def declared_column_schema(spec: TableSpec) -> dg.TableSchema:
    """The table's columns as its DDL defines them (the asset's definition metadata)."""
    return ddl_table_schema(spec.ddl, spec.table, spec.column_descriptions)


def _stats(
    conn: duckdb.DuckDBPyConnection, spec: TableSpec, where: str, params: list
) -> tuple[int, int, int]:
    keys = ", ".join(spec.key)
    any_null = " OR ".join(f"{k} IS NULL" for k in spec.not_null_columns)
    total, distinct, nulls = conn.execute(
        f"SELECT count(*), count(DISTINCT ({keys})), count(*) FILTER (WHERE {any_null}) "
        f"FROM {spec.table} WHERE {where}",
        params,
    ).fetchall()[0]
    return total, total - distinct, nulls


def validate_identifiers(spec: TableSpec) -> None:
    """Every name this module splices into SQL, checked once when the definitions load.

    Values always travel as bound parameters; names cannot, so only plain lower-case
    identifiers get this far, whoever writes the next spec.
    """
    names = [spec.table, *spec.key, *spec.not_null_columns, *spec.staged]
    names += [n for n in (spec.date_column, spec.realtime_table) if n]
    for name in names:
        check_identifier(name)


def build_table_asset(
    spec: TableSpec,
    partitions_def: dg.PartitionsDefinition | None,
    group_name: str,
    dimensions: frozenset[dg.AssetKey] = frozenset(),
) -> dg.AssetsDefinition:
    """A warehouse/mart asset: dated tables write their run's days, others are rebuilt whole.

    ``dimensions`` are the undated tables a dated one reads: automation does not follow
    them (see ``assets_pkg.automation``).
    """
    validate_identifiers(spec)
    key = spec.asset_key
    dated = spec.date_column is not None

    @dg.asset(
        key=key,
        deps=spec.deps,
        group_name=group_name,
        partitions_def=partitions_def if dated else None,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"duckdb"},
        owners=OWNERS,
        description=spec.description,
        metadata={"dagster/column_schema": declared_column_schema(spec)},
        check_specs=key_check_specs(key, spec.key, spec.not_null_columns),
        retry_policy=STORAGE_RETRY,
        pool=WAREHOUSE_POOL,
        automation_condition=follow_upstream(
            [d for d in spec.deps if d in dimensions] if dated else None
        ),
    )
    def _asset(
        context: dg.AssetExecutionContext,
        lake: LakeResource,
        warehouse: WarehouseResource,
        realtime: WarehouseResource,
    ) -> dg.MaterializeResult:
        with storage_errors():
            days = run_days(context) if dated else None
            with warehouse.get_connection() as conn:
                ensure_schemas(conn)
                for statement in spec.setup_sql:
                    conn.execute(statement)
                changed_from = None
                if days is None:
                    register_staged(conn, lake, spec.staged, None)
                    if spec.changed_from_sql:
                        conn.execute(spec.ddl)
                        conn.execute(f"CREATE OR REPLACE TEMP TABLE _before AS FROM {spec.table}")
                    replace_slice(conn, spec.table, ddl=spec.ddl, select_sql=spec.select_sql)
                    if spec.changed_from_sql:
                        changed_from = conn.execute(spec.changed_from_sql).fetchone()[0]
                    where, params = "TRUE", []
                    per_day = None
                else:
                    for chunk in chunks(days, CHUNK_DAYS):
                        bounds = [chunk[0], chunk[-1]]
                        register_staged(conn, lake, spec.staged, chunk)
                        replace_slice(
                            conn,
                            spec.table,
                            ddl=spec.ddl,
                            select_sql=spec.select_sql,
                            select_params=bounds if spec.select_takes_range else [],
                            where=f"{spec.date_column} BETWEEN ? AND ?",
                            where_params=bounds,
                        )
                    where, params = f"{spec.date_column} BETWEEN ? AND ?", [days[0], days[-1]]
                    counts = dict(
                        conn.execute(
                            f"SELECT {spec.date_column}, count(*) FROM {spec.table} "
                            f"WHERE {where} GROUP BY 1",
                            params,
                        ).fetchall()
                    )
                    per_day = {d: counts.get(d, 0) for d in days}
                total, duplicates, nulls = _stats(conn, spec, where, params)
                preview = conn.sql(
                    f"SELECT * FROM {spec.table} WHERE {where} LIMIT 5", params=params
                ).pl()
                column_schema = table_column_schema(conn, spec)
            if per_day is not None:
                record_daily_counts(context, per_day)
            if spec.realtime_table and days:
                # lambda reconciliation: the batch layer now has these days
                with realtime.get_connection() as conn:
                    delete_range_if_exists(
                        conn, spec.realtime_table, spec.date_column, days[0], days[-1]
                    )
            context.log.info(f"{spec.table}: {total} rows written")
            extra: dict = {"table": spec.table}
            if spec.changed_from_sql:
                # read by dimension_change_sensor: facts from this day on may be stale
                extra[CHANGED_FROM] = changed_from.isoformat() if changed_from else ""
            return dg.MaterializeResult(
                metadata=materialization_metadata(preview, total, column_schema, per_day) | extra,
                check_results=key_check_results(key, spec.key, duplicates, nulls, total),
            )

    return _asset


def build_table_assets(
    specs: list[TableSpec],
    partitions_def: dg.PartitionsDefinition,
    group_name: str,
) -> list[dg.AssetsDefinition]:
    dimensions = frozenset(s.asset_key for s in specs if s.date_column is None)
    return [build_table_asset(s, partitions_def, group_name, dimensions) for s in specs]
