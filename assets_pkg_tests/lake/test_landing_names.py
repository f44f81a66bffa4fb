"""Landing file names are untrusted: symlinks and names with control characters or
undecodable bytes are quarantined without being read or followed; names with SQL in them
are just names."""

from __future__ import annotations

import json
import os

import duckdb

from assets_pkg.cli.main import do_ingest
from assets_pkg.lake.manifest import Manifest
from assets_pkg_tests.conftest import land

HEADER = "order_id,customer_id,order_ts,status,channel\n"


def notes(settings) -> dict[str, dict]:
    return {
        n["file_name"]: n
        for n in (
            json.loads(p.read_text()) for p in (settings.quarantine_dir / "orders").glob("*.json")
        )
    }


def test_a_symlink_out_of_the_landing_zone_is_quarantined_not_followed(settings, tmp_path):
    secret = tmp_path / "outside.csv"
    secret.write_text(HEADER + "SECRET,C1,2024-03-02T10:00:00Z,placed,web\n")
    (settings.landing_dir / "orders").mkdir(parents=True)
    os.symlink(secret, settings.landing_dir / "orders" / "orders_link.csv")
    land(settings, "orders", "orders_ok.csv", HEADER + "O1,C1,2024-03-02T10:00:00Z,placed,web\n")
    do_ingest(settings)
    assert notes(settings)["orders_link.csv"]["reason"] == "unsafe_file"
    kept = settings.quarantine_dir / "orders" / "orders_link.csv"
    assert kept.is_symlink(), "the link itself is kept, its target untouched"
    assert secret.read_text().startswith(HEADER)
    assert sorted(Manifest(settings.manifest_path).known("orders")) == ["orders_ok.csv"]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM quarantine.rejects").fetchone() == (0,)


def test_names_with_control_characters_or_bad_bytes_are_quarantined_unread(settings):
    folder = settings.landing_dir / "orders"
    folder.mkdir(parents=True)
    bad_names = ["orders_\n2.csv", "orders_\x1b[31mred.csv", os.fsdecode(b"orders_\xff.csv")]
    for name in bad_names:
        (folder / name).write_text(HEADER + "BAD,C1,2024-03-02T10:00:00Z,placed,web\n")
    land(settings, "orders", "orders_ok.csv", HEADER + "O1,C1,2024-03-02T10:00:00Z,placed,web\n")
    do_ingest(settings)
    assert not any(folder.iterdir()), "nothing left in the landing zone"
    found = notes(settings)
    assert set(found) == {ascii(n) for n in bad_names}
    assert {n["reason"] for n in found.values()} == {"unsafe_file"}
    kept = sorted(p.name for p in (settings.quarantine_dir / "orders").iterdir())
    assert all(name.isascii() and name.isprintable() for name in kept)
    assert sorted(Manifest(settings.manifest_path).known("orders")) == ["orders_ok.csv"]


def test_sql_in_a_file_name_is_only_a_name(settings):
    name = "orders_'); DROP TABLE quarantine.rejects; --.csv"
    land(settings, "orders", name, HEADER + "O1,C1,not-a-time,placed,web\n")
    do_ingest(settings)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        rows = conn.execute("SELECT file_name, reason FROM quarantine.rejects").fetchall()
    assert rows == [(name, "bad_timestamp")]
    assert (settings.archive_dir / "orders" / name).exists()
