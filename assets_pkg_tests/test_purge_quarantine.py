"""`assets-pkg purge-quarantine --older-than N`: deletes exactly the old quarantined data.

Two real ingest passes, one 40 days ago and one now, leave quarantined files, reject rows
and staged reject sets of both ages; the purge takes the old ones and nothing else, never
the manifest or the archive, and a re-landing of the purged files brings nothing back.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from assets_pkg.config import Settings
from assets_pkg.lake.ingest import STAGED_REJECTS, IngestPass, publish_rejects
from assets_pkg.resources.lake import LakeResource
from assets_pkg.resources.warehouse import WarehouseResource
from assets_pkg_tests.conftest import land

OLD_ORDERS = (
    "order_id,customer_id,order_ts,status,channel\n"
    "O1,C1,2024-03-02T10:00:00Z,placed,web\n"
    "O2,C1,yesterday,placed,web\n"  # bad_timestamp: a reject row with its raw record
)
NEW_ORDERS = (
    "order_id,customer_id,order_ts,status,channel\n"
    "O3,C2,2024-03-03T10:00:00Z,placed,web\n"
    "O4,C2,2024-03-03T11:00:00Z,lost,web\n"  # out_of_domain
)
BROKEN = "order_id,customer_id\nO9,someone@example.com\n"  # a required column missing
NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _pass(settings: Settings, when: dt.datetime) -> str:
    """One real ingest pass that ran at ``when``; returns the stem of its staged set."""
    ingest = IngestPass(settings, LakeResource(root=settings.lake_url))
    ingest.now = when
    report = ingest.run()
    return f"{when:%Y%m%dT%H%M%S%f}-{report.ingest_id}"


def _staged(settings: Settings) -> Path:
    return Path(settings.lake_url).joinpath(*STAGED_REJECTS)


def _publish(settings: Settings) -> None:
    publish_rejects(
        LakeResource(root=settings.lake_url),
        WarehouseResource(database=str(settings.warehouse_path)),
    )


def _rejects(settings: Settings) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return conn.execute(
            "SELECT file_name, row_number, reason FROM quarantine.rejects ORDER BY ALL"
        ).fetchall()


def _manifest(settings: Settings) -> list[tuple]:
    with sqlite3.connect(settings.manifest_path) as conn:
        return conn.execute("SELECT * FROM files ORDER BY source, file_name").fetchall()


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _purge(tmp_path: Path, *args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "assets_pkg.cli.main", "purge-quarantine", *args],
        env=dict(os.environ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.fixture
def aged(settings: Settings, tmp_path: Path) -> dict[str, str]:
    """Quarantined data of two ages, and staged sets published or not."""
    land(settings, "orders", "orders_old.csv", OLD_ORDERS)
    land(settings, "orders", "broken_old.csv", BROKEN)
    old_set = _pass(settings, NOW - dt.timedelta(days=40))
    kept_copy = tmp_path / "old-set"
    shutil.copytree(_staged(settings), kept_copy)
    _publish(settings)

    land(settings, "orders", "orders_new.csv", NEW_ORDERS)
    land(settings, "orders", "broken_new.csv", BROKEN)
    _pass(settings, NOW - dt.timedelta(days=1))
    _publish(settings)
    # a crash after the old set's commit, before its files went: published, still staged
    shutil.copytree(kept_copy, _staged(settings), dirs_exist_ok=True)

    # an old pass whose set was never published: not the purge's to delete
    land(settings, "orders", "orders_pending.csv", OLD_ORDERS.replace("O1", "O5"))
    pending_set = _pass(settings, NOW - dt.timedelta(days=35))
    return {"old": old_set, "pending": pending_set}


def test_purge_deletes_exactly_what_is_older_and_says_so(settings, tmp_path, aged):
    assert _rejects(settings) == [
        ("orders_new.csv", 2, "out_of_domain"),
        ("orders_old.csv", 2, "bad_timestamp"),
    ]
    quarantine = settings.quarantine_dir
    assert sorted(_tree(quarantine)) == [
        "orders/broken_new.csv",
        "orders/broken_new.csv.error.json",
        "orders/broken_old.csv",
        "orders/broken_old.csv.error.json",
    ]
    manifest, archive = _manifest(settings), _tree(settings.archive_dir)
    staged_before = sorted(p.name for p in _staged(settings).iterdir())

    expected = [
        "quarantine/orders/broken_old.csv",
        "quarantine/orders/broken_old.csv.error.json",
        "1 row(s) of quarantine.rejects from orders/orders_old.csv",
        f"staged reject set {aged['old']}",
    ]
    dry = _purge(tmp_path, "--older-than", "30", "--dry-run")
    assert dry == [f"would delete {e}" for e in expected] + [
        f"kept staged reject set {aged['pending']}: not published yet",
        "would delete: 2 quarantine file(s), 1 reject row(s), 1 staged reject set(s), "
        "older than 30 day(s)",
    ]
    assert len(_rejects(settings)) == 2 and len(_tree(quarantine)) == 4, "a dry run deletes nothing"
    assert sorted(p.name for p in _staged(settings).iterdir()) == staged_before

    done = _purge(tmp_path, "--older-than", "30")
    assert done == [f"deleted {e}" for e in expected] + [
        f"kept staged reject set {aged['pending']}: not published yet",
        "deleted: 2 quarantine file(s), 1 reject row(s), 1 staged reject set(s), "
        "older than 30 day(s)",
    ]
    assert _rejects(settings) == [("orders_new.csv", 2, "out_of_domain")]
    assert sorted(_tree(quarantine)) == [
        "orders/broken_new.csv",
        "orders/broken_new.csv.error.json",
    ]
    staged_after = sorted(p.name for p in _staged(settings).iterdir())
    assert staged_after == [n for n in staged_before if not n.startswith(aged["old"])]
    assert any(n.startswith(aged["pending"]) for n in staged_after)
    assert _manifest(settings) == manifest, "the manifest keeps every file it saw"
    assert _tree(settings.archive_dir) == archive

    # nothing younger is due; a second purge deletes nothing
    assert _purge(tmp_path, "--older-than", "30")[-1].startswith("deleted: 0 quarantine file(s)")


def test_relanding_purged_files_does_not_bring_them_back(settings, tmp_path, aged):
    _purge(tmp_path, "--older-than", "30")
    land(settings, "orders", "orders_old.csv", OLD_ORDERS)
    land(settings, "orders", "broken_old.csv", BROKEN)
    result = subprocess.run(
        [sys.executable, "-m", "assets_pkg.cli.main", "ingest"],
        env=dict(os.environ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    # the manifest knows both names with this content: no-ops, removed from landing
    assert not list((settings.landing_dir / "orders").iterdir())
    assert "orders/broken_old.csv" not in _tree(settings.quarantine_dir)
    rejects = _rejects(settings)
    assert ("orders_old.csv", 2, "bad_timestamp") not in rejects
    assert ("orders_new.csv", 2, "out_of_domain") in rejects


def test_older_than_must_be_a_number_of_days(settings, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "assets_pkg.cli.main", "purge-quarantine", "--older-than", "-1"],
        env=dict(os.environ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "--older-than" in result.stderr
