"""The real daemon: event files dropped into the landing zone one after another reach the
speed layer (or, once the batch day has run, the batch mart), every event counted once."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time

import dagster as dg
import duckdb
import polars as pl

from assets_pkg.instance import TEMPLATE
from assets_pkg.lake.manifest import Manifest
from assets_pkg_tests.conftest import land, use_temp_platform

DAY = dt.date(2024, 3, 10)
FILES = 8
STEPS = ["page_view", "product_view", "add_to_cart", "checkout", "purchase"]


def session_file(n: int) -> str:
    # session n reaches step n % 5 of the funnel
    kinds = STEPS[: n % len(STEPS) + 1]
    return "".join(
        f'{{"event_id": "E{n}-{i}", "session_id": "S{n}", "event_type": "{kind}", '
        f'"event_ts": "{DAY}T1{n % 10}:0{i}:00Z"}}\n'
        for i, kind in enumerate(kinds)
    )


def _read(path, sql: str) -> list[tuple]:
    for _ in range(400):
        try:
            with duckdb.connect(str(path), read_only=True) as conn:
                return conn.execute(sql).fetchall()
        except duckdb.IOException:
            time.sleep(0.05)  # a writer has the file this moment
        except duckdb.CatalogException:
            return []  # not created yet
    raise AssertionError(f"{path} stayed locked")


def current_funnel(settings) -> tuple | None:
    """What a reader sees for DAY: the speed layer if it has the day, else the batch mart."""
    columns = "sessions, product_views, add_to_cart, checkouts, purchases"
    for path, table in (
        (settings.realtime_path, "marts.realtime_funnel"),
        (settings.warehouse_path, "marts.daily_funnel"),
    ):
        if path.exists():
            rows = _read(path, f"SELECT {columns} FROM {table} WHERE date = DATE '{DAY}'")
            if rows:
                return rows[0]
    return None


def test_files_dropped_into_a_running_daemon_reach_the_speed_layer(tmp_path, monkeypatch):
    settings = use_temp_platform(tmp_path, monkeypatch, start=DAY - dt.timedelta(days=2), end=DAY)
    monkeypatch.setenv("ASSETS_PKG_SENSOR_INTERVAL_S", "1")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(TEMPLATE, home / "dagster.yaml")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "dagster._daemon", "run", "-m", "assets_pkg.definitions"],
        cwd=tmp_path,
        env=dict(os.environ),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for n in range(FILES):
            land(settings, "events", f"events_{n:03d}.jsonl", session_file(n))
            time.sleep(0.5)
        # at-least-once delivery: a producer sends file 3 again under another name
        land(settings, "events", "events_003_redelivered.jsonl", session_file(3))
        expected = (
            FILES,
            sum(1 for n in range(FILES) if n % 5 >= 1),
            sum(1 for n in range(FILES) if n % 5 >= 2),
            sum(1 for n in range(FILES) if n % 5 >= 3),
            sum(1 for n in range(FILES) if n % 5 >= 4),
        )
        deadline = time.monotonic() + 180
        seen = None
        while seen != expected:
            assert daemon.poll() is None, "the daemon exited"
            assert time.monotonic() < deadline, f"reader sees {seen}, expected {expected}"
            time.sleep(0.5)
            seen = current_funnel(settings)
        # let runs in flight finish before looking at them
        with dg.DagsterInstance.from_config(str(home)) as instance:
            deadline = time.monotonic() + 180
            while instance.get_run_records(
                filters=dg.RunsFilter(
                    statuses=[
                        dg.DagsterRunStatus.QUEUED,
                        dg.DagsterRunStatus.STARTING,
                        dg.DagsterRunStatus.STARTED,
                    ]
                )
            ):
                assert time.monotonic() < deadline, "runs never settled"
                time.sleep(1)
            runs = instance.get_run_records()
            ingests = [r for r in runs if r.dagster_run.job_name == "ingest_job"]
            assert ingests and {r.dagster_run.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
            assert len(ingests) <= FILES + 1
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
    # every file once in the manifest, every event once in the lake
    assert Manifest(settings.manifest_path).counts() == {"loaded": FILES + 1}
    index = pl.read_parquet(os.path.join(settings.lake_url, "lake", "_index", "events.parquet"))
    assert index.height == sum(n % 5 + 1 for n in range(FILES))
    assert current_funnel(settings) == expected
