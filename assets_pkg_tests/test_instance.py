"""The shipped instance settings are valid Dagster config, and the instance is created once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
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
