"""Parquet storage for the lake and staging layers, with atomic per-file writes."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field


def partition_dir(day: dt.date) -> str:
    return f"date={day.isoformat()}"


class LakeResource(dg.ConfigurableResource):
    """The lake root (``ASSETS_PKG_LAKE_URL``): ``lake/`` and ``staging/`` datasets live under it.

    Every write goes to a temporary name beside its target and is renamed into place,
    so a reader never sees half a file and a crash leaves the previous file intact.
    """

    root: str = Field(description="Local directory of the lake (default <data dir>/lake).")

    @property
    def base(self) -> Path:
        if self.root.startswith("s3://"):
            raise dg.Failure(
                "An s3:// lake is not supported by this build; set ASSETS_PKG_LAKE_URL to a "
                "local directory."
            )
        return Path(self.root)

    def path(self, *parts: str) -> Path:
        return self.base.joinpath(*parts)

    def write(self, df: pl.DataFrame, *parts: str) -> Path:
        """Write one Parquet file atomically (temp file in the same directory, then rename)."""
        target = self.path(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            df.write_parquet(tmp, compression="zstd", statistics=True)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target

    def read(self, *parts: str, schema: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
        """One Parquet file, or an empty frame of ``schema`` when it does not exist yet."""
        target = self.path(*parts)
        if target.exists():
            return pl.read_parquet(target)
        if schema is None:
            raise FileNotFoundError(target)
        return pl.DataFrame(schema=schema)

    def partition_files(self, dataset: str, days: list[dt.date]) -> list[Path]:
        """The Parquet files of a Hive-partitioned dataset for the given days (skips temps)."""
        files: list[Path] = []
        for day in days:
            folder = self.path(dataset, partition_dir(day))
            if folder.is_dir():
                files.extend(
                    sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))
                )
        return files

    def dataset_files(self, dataset: str) -> list[Path]:
        folder = self.path(dataset)
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith("."))

    def scan(
        self, dataset: str, days: list[dt.date] | None, schema: dict[str, pl.DataType]
    ) -> pl.LazyFrame:
        """Lazy scan of a dataset (all of it, or only the given days' partitions)."""
        files = self.dataset_files(dataset) if days is None else self.partition_files(dataset, days)
        if not files:
            return pl.LazyFrame(schema=schema)
        return pl.scan_parquet(
            [str(f) for f in files],
            hive_partitioning=False,
            schema=schema,
            missing_columns="insert",
            extra_columns="ignore",
        )
