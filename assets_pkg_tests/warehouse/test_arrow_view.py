"""``arrow_view``: frames handed to DuckDB with their strings shared, read exactly as before."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import polars as pl
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from assets_pkg.resources.warehouse import arrow_view

FRAME = pl.DataFrame(
    {
        "order_id": ["O1", None, "O-" + "9" * 40, "é€😀 longer than twelve bytes", ""],
        "order_date": [dt.date(2024, 3, 1), None, dt.date(2024, 3, 2), dt.date(1, 1, 1), None],
        "revenue": pl.Series(
            [Decimal("1.10"), None, Decimal("-2.00"), Decimal("99999999999999.99"), Decimal(0)],
            dtype=pl.Decimal(18, 2),
        ),
        "order_ts": [dt.datetime(2024, 3, 1, 9, 0, 0, 123456), None, None, None, None],
        "is_paid": [True, None, False, True, False],
        "item_count": [1, None, 3, -4, 0],
    }
)


def _read(relation: object) -> tuple[list, list]:
    with duckdb.connect() as conn:
        conn.register("_t", relation)
        described = conn.execute("DESCRIBE _t").fetchall()
        return described, conn.execute("SELECT * FROM _t").fetchall()


def test_duckdb_reads_the_view_as_it_reads_the_frame() -> None:
    assert _read(arrow_view(FRAME)) == _read(FRAME)


def test_strings_are_shared_as_views_not_copied() -> None:
    table = arrow_view(FRAME)
    assert table.schema.field("order_id").type == pa.string_view()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=30)), max_size=40))
def test_any_strings_group_alike(values: list[str | None]) -> None:
    frame = pl.DataFrame({"s": pl.Series(values, dtype=pl.String)})
    query = "SELECT s, count(*) FROM _t GROUP BY s ORDER BY s NULLS LAST"
    with duckdb.connect() as conn:
        conn.register("_t", arrow_view(frame))
        got = conn.execute(query).fetchall()
    with duckdb.connect() as conn:
        conn.register("_t", frame)
        assert got == conn.execute(query).fetchall()
