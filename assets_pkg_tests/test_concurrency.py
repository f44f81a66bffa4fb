"""One writer, many launchers: a backfill, a sensor-triggered ingest and a schedule tick
run at the same moment, in separate processes, against one warehouse file.

All of them must succeed without a lock error, and the warehouse must equal the one the
same runs give one after the other.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from assets_pkg.cli.main import do_backfill, do_ingest
from assets_pkg.instance import ensure_instance
from assets_pkg.sample.generator import generate
from assets_pkg_tests import launcher
from assets_pkg_tests.conftest import TABLE_KEYS, land, read_table, use_temp_platform

START = dt.date(2024, 3, 1)
BACKFILL_END = START + dt.timedelta(days=13)  # 14 days in one ranged run
SCHEDULED_DAY = BACKFILL_END + dt.timedelta(days=1)  # the daily schedule's "yesterday"
LATE_DAY = SCHEDULED_DAY + dt.timedelta(days=1)  # what the sensor ingests
TICK = dt.datetime.combine(LATE_DAY, dt.time(2, 0))  # 02:00 UTC on LATE_DAY

LATE_FILES = {
    ("orders", "orders_late.csv"): "order_id,customer_id,order_ts,status,channel\n"
    f"LATE-1,C-LATE,{LATE_DAY}T08:00:00Z,placed,web\n",
    ("order_items", "order_items_late.csv"): "order_id,line_number,product_id,quantity,unit_price\n"
    "LATE-1,1,P-LATE,2,10.00\n",
}


def _platform(root: Path, monkeypatch):
    settings = use_temp_platform(root, monkeypatch, start=START, end=LATE_DAY)
    generate(settings.landing_dir, start=START, days=15, seed=11, scale=0.3)
    do_ingest(settings)
    return settings


def _land_late(settings) -> None:
    for (source, name), text in LATE_FILES.items():
        land(settings, source, name, text)


def _snapshot(settings) -> dict[str, list[dict]]:
    return {table: read_table(settings, table) for table in TABLE_KEYS}


def test_backfill_sensor_run_and_schedule_tick_at_once(tmp_path, monkeypatch):
    serial = _platform(tmp_path / "serial", monkeypatch)
    do_backfill(serial, START, BACKFILL_END)
    _land_late(serial)
    assert launcher.execute("sensor", "landing_sensor") == [True]
    assert launcher.execute("schedule", "daily_pipeline_schedule", TICK) == [True]
    expected = _snapshot(serial)
    assert any(r["order_date"] == SCHEDULED_DAY for r in expected["warehouse.fct_orders"])

    settings = _platform(tmp_path / "concurrent", monkeypatch)
    _land_late(settings)
    env = dict(os.environ)
    commands = {
        "backfill": [
            sys.executable, "-m", "assets_pkg.cli.main", "backfill",
            "--start", START.isoformat(), "--end", BACKFILL_END.isoformat(),
        ],
        "sensor": [
            sys.executable, "-m", "assets_pkg_tests.launcher", "--go-on-stdin",
            "sensor", "landing_sensor",
        ],
        "schedule": [
            sys.executable, "-m", "assets_pkg_tests.launcher", "--go-on-stdin",
            "schedule", "daily_pipeline_schedule", TICK.isoformat(),
        ],
    }  # fmt: skip
    instance = ensure_instance(settings)

    def start(name: str) -> subprocess.Popen:
        return subprocess.Popen(
            commands[name],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    # The launchers get ready first (imports, instance, definitions take seconds: started
    # with the backfill, a slow machine once began the sensor's run 0.1 s after the
    # backfill's ended). Released as soon as the backfill's run has started, all overlap.
    procs = {name: start(name) for name in ("sensor", "schedule")}
    for name, proc in procs.items():
        assert proc.stdout.readline().decode().strip() == "ready", f"{name} did not get ready"
    procs["backfill"] = start("backfill")
    deadline = time.monotonic() + 120
    while not instance.get_run_records(
        filters=dg.RunsFilter(job_name="daily_pipeline", statuses=[dg.DagsterRunStatus.STARTED])
    ):
        assert procs["backfill"].poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    for name in ("sensor", "schedule"):
        procs[name].stdin.write(b"go\n")
        procs[name].stdin.flush()
    outputs = {name: p.communicate(timeout=600)[0].decode() for name, p in procs.items()}
    for name, proc in procs.items():
        assert proc.returncode == 0, f"{name} failed:\n{outputs[name]}"

    runs = instance.get_run_records()
    assert len(runs) >= 4  # first ingest, backfill, sensor's ingest, scheduled day
    assert {r.dagster_run.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
    by_trigger = {
        p: next(r for r in runs if r.dagster_run.tags.get(tag) == value)
        for p, (tag, value) in {
            "backfill": ("dagster/asset_partition_range_end", BACKFILL_END.isoformat()),
            "sensor": (launcher.LAUNCHED_BY, "sensor:landing_sensor"),
            "schedule": (launcher.LAUNCHED_BY, "schedule:daily_pipeline_schedule"),
        }.items()
    }
    backfill = by_trigger["backfill"]
    for name in ("sensor", "schedule"):
        other = by_trigger[name]
        assert other.start_time < backfill.end_time, (
            f"the {name} run began after the backfill ended: no overlap"
        )
    for record in runs:
        for entry in instance.all_logs(record.dagster_run.run_id):
            text = (entry.user_message or "") + str(
                getattr(entry.dagster_event, "event_specific_data", "") or ""
            )
            assert "Could not set lock" not in text and "Conflicting lock" not in text
    for output in outputs.values():
        for lock_error in ("Could not set lock", "Conflicting lock", "stayed locked"):
            assert lock_error not in output, output

    assert _snapshot(settings) == expected
