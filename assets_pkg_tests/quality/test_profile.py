"""The per-column profile attached to staged and warehouse materializations."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from assets_pkg.quality import results
from assets_pkg.quality.results import profile


def _rows(md: str) -> dict[str, list[str]]:
    lines = md.splitlines()
    assert lines[0].startswith("| column | type | null % |")
    return {cells[0]: cells[1:] for cells in (_cells(line) for line in lines[2:])}


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


@pytest.fixture
def conn():
    with duckdb.connect() as c:
        c.execute(
            "CREATE TABLE t (order_id VARCHAR, status VARCHAR, qty INTEGER, placed_date DATE)"
        )
        c.executemany(
            "INSERT INTO t VALUES (?, ?, ?, ?)",
            [
                ("O1", "placed", 3, dt.date(2024, 3, 2)),
                ("O2", "placed", None, dt.date(2024, 3, 1)),
                ("O3", "shipped", 7, None),
                ("O4", None, -2, dt.date(2024, 3, 5)),
            ],
        )
        yield c


def test_profile_gives_each_column_its_type_null_share_range_and_top_values(conn):
    got = _rows(profile(conn, "SELECT * FROM t", []).value)
    assert list(got) == ["order_id", "status", "qty", "placed_date"]
    assert got["order_id"][:5] == ["VARCHAR", "0.0", "4", "O1", "O4"]
    assert got["status"][:5] == ["VARCHAR", "25.0", "2", "placed", "shipped"]
    assert got["status"][5] == "placed (2), shipped (1)"
    assert got["qty"][:5] == ["INTEGER", "25.0", "3", "-2", "7"]
    assert got["qty"][5] == ""  # top values only for text columns
    assert got["placed_date"][:5] == ["DATE", "25.0", "3", "2024-03-01", "2024-03-05"]


def test_profile_takes_the_query_parameters(conn):
    got = _rows(profile(conn, "SELECT * FROM t WHERE status = ?", ["placed"]).value)
    assert got["order_id"][1:5] == ["0.0", "2", "O1", "O2"]
    assert got["qty"][1:5] == ["50.0", "1", "3", "3"]


def test_profile_of_no_rows_lists_the_columns_with_nothing_in_them(conn):
    got = _rows(profile(conn, "SELECT * FROM t WHERE false", []).value)
    assert got["qty"] == ["INTEGER", "0.0", "0", "", "", ""]


def test_profile_calls_a_key_like_text_column_so_instead_of_counting_it(conn, monkeypatch):
    monkeypatch.setattr(results, "TOP_VALUES_MAX_DISTINCT", 2)
    got = _rows(profile(conn, "SELECT * FROM t", []).value)
    assert got["order_id"][5] == "(key-like: too many distinct values)"
    assert got["status"][5] == "placed (2), shipped (1)"


def test_profile_escapes_pipes_and_cuts_long_values(conn):
    conn.execute("INSERT INTO t VALUES ('a|b', ?, 1, NULL)", ["x" * 60])
    md = profile(conn, "SELECT * FROM t", []).value
    assert "a\\|b" in md
    assert "x" * 37 + "..." in md
