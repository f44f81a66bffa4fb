"""The hand-written baselines of ``benchmarks/classic.py`` equal the project's marts.

A small clean sample is generated in a temp dir, one day either side of the partition
range so the baselines' date filter is exercised; the project ingests and backfills it,
then the pandas pipeline and the DuckDB floor read the same (archived) landing files.
Their marts must equal ``marts.*`` row for row, to the cent.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from assets_pkg.cli.main import do_backfill, do_generate, do_ingest
from assets_pkg.config import Settings
from assets_pkg_tests.conftest import END, START, use_temp_platform
from benchmarks import classic


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Path]]:
    root = tmp_path_factory.mktemp("classic")
    with pytest.MonkeyPatch.context() as monkeypatch:
        settings = use_temp_platform(root, monkeypatch)
        days = (END - START).days + 3
        do_generate(settings, START - dt.timedelta(days=1), days, seed=5, scale=0.2, clean=True)
        do_ingest(settings)
        do_backfill(settings, START, END)
        yield settings, root


@pytest.fixture(scope="module")
def expected(platform: tuple[Settings, Path]) -> dict[str, pl.DataFrame]:
    settings, _ = platform
    marts = classic.read_marts(settings.warehouse_path, "duckdb")
    assert all(marts[m].height > 0 for m in classic.MARTS)
    return marts


def _landing(settings: Settings) -> Path:
    # ingest moved every landed file to archive/, under its own name
    return settings.archive_dir


def test_pandas_pipeline_equals_the_project(platform, expected):
    settings, root = platform
    db = root / "pandas.sqlite"
    counts = classic.pandas_pipeline(_landing(settings), db, start=START, end=END)
    assert counts == {m: expected[m].height for m in classic.MARTS}
    assert classic.compare_marts(expected, classic.read_marts(db, "sqlite")) == []


def test_duckdb_floor_equals_the_project(platform, expected):
    settings, root = platform
    db = root / "floor.duckdb"
    counts = classic.duckdb_floor(_landing(settings), db, start=START, end=END)
    assert counts == {m: expected[m].height for m in classic.MARTS}
    assert classic.compare_marts(expected, classic.read_marts(db, "duckdb")) == []


def test_compare_marts_names_the_difference(expected):
    changed = dict(expected)
    sales = expected["daily_sales"]
    changed["daily_sales"] = sales.with_columns(
        order_count=pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.col("order_count") + 1)
        .otherwise(pl.col("order_count"))
    )
    problems = classic.compare_marts(expected, changed)
    day = sales["order_date"][0]
    assert len(problems) == 1
    assert "daily_sales" in problems[0] and str(day) in problems[0]
    assert "order_count" in problems[0]


def test_spark_baseline_is_optional(monkeypatch):
    # a None entry makes ``import pyspark`` raise ImportError, as when it is not installed
    monkeypatch.setitem(sys.modules, "pyspark", None)
    assert classic.spark_daily_sales_by_category(Path("/nonexistent")) is None
