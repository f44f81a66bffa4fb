"""The speed layer: today's sales by category and funnel, within a minute of a file landing.

Lambda, with one code path: right after an ingest pass writes the lake, the days it
touched within the last ``ASSETS_PKG_REALTIME_DAYS`` (up to the last partition: today by
default) are computed from the lake with the batch layer's own transforms and SQL, in an
in-memory DuckDB, and stored in a separate file (``realtime.duckdb``, tables
``marts.realtime_*``). That file is never held by a long warehouse step, so the speed
layer does not queue behind a backfill. When the batch mart of a day is written, that
day's speed-layer rows are deleted: readers take the speed layer for the days it has and
the batch marts for the rest, and the two agree on a day's numbers because they are the
same computation over the same rows.
"""

import datetime as dt

import dagster as dg
import duckdb
import polars as pl

from assets_pkg.checks import OWNERS
from assets_pkg.config import Settings
from assets_pkg.contracts import SOURCES
from assets_pkg.lake.ingest import ingest_lock
from assets_pkg.marts.assets import DAILY_FUNNEL, DAILY_SALES_BY_CATEGORY
from assets_pkg.metadata import ddl_table_schema, written_by
from assets_pkg.resources import PlatformResource
from assets_pkg.resources.lake import LakeResource
from assets_pkg.resources.warehouse import (
    WarehouseResource,
    arrow_view,
    check_identifier,
    ensure_schemas,
    replace_slice,
)
from assets_pkg.retries import STORAGE_RETRY, storage_errors
from assets_pkg.staging import transforms
from assets_pkg.staging.assets import scan_index
from assets_pkg.warehouse.assets import DIM_PRODUCT, FCT_ORDER_ITEMS, FCT_ORDERS, FCT_SESSIONS
from assets_pkg.warehouse.tables import TableSpec

#: speed-layer table -> the batch mart it stands in for
REALTIME = {
    "marts.realtime_sales_by_category": DAILY_SALES_BY_CATEGORY,
    "marts.realtime_funnel": DAILY_FUNNEL,
}
#: what the two marts are computed from, in order
CHAIN: list[TableSpec] = [
    DIM_PRODUCT,
    FCT_ORDER_ITEMS,
    FCT_ORDERS,
    FCT_SESSIONS,
    DAILY_SALES_BY_CATEGORY,
    DAILY_FUNNEL,
]


def realtime_ddl(table: str, mart: TableSpec) -> str:
    """The mart's DDL under the speed-layer name, plus when the row was computed."""
    ddl = mart.ddl.replace(mart.table, table).rstrip()
    assert ddl.endswith(")"), ddl
    return ddl[:-1].rstrip() + ",\n    as_of TIMESTAMP NOT NULL\n)\n"


def realtime_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(table.split("."))


def realtime_days(settings: Settings, touched: list[dt.date]) -> list[dt.date]:
    """The touched days inside the speed layer's window."""
    last = settings.last_partition()
    window = {last - dt.timedelta(days=i) for i in range(settings.realtime_days)}
    return sorted(d for d in set(touched) if d in window)


def lake_frame(lake: LakeResource, source: str, day: dt.date) -> pl.LazyFrame:
    """What staging would hold for ``day`` (dimensions: every snapshot), from the lake."""
    contract = SOURCES[source]
    if contract.is_dimension:
        rows = lake.scan(f"lake/{source}", None, contract.schema())
        return transforms.latest_snapshots(contract, rows)
    rows = lake.scan(f"lake/{source}", [day], contract.schema())
    return transforms.live_versions(contract, rows, scan_index(lake, contract), [day])


def compute_day(lake: LakeResource, day: dt.date) -> dict[str, pl.DataFrame]:
    """The speed-layer rows of one day: the batch SQL over that day's live lake rows."""
    with duckdb.connect(":memory:") as conn:
        conn.execute("SET TimeZone = 'UTC'")
        ensure_schemas(conn)
        for spec in CHAIN:
            for statement in spec.setup_sql:
                conn.execute(statement)
            for relation, source in spec.staged.items():
                check_identifier(relation)
                frame = lake_frame(lake, source, day).collect(engine="streaming")
                conn.register(relation, arrow_view(frame))
            replace_slice(
                conn,
                spec.table,
                ddl=spec.ddl,
                select_sql=spec.select_sql,
                select_params=[day, day] if spec.select_takes_range else [],
            )
        return {
            table: conn.sql(
                f"SELECT * FROM {mart.table} WHERE {mart.date_column} = ?", params=[day]
            ).pl()
            for table, mart in REALTIME.items()
        }


def publish_days(
    store: WarehouseResource, rows: dict[dt.date, dict[str, pl.DataFrame]], as_of: dt.datetime
) -> None:
    """Replace the given days of every speed-layer table, in one transaction."""
    with store.get_connection() as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS marts")
        conn.execute("BEGIN TRANSACTION")
        try:
            for table, mart in REALTIME.items():
                conn.execute(realtime_ddl(table, mart))
                for day, tables in rows.items():
                    conn.execute(f"DELETE FROM {table} WHERE {mart.date_column} = ?", [day])
                    frame = tables[table].with_columns(as_of=pl.lit(as_of))
                    conn.register("_rt", arrow_view(frame))
                    conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rt")
                    conn.unregister("_rt")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def build_realtime_specs() -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            key=realtime_key(table),
            group_name="marts",
            description=(
                f"Speed layer: {mart.description[0].lower()}{mart.description[1:]} Today "
                "(and the days just before) so far, refreshed by every ingest; the batch "
                f"{mart.table} replaces a day when it runs. In realtime.duckdb."
            ),
            kinds={"duckdb", "polars"},
            owners=OWNERS,
            metadata={
                "dagster/column_schema": ddl_table_schema(realtime_ddl(table, mart), table),
                "database": "realtime.duckdb",
                "dagster/code_references": written_by(compute_day),
            },
        )
        for table, mart in REALTIME.items()
    ]


@dg.op(
    description="Speed layer: recomputes today's (and recent) sales and funnel from the lake.",
    ins={"days": dg.In(list, description="ISO days the ingest pass wrote")},
    retry_policy=STORAGE_RETRY,
)
def refresh_realtime(
    context: dg.OpExecutionContext,
    days: list[str],
    platform: PlatformResource,
    lake: LakeResource,
    realtime: WarehouseResource,
) -> None:
    with storage_errors():
        settings = platform.settings()
        chosen = realtime_days(settings, [dt.date.fromisoformat(d) for d in days])
        if not chosen:
            context.log.info("no day in the speed layer's window was touched")
            return
        # under the ingest lock: the lake is not half-written while read, and refreshes
        # publish in the order they read it (a slow one never overwrites a newer one)
        with ingest_lock(settings.data_dir):
            rows = {day: compute_day(lake, day) for day in chosen}
            publish_days(realtime, rows, dt.datetime.now(dt.UTC).replace(tzinfo=None))
    for table in REALTIME:
        counts = {day: tables[table].height for day, tables in rows.items()}
        context.log_event(
            dg.AssetMaterialization(
                asset_key=realtime_key(table),
                metadata={
                    "days": ", ".join(d.isoformat() for d in chosen),
                    "rows_written": sum(counts.values()),
                },
            )
        )
