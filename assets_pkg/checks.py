"""Key checks every table carries: the grain's key is unique and never NULL.

They are emitted by the asset itself (``check_specs``) over exactly the rows it just
wrote, so a check on one day reads that day, not the whole table.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

OWNERS = ["team:data-platform"]


def key_check_specs(
    asset_key: dg.AssetKey, key: list[str], not_null: list[str] | None = None
) -> list[dg.AssetCheckSpec]:
    name = asset_key.path[-1]
    cols = ", ".join(key)
    null_cols = ", ".join(key if not_null is None else not_null)
    return [
        dg.AssetCheckSpec(
            f"{name}__unique_key",
            asset=asset_key,
            description=f"({cols}) is unique in every partition written",
            blocking=True,
        ),
        dg.AssetCheckSpec(
            f"{name}__not_null_key",
            asset=asset_key,
            description=f"({null_cols}) is never NULL",
            blocking=True,
        ),
    ]


def key_check_results(
    asset_key: dg.AssetKey, key: list[str], duplicates: int, null_keys: int, rows: int
) -> list[dg.AssetCheckResult]:
    name = asset_key.path[-1]
    return [
        dg.AssetCheckResult(
            check_name=f"{name}__unique_key",
            asset_key=asset_key,
            passed=duplicates == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"duplicate_rows": duplicates, "rows_checked": rows, "key": ", ".join(key)},
            description=None
            if duplicates == 0
            else f"{duplicates} rows repeat a ({', '.join(key)}) key",
        ),
        dg.AssetCheckResult(
            check_name=f"{name}__not_null_key",
            asset_key=asset_key,
            passed=null_keys == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"null_key_rows": null_keys, "rows_checked": rows},
            description=None if null_keys == 0 else f"{null_keys} rows have a NULL key column",
        ),
    ]


def frame_key_stats(
    df: pl.DataFrame, key: list[str], not_null: list[str] | None = None
) -> tuple[int, int]:
    """(duplicate rows, rows with a NULL key column) of a frame."""
    if df.height == 0:
        return 0, 0
    duplicates = 0
    # Distinct hashes are distinct keys: counting distinct 64-bit hashes is 2x to 4x cheaper
    # than distinct strings, and only a frame whose hashes repeat (a key that repeats, or a
    # collision) pays for the exact count as well.
    hashes = df[key[0]].hash() if len(key) == 1 else df.select(pl.struct(key).hash()).to_series()
    if hashes.n_unique() < df.height:
        # one key column: a hash set of its values, a quarter cheaper than unique rows
        distinct = df[key[0]].n_unique() if len(key) == 1 else df.select(key).n_unique()
        duplicates = df.height - distinct
    cols = key if not_null is None else not_null
    null_keys = df.filter(pl.any_horizontal([pl.col(k).is_null() for k in cols])).height
    return duplicates, null_keys
