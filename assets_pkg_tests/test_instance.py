"""The shipped instance settings are valid Dagster config, and the instance is created once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy.exc
from dagster._core.instance.config import dagster_instance_config

from assets_pkg.config import REPO_DIR
from assets_pkg.instance import TEMPLATE

PG_ENV = {
    "DAGSTER_PG_HOST": "db.internal",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "secret",
}


@pytest.mark.parametrize(
    "source", [TEMPLATE, REPO_DIR / "dagster.yaml", REPO_DIR / "deploy" / "dagster.yaml"]
)
def test_shipped_instance_settings_are_valid(source: Path, tmp_path, monkeypatch):
    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)
    shutil.copyfile(source, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["concurrency"]["pools"] == {"default_limit": 1, "granularity": "op"}
    assert config["run_retries"]["enabled"] is True
    assert config["run_retries"]["retry_on_asset_or_op_failure"] is False


def test_production_settings_keep_storage_on_postgres():
    text = (REPO_DIR / "deploy" / "dagster.yaml").read_text()
    assert "postgres:" in text and "QueuedRunCoordinator" in text
    assert "password:\n        env: DAGSTER_PG_PASSWORD" in text


def test_many_processes_on_a_fresh_home_create_one_working_instance(settings):
    import subprocess
    import sys

    import dagster as dg

    from assets_pkg.instance import dagster_home

    home = dagster_home(settings)
    assert not home.exists()
    script = (
        "from assets_pkg.config import load_settings\n"
        "from assets_pkg.instance import ensure_instance\n"
        "instance = ensure_instance(load_settings())\n"
        "print(len(instance.get_run_records()))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0] * 6
    assert outputs == ["0"] * 6
    assert (home / "dagster.yaml").read_text() == TEMPLATE.read_text()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_run_records() == []


def _collision(statement: str) -> sqlalchemy.exc.ProgrammingError:
    return sqlalchemy.exc.ProgrammingError(statement, {}, Exception("relation already exists"))


def test_a_table_creation_lost_to_another_machine_opens_the_instance_again(settings, monkeypatch):
    import dagster as dg

    from assets_pkg import instance as instance_module

    real_get = dg.DagsterInstance.get
    calls = []

    def get():
        calls.append(len(calls))
        if len(calls) < 3:  # two machines beat this one to the tables
            raise _collision("\nCREATE TABLE jobs (\n\tid BIGSERIAL NOT NULL, ...)")
        return real_get()

    monkeypatch.setattr(dg.DagsterInstance, "get", staticmethod(get))
    monkeypatch.setattr(instance_module.time, "sleep", lambda s: None)
    with instance_module.ensure_instance(settings) as instance:
        assert instance.get_run_records() == []
    assert calls == [0, 1, 2]


def test_other_database_errors_and_a_lasting_collision_are_raised(settings, monkeypatch):
    import dagster as dg

    from assets_pkg import instance as instance_module

    def refused():
        raise sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(dg.DagsterInstance, "get", staticmethod(refused))
    with pytest.raises(sqlalchemy.exc.OperationalError, match="connection refused"):
        instance_module.ensure_instance(settings)  # not a creation: raised at once

    calls = []

    def always_collides():
        calls.append(1)
        raise _collision("CREATE INDEX idx_jobs ON jobs (job_origin_id)")

    monkeypatch.setattr(dg.DagsterInstance, "get", staticmethod(always_collides))
    monkeypatch.setattr(instance_module.time, "sleep", lambda s: None)
    with pytest.raises(sqlalchemy.exc.ProgrammingError, match="CREATE INDEX"):
        instance_module.ensure_instance(settings)
    assert len(calls) == instance_module.CREATE_ATTEMPTS
