"""Staging assets: typed, one row per key, Parquet partitioned by business date."""

import contextlib
import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from assets_pkg.automation import follow_upstream
from assets_pkg.checks import (
    OWNERS,
    frame_key_stats,
    key_check_results,
    key_check_specs,
)
from assets_pkg.contracts import (
    DIMENSION_SOURCES,
    FACT_SOURCES,
    SOURCES,
    SourceContract,
    TableContract,
    staging_contract,
)
from assets_pkg.lake.ingest import index_schema
from assets_pkg.metadata import (
    carrying_day,
    frame_schema,
    materialization_metadata,
    once_per_range,
    record_daily_counts,
)
from assets_pkg.partitions import chunks, run_days
from assets_pkg.prefetch import Behind, prefetched
from assets_pkg.quality.checks import (
    DayResult,
    counted_rules,
    reject_rate,
)
from assets_pkg.quality.config import QualityResource
from assets_pkg.quality.results import (
    held_back,
    profile,
    quality_check_results,
    quality_check_specs,
    schema_change_result,
)
from assets_pkg.resources.lake import LakeResource, index_parts, partition_dir
from assets_pkg.resources.warehouse import WarehouseResource, arrow_view, table_exists
from assets_pkg.retries import STORAGE_RETRY, storage_errors
from assets_pkg.staging import transforms

#: days handled per chunk inside one (possibly year-long) ranged step, to bound memory
CHUNK_DAYS = 31

GRAIN = {
    "orders": "one row per order (its live version), dated by order_ts",
    "order_items": "one row per order line (live version), dated by its order's order_ts",
    "payments": "one row per payment (its live version), dated by paid_ts",
    "events": "one row per event (its first delivery), dated by event_ts",
    "customers": "one row per customer snapshot (customer_id, updated_at)",
    "products": "one row per product snapshot (product_id, updated_at)",
}


def staging_key(source: str) -> dg.AssetKey:
    return dg.AssetKey(["staging", f"stg_{source}"])


def lake_key(source: str) -> dg.AssetKey:
    return dg.AssetKey(["lake", source])


def _schema(contract: SourceContract) -> dg.TableSchema:
    return frame_schema(
        transforms.staging_schema(contract),
        {c.name: c.description for c in contract.columns}
        | {"_file_name": "landing file of this version", "_row_number": "row in that file"},
        not_null=tuple(contract.required),
    )


def _asset_args(source: str) -> dict:
    """What every staging asset declares, dated or not."""
    contract = SOURCES[source]
    key = staging_key(source)
    return {
        "key": key,
        "deps": [lake_key(source)],
        "group_name": "staging",
        "backfill_policy": dg.BackfillPolicy.single_run(),
        "kinds": {"polars", "parquet"},
        "owners": OWNERS,
        "description": f"Staged {source}: {GRAIN[source]}.",
        "check_specs": key_check_specs(key, list(contract.key)),
        "retry_policy": STORAGE_RETRY,
        "metadata": {"dagster/column_schema": _schema(contract)},
        "automation_condition": follow_upstream(),
    }


class LakeDataError(dg.Failure):
    """Lake data staging cannot trust: a corrupt file, or live rows the lake no longer has.

    Retrying reads the same bytes again, so the step fails at once; the lake is rebuilt
    from ``archive/`` (``assets-pkg repair-lake``) and the days are run again.
    """

    def __init__(self, message: str) -> None:
        super().__init__(
            description=f"{message} (a permanent error: not retried)", allow_retries=False
        )


REPAIR_HINT = (
    "rebuild the lake from archive/ with `assets-pkg repair-lake`, then run these days again"
)


def _corrupt_file(lake: LakeResource, files: list, error: Exception) -> LakeDataError:
    """Name the file behind a Polars decode error (only on the failure path: reads each file)."""
    for path in files:
        try:
            pl.read_parquet(path, storage_options=lake.storage_options())
        except pl.exceptions.PolarsError as exc:
            return LakeDataError(
                f"lake file {path} is corrupt ({type(exc).__name__}: {exc}); {REPAIR_HINT}"
            )
    return LakeDataError(
        f"the lake could not be decoded ({type(error).__name__}: {error}); {REPAIR_HINT}"
    )


def collect_lake(lake: LakeResource, frame: pl.LazyFrame, files: list) -> pl.DataFrame:
    """Collect a frame over lake files, turning a decode error into one naming the file."""
    try:
        return frame.collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise _corrupt_file(lake, files, exc) from exc


def index_day_counts(index: pl.LazyFrame, days: list[dt.date]) -> dict[dt.date, int]:
    """Live rows per day of ``days``, as the version index records them.

    Counted once per step: per chunk, each count streamed the whole index again (a year of
    10M-item events: 12 passes over 18.8M entries, 1.2 s of the step).
    """
    return dict(
        index.filter(pl.col("date").is_in(days)).group_by("date").len().collect().iter_rows()
    )


def check_complete(
    source: str,
    expected: dict[dt.date, int],
    found: dict[dt.date, int],
    days: list[dt.date],
    files: list,
) -> None:
    """Fail when the lake holds fewer live rows for a day than the version index records
    (``expected``, from ``index_day_counts``).

    A deleted partition folder (or file) would otherwise stage as an empty day and wipe
    that day from the warehouse and the marts.
    """
    short = [d for d in days if found.get(d, 0) < expected.get(d, 0)]
    if not short:
        return
    present = {Path(f).parent.name for f in files}
    details = []
    for day in short:
        folder = f"lake/{source}/{partition_dir(day)}"
        state = "is missing" if partition_dir(day) not in present else "lacks rows"
        details.append(
            f"{day}: {folder} {state} ({expected[day]} live rows in the version index, "
            f"{found.get(day, 0)} found)"
        )
    raise LakeDataError(
        f"{source}: lake data missing for {len(short)} day(s): {'; '.join(details)}; "
        f"nothing was staged for these days; {REPAIR_HINT}"
    )


def scan_index(lake: LakeResource, contract: SourceContract) -> pl.LazyFrame:
    """The version index, read when collected (only while ingest cannot replace it)."""
    return lake.scan_file(*index_parts(contract.name), schema=index_schema(contract))


def pinned_index(
    lake: LakeResource, contract: SourceContract
) -> contextlib.AbstractContextManager[pl.LazyFrame]:
    """The version index as it is now, unchanged by passes that commit while it is held."""
    return lake.pinned_scan(*index_parts(contract.name), schema=index_schema(contract))


FACT_RULES = ["completeness", "validity", "reject_rate", "schema_change"]
DIMENSION_RULES = ["completeness", "validity", "schema_change"]


def reject_counts(
    warehouse: WarehouseResource, source: str, days: list[dt.date]
) -> dict[dt.date, int]:
    """Unresolved rejects of a source per day (``quarantine.rejects``), one short read."""
    with warehouse.get_connection() as conn:
        if not table_exists(conn, "quarantine.rejects"):
            return {}
        return dict(
            conn.execute(
                "SELECT partition_date, count(*) FROM quarantine.rejects "
                "WHERE source = ? AND resolved_at IS NULL AND partition_date BETWEEN ? AND ? "
                "GROUP BY 1",
                [source, days[0], days[-1]],
            ).fetchall()
        )


def check_candidate(
    conn: duckdb.DuckDBPyConnection,
    contract: TableContract,
    frame: pl.DataFrame,
    days: list[dt.date] | None,
    quality: QualityResource,
) -> list[DayResult]:
    """Completeness and validity of rows about to be staged, per day."""
    conn.register("_candidate", arrow_view(frame))
    try:
        return counted_rules(conn, "_candidate", contract, days, quality)
    finally:
        conn.unregister("_candidate")


def staged_profile(lake: LakeResource, source: str, days: list[dt.date] | None) -> dg.MetadataValue:
    """Per-column profile of what the staging table now holds for ``days`` (all: None)."""
    contract = SOURCES[source]
    dataset = f"staging/stg_{source}"
    with duckdb.connect() as conn:
        if not lake.is_s3:
            files = (
                lake.partition_files(dataset, days)
                if days is not None
                else lake.dataset_files(dataset)
            )
            if files:
                # DuckDB streams the files: a registered frame is collected whole per query
                return profile(
                    conn,
                    "SELECT * FROM read_parquet(?, hive_partitioning = false)",
                    [[str(f) for f in files]],
                )
        conn.register("_staged", lake.scan(dataset, days, transforms.staging_schema(contract)))
        return profile(conn, "SELECT * FROM _staged", [])


def _fact_asset(source: str, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    contract = SOURCES[source]
    table = staging_contract(contract)
    key = staging_key(source)
    name = key.path[-1]
    schema = transforms.staging_schema(contract)
    args = _asset_args(source)
    args["check_specs"] = args["check_specs"] + quality_check_specs(key, FACT_RULES)

    @dg.asset(partitions_def=partitions_def, **args)
    def _asset(
        context: dg.AssetExecutionContext,
        lake: LakeResource,
        warehouse: WarehouseResource,
        quality: QualityResource,
    ) -> dg.MaterializeResult:
        # the version index as it is now, for the whole run: the lake only grows past it
        # (a pass writes its lake files before its index), so every version it lists is read
        with storage_errors(), pinned_index(lake, contract) as index:
            days = run_days(context)
            expected = index_day_counts(index, days)
            rejects = reject_counts(warehouse, source, days)
            counts: dict[dt.date, int] = {}
            duplicates = null_keys = 0
            preview = pl.DataFrame(schema=schema)
            results: list[DayResult] = []
            held: set = set()

            def live_chunks() -> Iterator[tuple[list[dt.date], list, pl.DataFrame]]:
                for chunk in chunks(days, CHUNK_DAYS):
                    rows = lake.scan(f"lake/{source}", chunk, contract.schema())
                    files = lake.partition_files(f"lake/{source}", chunk)
                    live = transforms.live_versions(contract, rows, index, chunk)
                    yield chunk, files, collect_lake(lake, live, files)

            # the next chunk is read from the lake while this one is checked, and this one's
            # days are written while the next one is checked (one write in flight)
            with (
                duckdb.connect() as conn,
                ThreadPoolExecutor(1, thread_name_prefix="staging_write") as pool,
            ):
                behind = Behind(pool)
                for chunk, files, df in prefetched(live_chunks()):
                    dup, nulls = frame_key_stats(df, list(contract.key))
                    if dup:  # a version stored twice (``live_versions``): stage one copy
                        df = transforms.one_copy(df)
                        dup, nulls = frame_key_stats(df, list(contract.key))
                    by_day = transforms.day_frames(contract, df)
                    # before any write: a short day must not replace good staging with nothing
                    check_complete(
                        source, expected, {d: g.height for d, g in by_day.items()}, chunk, files
                    )
                    checked = check_candidate(conn, table, df, chunk, quality)
                    checked += reject_rate(
                        {d: g.height for d, g in by_day.items()}, rejects, chunk, quality
                    )
                    results += checked
                    chunk_held = held_back(checked)
                    held |= chunk_held
                    # write, check, publish: a held-back day keeps its previous rows
                    parts = {
                        day: by_day.get(day, pl.DataFrame(schema=schema))
                        for day in chunk
                        if day not in chunk_held
                    }
                    behind.submit(
                        lake.write_many,
                        [
                            (part, ("staging", name, partition_dir(day), "data.parquet"))
                            for day, part in parts.items()
                        ],
                    )
                    counts |= {day: part.height for day, part in parts.items()}
                    duplicates += dup
                    null_keys += nulls
                    if by_day:
                        preview = by_day[max(by_day)].head(5)
                behind.wait()
            results.append(
                schema_change_result(
                    context,
                    frame_schema(preview.schema),
                    "candidate_schema",
                    quality.schema_change_severity,
                )
            )
            total = sum(counts.values())
            record_daily_counts(context, counts)
            context.log.info(f"{name}: {total} rows over {len(counts)} day(s)")
            metadata = materialization_metadata(preview, total, _schema(contract), counts)
            metadata["candidate_schema"] = frame_schema(preview.schema)
            metadata["profile"] = staged_profile(lake, source, carrying_day(days))
            if held:
                metadata["held_back_days"] = dg.MetadataValue.json(
                    sorted(d.isoformat() for d in held)
                )
                context.log.warning(
                    f"{name}: held back {len(held)} day(s) that failed an ERROR check; "
                    "they keep their previous rows"
                )
            return dg.MaterializeResult(
                metadata=once_per_range(context, metadata, days),
                check_results=key_check_results(
                    key, list(contract.key), duplicates, null_keys, total
                )
                + quality_check_results(key, FACT_RULES, results),
            )

    return _asset


def _dimension_asset(source: str) -> dg.AssetsDefinition:
    contract = SOURCES[source]
    table = staging_contract(contract)
    key = staging_key(source)
    name = key.path[-1]
    args = _asset_args(source)
    args["check_specs"] = args["check_specs"] + quality_check_specs(key, DIMENSION_RULES)

    @dg.asset(**args)
    def _asset(
        context: dg.AssetExecutionContext, lake: LakeResource, quality: QualityResource
    ) -> dg.MaterializeResult:
        with storage_errors():
            rows = lake.scan(f"lake/{source}", None, contract.schema())
            files = lake.dataset_files(f"lake/{source}")
            df = collect_lake(lake, transforms.latest_snapshots(contract, rows), files)
            with duckdb.connect() as conn:
                results = check_candidate(conn, table, df, None, quality)
            held = held_back(results)
            if not held:
                lake.write(df, "staging", name, "data.parquet")
            else:
                context.log.warning(f"{name}: failed an ERROR check; the previous snapshot stays")
            results.append(
                schema_change_result(
                    context,
                    frame_schema(df.schema),
                    "candidate_schema",
                    quality.schema_change_severity,
                )
            )
            duplicates, null_keys = frame_key_stats(df, list(contract.key))
            context.log.info(f"{name}: {df.height} snapshots")
            metadata = materialization_metadata(df, df.height, _schema(contract))
            metadata["candidate_schema"] = frame_schema(df.schema)
            with duckdb.connect() as conn:
                conn.register("_staged", arrow_view(df))
                metadata["profile"] = profile(conn, "SELECT * FROM _staged", [])
            if held:
                metadata["held_back_days"] = dg.MetadataValue.json(["all"])
            return dg.MaterializeResult(
                metadata=metadata,
                check_results=key_check_results(
                    key, list(contract.key), duplicates, null_keys, df.height
                )
                + quality_check_results(key, DIMENSION_RULES, results),
            )

    return _asset


def build_staging_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [_fact_asset(s, partitions_def) for s in FACT_SOURCES] + [
        _dimension_asset(s) for s in DIMENSION_SOURCES
    ]
