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


def test_colliding_hashes_are_not_duplicates(monkeypatch) -> None:
    # every key hashes alike: the exact count decides, and distinct keys are no duplicates
    df = pl.DataFrame({"k1": ["a", "b", "c", "c"], "k2": ["x", "x", "x", "y"]})
    monkeypatch.setattr(pl.Series, "hash", lambda self, *a, **k: pl.Series([0] * self.len()))
    monkeypatch.setattr(pl.Expr, "hash", lambda self, *a, **k: self.is_null().cast(pl.UInt64) * 0)
    assert frame_key_stats(df, ["k1"]) == (1, 0)
    assert frame_key_stats(df, ["k1", "k2"]) == (0, 0)
