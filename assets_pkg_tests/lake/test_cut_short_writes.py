"""A pass killed anywhere between its first lake write and its end, then a pass over a
different set of files (a sensor forms its next micro-batch from what waits by then, so
the pass gets another ingest id): the platform ends as two clean passes leave it, every
version in the lake once, none lost, every file recorded and kept once, the same rejects.

Killed while writing lake files, the pass is undone; killed once its lake files are
written, it is finished, from its journal, by the next pass.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl
import pytest

from assets_pkg.cli.main import do_repair_lake
from assets_pkg.config import Settings
from assets_pkg.lake import journal
from assets_pkg.lake.ingest import IngestPass, publish_rejects
from assets_pkg.lake.journal import JOURNAL_NAME
from assets_pkg.lake.manifest import Manifest
from assets_pkg.resources.lake import LakeResource
from assets_pkg.resources.warehouse import WarehouseResource
from assets_pkg_tests.conftest import land, use_temp_platform

CUSTOMERS = (
    "customer_id,email,status,country,signup_ts,updated_at\n"
    "C1,a@example.com,active,DE,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z\n"
)
ORDERS_1 = (
    "order_id,customer_id,order_ts,status,channel\n"
    "O1,C1,2024-03-02T10:00:00Z,placed,web\n"
    "O2,C1,2024-03-02T11:00:00Z,placed,web\n"
)
# O1 moves to the next day: its items follow it
ORDERS_2 = (
    "order_id,customer_id,order_ts,status,channel\n"
    "O1,C1,2024-03-03T09:00:00Z,shipped,web\n"
    "O3,C1,2024-03-03T12:00:00Z,placed,store\n"
)
ITEMS_1 = (
    "order_id,line_number,product_id,quantity,unit_price\n"
    "O1,1,P1,2,9.50\n"
    "O2,1,P2,1,3.00\n"
    "O4,1,P1,1,9.50\n"  # its order is not known yet: held back
)
FIRST = ["customers/c_1.csv", "orders/orders_1.csv", "order_items/items_1.csv"]


class Killed(BaseException):
    """The process died here."""


def _land_all(settings: Settings) -> None:
    land(settings, "customers", "c_1.csv", CUSTOMERS)
    land(settings, "orders", "orders_1.csv", ORDERS_1)
    land(settings, "order_items", "items_1.csv", ITEMS_1)
    land(settings, "orders", "orders_2.csv", ORDERS_2)


def _pass(settings: Settings, only: list[str] | None = None) -> dict[str, set]:
    """One pass; the days it reports per source (what its lake events announce)."""
    report = IngestPass(settings, LakeResource(root=settings.lake_url), only=only).run()
    return {source: r.touched for source, r in report.sources.items() if r.touched}


def lake_versions(settings: Settings) -> dict[str, list[tuple]]:
    """Each lake dataset's rows with their day, sorted, the writing pass's id aside; and the
    version index and held-back items."""
    root = Path(settings.lake_url) / "lake"
    out: dict[str, list[tuple]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "_rejects"):
        files = sorted(folder.rglob("*.parquet"))
        frame = pl.concat(
            [
                pl.read_parquet(f).with_columns(_day=pl.lit(f.parent.name))
                for f in files
                if not f.name.startswith(".")
            ],
            how="diagonal_relaxed",
        ).drop("_ingest_id", strict=False)
        out[folder.name] = sorted(frame.rows(), key=repr)
    return out


@pytest.fixture
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict]:
    """The platform after uninterrupted passes over the same files: the first batch then
    the rest (the killed pass finished), or all in one (the killed pass undone)."""
    out = {}
    for name, batches in {"finished": [FIRST, None], "undone": [None]}.items():
        with monkeypatch.context() as m:
            settings = use_temp_platform(tmp_path / name, m)
            _land_all(settings)
            days: dict[str, set] = {}
            for only in batches:
                for source, touched in _pass(settings, only).items():
                    days[source] = days.get(source, set()) | touched
            out[name] = state(settings) | {"days": days}
    return out


def published(settings: Settings) -> list[tuple]:
    """The rejects the staged sets publish, each marked resolved or not."""
    warehouse = WarehouseResource(database=str(settings.warehouse_path))
    publish_rejects(LakeResource(root=settings.lake_url), warehouse)
    with warehouse.get_connection(read_only=True) as conn:
        return conn.execute(
            "SELECT source, file_name, row_number, reason, partition_date, "
            "resolved_at IS NOT NULL FROM quarantine.rejects ORDER BY ALL"
        ).fetchall()


def state(settings: Settings) -> dict:
    return {
        "lake": lake_versions(settings),
        "manifest": Manifest(settings.manifest_path).counts(),
        "archive": _files(settings.archive_dir),
        "landing": _files(settings.landing_dir),
        "rejects": published(settings),
    }


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _killed_first_pass(settings: Settings, monkeypatch: pytest.MonkeyPatch, where) -> None:
    with monkeypatch.context() as m:
        where(m)
        with pytest.raises(Killed):
            _pass(settings, FIRST)


def _die_before_the_commit(m: pytest.MonkeyPatch) -> None:
    """Every lake file and the staged rejects written, nothing committed."""

    def die(self: IngestPass, ingest_id: str):
        raise Killed

    m.setattr(IngestPass, "_commit", die)


def _die_writing_items(m: pytest.MonkeyPatch) -> None:
    """Customers and orders in the lake, the items not."""
    write_many = LakeResource.write_many

    def die_at_items(self: LakeResource, files):
        files = list(files)
        if files[0][1][1] == "order_items":
            raise Killed
        return write_many(self, files)

    m.setattr(LakeResource, "write_many", die_at_items)


def _die_before_the_orders_index(m: pytest.MonkeyPatch) -> None:
    """Committing: the items' index and pending items written, the orders index not."""
    write_file = LakeResource.write_file

    def write_then_die(self: LakeResource, local: Path, *parts: str):
        if parts == ("lake", "_index", "orders.parquet"):  # the last bookkeeping file
            raise Killed
        return write_file(self, local, *parts)

    m.setattr(LakeResource, "write_file", write_then_die)


def _die_moving_files(m: pytest.MonkeyPatch) -> None:
    """Committing: indexes and manifest written, one file moved out of landing."""
    move = journal.move_files

    def move_one_then_die(commit: journal.Commit) -> None:
        move(dataclasses.replace(commit, moves=commit.moves[:1]))
        raise Killed

    m.setattr(journal, "move_files", move_one_then_die)


@pytest.mark.parametrize(
    ("where", "ends"),
    [
        (_die_writing_items, "undone"),
        (_die_before_the_commit, "undone"),
        (_die_before_the_orders_index, "finished"),
        (_die_moving_files, "finished"),
    ],
    ids=["writing", "written", "indexes", "moves"],
)
def test_a_pass_killed_then_another_batch_ends_like_clean_passes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, clean: dict, where, ends: str
):
    _land_all(settings)
    _killed_first_pass(settings, monkeypatch, where)
    assert lake_versions(settings)["customers"], "the killed pass wrote lake files"
    assert (settings.data_dir / JOURNAL_NAME).exists()

    # takes the killed pass's files with orders_2.csv: another ingest id; it reports the
    # days of a commit it finished as its own
    days = _pass(settings)

    got = state(settings) | {"days": days}
    for dataset, rows in got["lake"].items():
        repeated = {r for r in rows if rows.count(r) > 1}
        assert not repeated, f"lake/{dataset} holds a version twice: {sorted(repeated, key=repr)}"
    assert got == clean[ends]
    assert not (settings.data_dir / JOURNAL_NAME).exists()


def test_a_pass_killed_while_recovering_is_recovered_by_the_next(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, clean: dict
):
    _land_all(settings)
    _killed_first_pass(settings, monkeypatch, _die_before_the_orders_index)
    with monkeypatch.context() as m:
        _die_before_the_orders_index(m)  # the recovery's commit dies where the pass's did
        with pytest.raises(Killed):
            _pass(settings)
    days = _pass(settings)
    assert state(settings) | {"days": days} == clean["finished"]


def test_repair_lake_after_a_pass_died_committing_finishes_it_first(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, clean: dict
):
    """The rebuild starts from the archive the finished commit completes; the journal is not
    left to write the old lake's indexes over the rebuilt one."""
    _land_all(settings)
    _killed_first_pass(settings, monkeypatch, _die_before_the_orders_index)
    do_repair_lake(settings)
    assert not (settings.data_dir / JOURNAL_NAME).exists()
    _pass(settings)
    assert {k: v for k, v in state(settings).items() if k != "days"} == {
        k: v for k, v in clean["finished"].items() if k != "days"
    }
