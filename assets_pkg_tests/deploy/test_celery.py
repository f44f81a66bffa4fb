"""The daily pipeline on dagster-celery: a real Redis broker and three worker processes.

Two workers consume the default queue, one (one process) the ``warehouse`` queue. A
backfill through ``assets-pkg backfill`` with ``ASSETS_PKG_EXECUTOR=celery``:

- leaves the warehouse exactly as the in-process run of the same data does;
- ran staging steps on both default workers, and none on the warehouse worker;
- ran every warehouse and mart step on the warehouse worker, never two at once;
- and the shipped worker settings (deploy/celery.yaml) are the runs' own.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from assets_pkg.config import REPO_DIR, load_settings
from assets_pkg.executors import DEFAULT_QUEUE, WAREHOUSE_QUEUE, celery_config
from assets_pkg.instance import ensure_instance
from assets_pkg.sample.generator import generate
from assets_pkg_tests.conftest import use_temp_platform
from assets_pkg_tests.deploy.conftest import STARTUP_GUARD_S, RedisServer, stop_process_group
from assets_pkg_tests.test_end_to_end import table_hashes

START = dt.date(2024, 3, 1)
END = dt.date(2024, 3, 6)
CELERY_YAML = REPO_DIR / "deploy" / "celery.yaml"
#: worker name -> queue it consumes
WORKERS = {"default1": DEFAULT_QUEUE, "default2": DEFAULT_QUEUE, "warehouse": WAREHOUSE_QUEUE}


def backfill_cmd() -> list[str]:
    return [
        sys.executable, "-m", "assets_pkg.cli.main", "backfill",
        "--start", START.isoformat(), "--end", END.isoformat(),
    ]  # fmt: skip


def start_workers(
    env: dict[str, str], workers: dict[str, str], logs: Path
) -> list[subprocess.Popen]:
    """The documented worker command, one process each (``--concurrency=1``)."""
    procs = []
    logs.mkdir(parents=True, exist_ok=True)
    for name, queue in workers.items():
        cmd = [
            "dagster-celery", "worker", "start", "-A", "dagster_celery.app",
            "-y", str(CELERY_YAML), "-q", queue, "-n", name, "-l", "INFO",
            "--", "--concurrency=1",
        ]  # fmt: skip
        with open(logs / f"{name}.log", "wb") as out:
            procs.append(
                subprocess.Popen(
                    cmd, env=env, cwd=logs, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )  # fmt: skip
    return procs


def wait_for_workers(broker: str, names: list[str], procs: list[subprocess.Popen]) -> None:
    """Until every worker answers a ping: a step sent earlier would all go to the first."""
    from celery import Celery

    app = Celery(broker=broker)
    deadline = time.monotonic() + STARTUP_GUARD_S * 2
    try:
        while True:
            answered = {
                name.split("@")[0] for reply in app.control.ping(timeout=1) for name in reply
            }
            if set(names) <= answered:
                return
            assert all(p.poll() is None for p in procs), "a celery worker exited at start"
            assert time.monotonic() < deadline, f"workers never answered: {set(names) - answered}"
    finally:
        app.close()


def step_workers(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """step key -> the celery worker that ran it, from the run's own engine events."""
    out = {}
    records = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.ENGINE_EVENT}
    ).records
    for record in records:
        entry = record.event_log_entry
        metadata = entry.dagster_event.event_specific_data.metadata
        if "Celery worker" in metadata:
            out[entry.step_key] = metadata["Celery worker"].value.split("@")[0]
    return out


def step_intervals(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """step key -> (first start, success) timestamps from the event log."""
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    records = instance.get_records_for_run(
        run_id,
        of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS},
    ).records
    for record in records:
        entry = record.event_log_entry
        if entry.dagster_event_type == dg.DagsterEventType.STEP_START:
            starts.setdefault(entry.step_key, entry.timestamp)
        else:
            ends[entry.step_key] = entry.timestamp
    return {key: (starts[key], ends[key]) for key in ends}


@pytest.fixture(scope="module")
def celery_backfill(tmp_path_factory, redis_server: RedisServer) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("celery")
    with pytest.MonkeyPatch.context() as mp:
        # the in-process reference: its own data dir and instance
        reference = use_temp_platform(root / "reference", mp, START, END)
        days = (END - START).days + 1
        generate(reference.landing_dir, start=START, days=days, seed=5, scale=0.05)
        base_env = dict(os.environ)
        subprocess.run(
            [sys.executable, "-m", "assets_pkg.cli.main", "ingest"],
            env=base_env, cwd=root, check=True, capture_output=True,
        )  # fmt: skip
        # the same ingested platform, copied before any backfill, for the celery run
        settings = use_temp_platform(root / "celery", mp, START, END)
        shutil.copytree(reference.data_dir, settings.data_dir)
        env = dict(os.environ)
        env.update(ASSETS_PKG_EXECUTOR="celery", ASSETS_PKG_CELERY_BROKER=redis_server.url)

        done = subprocess.run(
            backfill_cmd(), env=base_env, cwd=root, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        expected = table_hashes(reference)

        # workers open the instance at start: it must exist, created once (not by three
        # processes at the same moment)
        with ensure_instance(settings):
            pass
        procs = start_workers(env, WORKERS, root / "workers")
        try:
            wait_for_workers(redis_server.url, list(WORKERS), procs)
            done = subprocess.run(backfill_cmd(), env=env, cwd=root, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr + "".join(
                (root / "workers" / f"{n}.log").read_text()[-3000:] for n in WORKERS
            )
        finally:
            for proc in procs:
                stop_process_group(proc)
        with dg.DagsterInstance.from_config(str(root / "celery" / "dagster_home")) as instance:
            (record,) = instance.get_run_records(filters=dg.RunsFilter(job_name="daily_pipeline"))
            run_id = record.dagster_run.run_id
            yield {
                "settings": settings,
                "expected": expected,
                "status": record.dagster_run.status,
                "workers": step_workers(instance, run_id),
                "intervals": step_intervals(instance, run_id),
                "job": _pipeline_steps(env),
            }


def _pipeline_steps(env: dict[str, str]) -> dict[str, str | None]:
    """step key -> pool, from the celery-configured definitions themselves."""
    from assets_pkg.definitions import build_definitions

    with pytest.MonkeyPatch.context() as mp:
        for name in ("ASSETS_PKG_EXECUTOR", "ASSETS_PKG_CELERY_BROKER"):
            mp.setenv(name, env[name])
        job = build_definitions().resolve_job_def("daily_pipeline")
    return {name: node.definition.pool for name, node in job.graph.node_dict.items()}


def test_celery_run_builds_the_same_warehouse(celery_backfill):
    assert celery_backfill["status"] == dg.DagsterRunStatus.SUCCESS
    assert table_hashes(celery_backfill["settings"]) == celery_backfill["expected"]


def test_every_step_ran_on_a_celery_worker(celery_backfill):
    assert set(celery_backfill["workers"]) == set(celery_backfill["job"])


def test_staging_steps_ran_in_parallel_on_the_default_workers(celery_backfill):
    workers, pools = celery_backfill["workers"], celery_backfill["job"]
    staging = {key: workers[key] for key, pool in pools.items() if key.startswith("staging__")}
    assert len(staging) == 6 and all(pools[key] is None for key in staging)
    assert set(staging.values()) == {"default1", "default2"}, staging
    intervals = celery_backfill["intervals"]
    spans = sorted(intervals[key] for key in staging)
    # at least two staging steps were running at the same moment
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))


def test_warehouse_steps_ran_on_the_warehouse_worker_one_at_a_time(celery_backfill):
    workers, pools = celery_backfill["workers"], celery_backfill["job"]
    warehouse = [key for key, pool in pools.items() if pool == "warehouse"]
    assert len(warehouse) == 10  # 6 warehouse tables and 4 marts
    assert {workers[key] for key in warehouse} == {"warehouse"}
    assert {workers[key] for key in set(pools) - set(warehouse)} <= {"default1", "default2"}
    spans = sorted(celery_backfill["intervals"][key] for key in warehouse)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, "two warehouse steps overlapped"


def test_shipped_worker_settings_are_the_runs_settings(monkeypatch):
    monkeypatch.setenv("ASSETS_PKG_EXECUTOR", "celery")
    monkeypatch.setenv("ASSETS_PKG_CELERY_BROKER", "redis://127.0.0.1:6379/0")
    monkeypatch.delenv("ASSETS_PKG_CELERY_BACKEND", raising=False)
    shipped = yaml.safe_load(CELERY_YAML.read_text())["execution"]["config"]
    assert shipped == celery_config(load_settings())
