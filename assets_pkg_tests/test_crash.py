"""Crash anywhere: SIGKILL an ingest or a backfill at 20 seeded moments each, re-run, and
the platform ends exactly where an uninterrupted run does: same tables, same rejects, no
file lost, no file loaded twice."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assets_pkg.cli.main import do_backfill, do_ingest
from assets_pkg.instance import ensure_instance
from assets_pkg.lake.ingest import is_landed
from assets_pkg.lake.manifest import Manifest
from assets_pkg.sample.generator import generate
from assets_pkg_tests.conftest import use_temp_platform, wait_for_run_start
from assets_pkg_tests.test_end_to_end import table_hashes

START, END = dt.date(2024, 3, 1), dt.date(2024, 3, 6)
KILLS = 20


def _platform(root: Path, monkeypatch):
    settings = use_temp_platform(root, monkeypatch, start=START, end=END)
    generate(settings.landing_dir, start=START, days=6, seed=5, scale=0.2)
    return settings


def _landed(settings) -> set[str]:
    """Files landed (not those still being written, which ingest leaves alone)."""
    return {
        f"{p.parent.name}/{p.name}"
        for p in settings.landing_dir.glob("*/*")
        if p.is_file() and is_landed(p.name)
    }


def _kept(settings) -> set[str]:
    """Every landed file ends in the archive or in quarantine (its note aside)."""
    found = set()
    for folder in (settings.archive_dir, settings.quarantine_dir):
        found |= {
            f"{p.parent.name}/{p.name}"
            for p in folder.glob("*/*")
            if p.is_file() and not p.name.endswith(".error.json")
        }
    return found


def _kill_repeatedly(settings, args: list[str], seed: int, max_delay: float) -> int:
    """Start the command, SIGKILL its process group at a seeded moment once its run has
    started; KILLS times. Returns how many kills landed while the run was in flight."""
    rng = random.Random(seed)
    instance = ensure_instance(settings)
    env = dict(os.environ)
    mid_run = 0
    for _ in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, "-m", "assets_pkg.cli.main", *args],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_run_start(instance, proc)
        time.sleep(rng.uniform(0.0, max_delay))
        if proc.poll() is None:
            mid_run += 1
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return mid_run


@pytest.fixture
def clean(tmp_path, monkeypatch):
    settings = _platform(tmp_path / "clean", monkeypatch)
    landed = _landed(settings)
    do_ingest(settings)
    do_backfill(settings, START, END)
    # how long each run itself takes, start to end: kills are drawn inside that span
    runs = {
        r.dagster_run.job_name: r.end_time - r.start_time
        for r in ensure_instance(settings).get_run_records()
    }
    return {
        "hashes": table_hashes(settings),
        "landed": landed,
        "manifest": Manifest(settings.manifest_path).counts(),
        "ingest_s": runs["ingest_job"],
        "backfill_s": runs["daily_pipeline"],
    }


def test_killed_ingests_and_backfills_end_like_a_clean_run(clean, tmp_path, monkeypatch):
    settings = _platform(tmp_path / "crashed", monkeypatch)
    assert _landed(settings) == clean["landed"]

    hit = _kill_repeatedly(settings, ["ingest"], seed=1, max_delay=clean["ingest_s"])
    assert hit >= KILLS // 3, "most kills should land while an ingest is running"
    do_ingest(settings)
    assert _kept(settings) == clean["landed"], "a landed file was lost"
    assert not _landed(settings), "a landed file was left behind"
    assert Manifest(settings.manifest_path).counts() == clean["manifest"]

    hit = _kill_repeatedly(
        settings,
        ["backfill", "--start", START.isoformat(), "--end", END.isoformat()],
        seed=2,
        max_delay=clean["backfill_s"],
    )
    # a loaded machine starts processes late: a third of the kills mid-run still crashes
    # the backfill at every stage the seed draws
    assert hit >= KILLS // 3, "most kills should land while a backfill is running"
    do_backfill(settings, START, END)
    assert table_hashes(settings) == clean["hashes"]
