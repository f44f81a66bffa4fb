"""A pass killed after recording its files in the manifest and before moving them out of
landing: the next pass finishes the moves (nothing is lost, nothing is loaded twice), and
a quarantined file that was purged since stays purged."""

from __future__ import annotations

import json

import polars as pl
import pytest

from assets_pkg.lake import journal
from assets_pkg.lake.ingest import IngestPass
from assets_pkg.lake.manifest import Manifest
from assets_pkg.resources.lake import LakeResource
from assets_pkg_tests.conftest import land

HEADER = "order_id,customer_id,order_ts,status,channel\n"
GOOD = HEADER + "O1,C1,2024-03-02T10:00:00Z,placed,web\nO2,C1,2024-03-02T11:00:00Z,placed,web\n"
BROKEN = "order_id,customer_id\nO9,C1\n"  # a required column missing: quarantined


class Killed(Exception):
    """The process died here."""


def _pass(settings) -> None:
    IngestPass(settings, LakeResource(root=settings.lake_url)).run()


def _cut_short(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """One pass that writes its lake files, notes and manifest, and dies before any move."""

    def die_before_moving(commit: journal.Commit) -> None:
        assert commit.moves, "the pass had files to move"
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(journal, "move_files", die_before_moving)
        with pytest.raises(Killed):
            _pass(settings)


def _lake_orders(settings) -> list[str]:
    lake = LakeResource(root=settings.lake_url)
    files = lake.dataset_files("lake/orders")
    return sorted(pl.read_parquet(files)["order_id"].to_list()) if files else []


def test_the_next_pass_moves_what_a_pass_cut_short_left_in_landing(settings, monkeypatch):
    land(settings, "orders", "orders_1.csv", GOOD)
    land(settings, "orders", "broken_1.csv", BROKEN)
    _cut_short(settings, monkeypatch)
    landing = settings.landing_dir / "orders"
    assert sorted(p.name for p in landing.iterdir()) == ["broken_1.csv", "orders_1.csv"]
    counts = Manifest(settings.manifest_path).counts()

    _pass(settings)

    assert not list(landing.iterdir())
    assert (settings.archive_dir / "orders" / "orders_1.csv").read_text() == GOOD
    kept = settings.quarantine_dir / "orders" / "broken_1.csv"
    assert kept.read_text() == BROKEN
    note = json.loads(kept.with_name("broken_1.csv.error.json").read_text())
    assert note["reason"] == "missing_column"
    assert Manifest(settings.manifest_path).counts() == counts
    assert _lake_orders(settings) == ["O1", "O2"]  # loaded once, by the first pass


def test_a_purged_quarantined_file_landed_again_stays_purged(settings):
    land(settings, "orders", "broken_1.csv", BROKEN)
    _pass(settings)
    kept = settings.quarantine_dir / "orders" / "broken_1.csv"
    kept.unlink()  # what purge-quarantine does: the file and its note
    kept.with_name("broken_1.csv.error.json").unlink()
    land(settings, "orders", "broken_1.csv", BROKEN)

    _pass(settings)

    assert not list((settings.landing_dir / "orders").iterdir())
    assert not list((settings.quarantine_dir / "orders").iterdir())


def test_a_loaded_file_landed_again_is_removed_from_landing_not_archived_twice(settings):
    land(settings, "orders", "orders_1.csv", GOOD)
    _pass(settings)
    land(settings, "orders", "orders_1.csv", GOOD)

    _pass(settings)

    assert not list((settings.landing_dir / "orders").iterdir())
    assert [p.name for p in (settings.archive_dir / "orders").iterdir()] == ["orders_1.csv"]
    assert _lake_orders(settings) == ["O1", "O2"]
