"""Lake datasets and the ingest job that fills them from the landing zone.

The lake is written by ingest, not computed from another asset, so its datasets are
asset specs; the ingest op records a materialization for each daily partition it wrote,
so the UI's partition status follows what actually landed.
"""

from collections.abc import Iterator

import dagster as dg
from dagster._core.events import DagsterEventBatchMetadata, generate_event_batch_id
from pydantic import Field

from assets_pkg.checks import OWNERS
from assets_pkg.contracts import INGEST_ORDER, SOURCES, column_schema
from assets_pkg.lake.ingest import REJECTS_DDL, IngestReport, publish_rejects, run_ingest
from assets_pkg.marts.realtime import refresh_realtime
from assets_pkg.metadata import ddl_table_schema, written_by
from assets_pkg.resources import LakeResource, PlatformResource, WarehouseResource
from assets_pkg.retries import STORAGE_RETRY, storage_errors
from assets_pkg.staging.assets import lake_key
from assets_pkg.warehouse.tables import WAREHOUSE_POOL

REJECTS_KEY = dg.AssetKey(["quarantine", "rejects"])
REJECTS_COLUMNS = {
    "row_number": "1-based data row of the file (line, for JSON Lines)",
    "reason": "first failing rule: missing_required, bad_timestamp, bad_number, ...",
    "raw_record": "the row as text",
    "partition_date": "business date of the row, NULL when it has no readable date",
    "resolved_at": "when a later pass loaded it (an orphan item whose order arrived)",
}


def build_lake_specs(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetSpec]:
    specs = [
        dg.AssetSpec(
            key=lake_key(source),
            group_name="lake",
            description=(
                f"Every valid {source} row ever landed (one row per version), as Parquet"
                + (", partitioned by business date." if SOURCES[source].partitioned else ".")
            ),
            partitions_def=partitions_def if SOURCES[source].partitioned else None,
            kinds={"parquet", "polars"},
            owners=OWNERS,
            metadata={
                "dagster/column_schema": column_schema(SOURCES[source]),
                "dagster/code_references": written_by(run_ingest),
            },
        )
        for source in INGEST_ORDER
    ]
    specs.append(
        dg.AssetSpec(
            key=REJECTS_KEY,
            group_name="quarantine",
            description="One row per rejected landing row, with its reason and raw record.",
            kinds={"duckdb"},
            owners=OWNERS,
            metadata={
                "dagster/column_schema": ddl_table_schema(
                    REJECTS_DDL, "quarantine.rejects", REJECTS_COLUMNS
                ),
                "dagster/code_references": written_by(publish_rejects),
            },
        )
    )
    return specs


def lake_materializations(report: IngestReport, in_range) -> list[dg.AssetMaterialization]:
    events: list[dg.AssetMaterialization] = []
    for source, r in report.sources.items():
        base = {"ingest_id": report.ingest_id}
        if SOURCES[source].partitioned:
            for day in sorted(d for d in r.touched if in_range(d)):
                events.append(
                    dg.AssetMaterialization(
                        asset_key=lake_key(source),
                        partition=day.isoformat(),
                        metadata=base | {"rows_written": r.rows_per_day.get(day, 0)},
                    )
                )
        elif r.files_loaded:
            events.append(
                dg.AssetMaterialization(
                    asset_key=lake_key(source),
                    metadata=base | {"dagster/row_count": r.rows_loaded},
                )
            )
    return events


def recorded(
    context: dg.OpExecutionContext, materializations: list[dg.AssetMaterialization]
) -> Iterator[dg.DagsterEvent]:
    """What ``context.log_event`` records for each materialization, written as one batch.

    A pass over a year of landing records about 1,500 lake partitions. Logged one by one,
    each was its own transactions in the run's and the index's event-log databases: 2.8 s
    at the end of a 10M-item pass, on one core. Marked as one batch, the instance writes
    them together (``DAGSTER_EVENT_BATCH_SIZE``), as Dagster does for the materializations
    of a ranged asset step; the op yields the events, as ``log_event`` leaves them to be.
    """
    step = context.get_step_execution_context()
    batch = generate_event_batch_id()
    last = len(materializations) - 1
    for i, materialization in enumerate(materializations):
        yield dg.DagsterEvent.asset_materialization(
            step, materialization, DagsterEventBatchMetadata(batch, i == last)
        )


class IngestConfig(dg.Config):
    """Which landed files one ingest run takes."""

    files: list[str] = Field(
        default_factory=list,
        description="`source/name` of the files to take (a sensor's micro-batch); empty: all.",
    )


@dg.op(
    description="One pass over the landing zone: parse, validate, write the lake, archive.",
    retry_policy=STORAGE_RETRY,
    out=dg.Out(list, description="ISO days whose lake partitions this pass wrote"),
)
def ingest_landing(
    context: dg.OpExecutionContext,
    config: IngestConfig,
    platform: PlatformResource,
    lake: LakeResource,
) -> Iterator[dg.DagsterEvent | dg.Output]:
    with storage_errors():
        # no warehouse here: rejects are staged beside the lake and published by the next
        # op, so ingest never waits behind a long warehouse step
        settings = platform.settings()
        report = run_ingest(
            settings,
            lake,
            run_id=context.run_id,
            log=context.log.warning,
            only=config.files or None,
        )
        yield from recorded(context, lake_materializations(report, settings.in_range))
        for source, r in report.sources.items():
            context.log.info(
                f"{source}: {len(r.files_loaded)} file(s) loaded, {r.rows_loaded} rows, "
                f"{r.rows_rejected} rejected, {len(r.files_quarantined)} file(s) quarantined, "
                f"{len(r.files_unchanged)} unchanged re-landing(s)"
            )
        yield dg.Output(
            sorted(d.isoformat() for d in report.touched_dates() if settings.in_range(d))
        )


@dg.op(
    description="Loads staged rejects into quarantine.rejects, in one transaction.",
    retry_policy=STORAGE_RETRY,
    pool=WAREHOUSE_POOL,
    ins={"after": dg.In(dg.Nothing)},
)
def publish_quarantine(
    context: dg.OpExecutionContext, lake: LakeResource, warehouse: WarehouseResource
) -> None:
    with storage_errors():
        sets = publish_rejects(lake, warehouse)
        with warehouse.get_connection(read_only=True) as conn:
            rows, open_orphans = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE reason = 'orphan_order_item' "
                "AND resolved_at IS NULL) FROM quarantine.rejects"
            ).fetchone()
        context.log_event(
            dg.AssetMaterialization(
                asset_key=REJECTS_KEY,
                metadata={
                    "reject_sets_published": sets,
                    "dagster/row_count": rows,
                    "unresolved_orphan_items": open_orphans,
                },
            )
        )


@dg.job(
    name="ingest_job",
    description="Ingest what has landed (run by the landing sensor and `assets-pkg ingest`).",
    executor_def=dg.in_process_executor,
    tags={"layer": "lake"},
)
def ingest_job() -> None:
    # the speed layer first: publishing rejects may wait for the warehouse pool
    days = ingest_landing()
    publish_quarantine(after=refresh_realtime(days))
