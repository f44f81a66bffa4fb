"""`assets_pkg.checks.frame_key_stats`: duplicates and NULL keys, one key column or many."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from assets_pkg.checks import frame_key_stats

values = st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))


@given(st.lists(st.tuples(values, values), max_size=30))
def test_counts_match_a_row_by_row_count(rows: list[tuple[str | None, str | None]]) -> None:
    df = pl.DataFrame(rows, schema={"k1": pl.String, "k2": pl.String}, orient="row")
    for key in (["k1"], ["k1", "k2"]):
        seen = [tuple(r[: len(key)]) for r in rows]
        duplicates, null_keys = frame_key_stats(df, key)
        assert duplicates == len(seen) - len(set(seen))
        assert null_keys == sum(any(v is None for v in r) for r in seen)
