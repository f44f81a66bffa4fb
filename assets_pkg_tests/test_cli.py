"""`assets-pkg` as a user runs it: exit codes and one-line reasons on stderr."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _run(settings, tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)  # the settings fixture has set ASSETS_PKG_* and DAGSTER_HOME
    return subprocess.run(
        [sys.executable, "-m", "assets_pkg.cli.main", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backfill", "--start", "2024-03-05", "--end", "2024-03-01"], "is before --start"),
        (["backfill", "--start", "2024-13-01", "--end", "2024-03-01"], "--start must be a date"),
        (["backfill", "--start", "2024-02-01", "--end", "2024-03-01"], "outside the partitions"),
        (["ingest"], "no landing zone"),
        (["generate", "--days", "0"], "--days must be at least 1"),
    ],
)
def test_failures_exit_non_zero_with_one_line(settings, tmp_path, args, message):
    result = _run(settings, tmp_path, *args)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert lines[0].startswith("error:")


def test_bad_environment_is_reported(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSETS_PKG_END_DATE", "tomorrow")
    result = _run(settings, tmp_path, "ingest")
    assert result.returncode == 1
    assert "ASSETS_PKG_END_DATE must be a date" in result.stderr


def test_definitions_validate(settings, tmp_path):
    os.makedirs(os.environ["DAGSTER_HOME"], exist_ok=True)
    result = subprocess.run(
        ["dagster", "definitions", "validate", "-m", "assets_pkg.definitions"],
        env=dict(os.environ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_step_progress_counts_a_runs_steps_reading_only_new_events(settings):
    """The progress line follows a run by cursor: each poll reads the events since the last."""
    import dagster as dg

    from assets_pkg.cli.main import StepProgress
    from assets_pkg.instance import ensure_instance

    @dg.asset
    def first() -> int:
        return 1

    @dg.asset(deps=[first])
    def second() -> None:
        pass

    instance = ensure_instance(settings)
    steps = StepProgress()
    one = dg.materialize([first], instance=instance)
    steps.poll(instance, one.run_id)
    assert (steps.done, steps.current) == (1, "first")
    cursor = steps.cursor
    steps.poll(instance, one.run_id)
    assert (steps.done, steps.current, steps.cursor) == (1, "first", cursor)

    two = dg.materialize([first, second], instance=instance)
    steps.poll(instance, two.run_id)  # another run: counted from its start
    assert (steps.done, steps.current) == (2, "second")
