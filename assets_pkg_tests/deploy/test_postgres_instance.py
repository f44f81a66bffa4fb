"""The production instance (deploy/dagster.yaml) on a real, throwaway PostgreSQL server.

- `assets-pkg ingest` and `assets-pkg backfill` run with the instance on PostgreSQL: runs,
  every day's materializations and the check results are in the database, read both through
  the instance and straight from its tables, and nothing went to local SQLite files;
- the warehouse equals a backfill of the same data on the default (SQLite) instance;
- processes on separate DAGSTER_HOMEs (separate machines) that open one fresh database at
  the same moment create one working instance.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from assets_pkg.config import REPO_DIR
from assets_pkg.definitions import build_definitions
from assets_pkg.sample.generator import generate
from assets_pkg_tests.conftest import use_temp_platform
from assets_pkg_tests.deploy.conftest import PostgresServer
from assets_pkg_tests.test_end_to_end import table_hashes

START = dt.date(2024, 3, 1)
END = dt.date(2024, 3, 3)
DAYS = [(START + dt.timedelta(days=i)).isoformat() for i in range((END - START).days + 1)]
DEPLOY_YAML = REPO_DIR / "deploy" / "dagster.yaml"
MART = dg.AssetKey(["marts", "daily_sales"])


def cli(*args: str, env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "assets_pkg.cli.main", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def pg_rows(server: PostgresServer, db: str, sql: str, params: tuple = ()) -> list[tuple]:
    conn = psycopg2.connect(server.dsn(db))
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


@pytest.fixture
def pg_platform(tmp_path, monkeypatch, postgres_server: PostgresServer, postgres_db: str):
    """Generated days ingested and backfilled with DAGSTER_HOME holding deploy/dagster.yaml."""
    settings = use_temp_platform(tmp_path / "pg", monkeypatch, START, END)
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True)
    shutil.copyfile(DEPLOY_YAML, home / "dagster.yaml")
    for name, value in postgres_server.env(postgres_db).items():
        monkeypatch.setenv(name, value)
    generate(settings.landing_dir, start=START, days=len(DAYS), seed=3, scale=0.05)
    env = dict(os.environ)
    cli("ingest", env=env, cwd=tmp_path)
    # the same ingested data for the SQLite reference, before anything is backfilled
    shutil.copytree(settings.data_dir, tmp_path / "sqlite" / "data")
    cli("backfill", "--start", START.isoformat(), "--end", END.isoformat(), env=env, cwd=tmp_path)
    return settings, home


def test_backfill_records_runs_materializations_and_checks_in_postgres(
    pg_platform, postgres_server, postgres_db
):
    _, home = pg_platform
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        runs = {r.dagster_run.job_name: r.dagster_run.status for r in instance.get_run_records()}
        assert runs == {
            "ingest_job": dg.DagsterRunStatus.SUCCESS,
            "daily_pipeline": dg.DagsterRunStatus.SUCCESS,
        }
        assert instance.get_materialized_partitions(MART) == set(DAYS)
        (pipeline,) = instance.get_run_records(filters=dg.RunsFilter(job_name="daily_pipeline"))
        pipeline_id = pipeline.dagster_run.run_id
        checks = instance.get_records_for_run(
            pipeline_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        # one evaluation of every check the pipeline's assets declare, no ERROR among them
        # (a tiny sample's few lines of unknown products can pass the 1 % WARN bound)
        job = build_definitions().resolve_job_def("daily_pipeline")
        declared = {k.name for k in job.asset_layer.asset_graph.asset_check_keys}
        evaluated = [c.event_log_entry.dagster_event.event_specific_data for c in checks]
        assert sorted(e.check_name for e in evaluated) == sorted(declared)
        assert len(declared) > 2 * 16  # key checks of 16 tables, and the quality checks
        failed = sum(1 for e in evaluated if not e.passed)
        errors = [e for e in evaluated if e.severity == dg.AssetCheckSeverity.ERROR]
        assert [(e.check_name, e.description) for e in errors if not e.passed] == []

    # the same facts, read from the server's own tables
    assert sorted(
        pg_rows(postgres_server, postgres_db, "SELECT pipeline_name, status FROM runs")
    ) == [
        ("daily_pipeline", "SUCCESS"),
        ("ingest_job", "SUCCESS"),
    ]
    partitions = pg_rows(
        postgres_server,
        postgres_db,
        "SELECT DISTINCT partition FROM event_logs "
        "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key = %s ORDER BY 1",
        (MART.to_string(),),
    )
    assert [p for (p,) in partitions] == DAYS
    statuses = pg_rows(
        postgres_server,
        postgres_db,
        "SELECT execution_status, count(*) FROM asset_check_executions "
        "WHERE run_id = %s AND execution_status <> 'PLANNED' GROUP BY 1",
        (pipeline_id,),
    )
    # a ranged run plans each day's checks and records one evaluation per check
    assert statuses == sorted(
        [("FAILED", failed), ("SUCCEEDED", len(evaluated) - failed)]
        if failed
        else [("SUCCEEDED", len(evaluated))]
    )
    # and no local SQLite storage was written beside it
    assert not list(home.rglob("*.db"))


def test_warehouse_equals_a_backfill_on_the_default_instance(pg_platform, tmp_path, monkeypatch):
    settings, _ = pg_platform
    reference = use_temp_platform(tmp_path / "sqlite", monkeypatch, START, END)
    for name in list(os.environ):
        if name.startswith("DAGSTER_PG_"):
            monkeypatch.delenv(name)
    cli(
        "backfill", "--start", START.isoformat(), "--end", END.isoformat(),
        env=dict(os.environ), cwd=tmp_path,
    )  # fmt: skip
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
    assert table_hashes(reference) == table_hashes(settings)


def test_machines_opening_a_fresh_database_at_once_create_one_instance(
    tmp_path, monkeypatch, postgres_server: PostgresServer, postgres_db: str
):
    script = (
        "from assets_pkg.config import load_settings\n"
        "from assets_pkg.instance import ensure_instance\n"
        "instance = ensure_instance(load_settings())\n"
        "print(len(instance.get_run_records()), instance.event_log_storage.get_pool_limits())\n"
    )
    procs = []
    for i in range(4):
        # one DAGSTER_HOME each: the file lock there cannot serialize them
        home = tmp_path / f"machine{i}"
        home.mkdir()
        shutil.copyfile(DEPLOY_YAML, home / "dagster.yaml")
        env = dict(os.environ) | postgres_server.env(postgres_db)
        env |= {"DAGSTER_HOME": str(home), "ASSETS_PKG_DATA_DIR": str(tmp_path / "data")}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", script],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outcomes = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outcomes]
    assert {out.split()[0] for out, _ in outcomes} == {"0"}
    for name, value in postgres_server.env(postgres_db).items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.from_config(str(tmp_path / "machine0")) as instance:
        assert instance.get_run_records() == []
