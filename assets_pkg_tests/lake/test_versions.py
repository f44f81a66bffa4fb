"""The version index: ``merge_latest`` (greatest (file name, row number) wins) and ``is_landed``."""

from __future__ import annotations

import datetime as dt
import itertools

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from assets_pkg.contracts import SOURCES
from assets_pkg.lake.ingest import (
    files_in_delivery_order,
    in_delivery_order,
    index_schema,
    is_landed,
    merge_latest,
    without_keys,
)
from assets_pkg.lake.parsing import REJECT_SCHEMA, ParsedFile

ORDERS = SOURCES["orders"]
ITEMS = SOURCES["order_items"]
D1, D2, D3 = dt.date(2024, 3, 1), dt.date(2024, 3, 2), dt.date(2024, 3, 3)


def frame(rows: list[tuple], contract=ORDERS) -> pl.DataFrame:
    """Rows of (*key, date, file, row) as an index-shaped frame."""
    return pl.DataFrame(rows, schema=index_schema(contract), orient="row")


def empty(contract=ORDERS) -> pl.DataFrame:
    return pl.DataFrame(schema=index_schema(contract))


def merge(batch: pl.DataFrame, index: pl.DataFrame, contract=ORDERS):
    return merge_latest(batch, index, list(contract.key))


def sorted_index(df: pl.DataFrame, contract=ORDERS) -> pl.DataFrame:
    return df.select(list(index_schema(contract))).sort(list(contract.key))


def test_first_batch_keeps_the_greatest_file_and_row_per_key():
    batch = frame(
        [
            ("O1", D1, "orders_001.csv", 1),
            ("O1", D2, "orders_002.csv", 1),
            ("O1", D3, "orders_001.csv", 9),
            ("O2", D1, "orders_002.csv", 4),
            ("O2", D2, "orders_002.csv", 2),
        ]
    )
    new_index, winners, moved = merge(batch, empty())
    expected = frame([("O1", D2, "orders_002.csv", 1), ("O2", D1, "orders_002.csv", 4)])
    assert_frame_equal(sorted_index(new_index), expected)
    assert_frame_equal(sorted_index(winners), expected)
    assert winners["_old_date"].null_count() == 2
    assert moved.height == 0


def test_an_older_version_arriving_later_changes_nothing():
    index = frame([("O1", D2, "orders_005.csv", 3)])
    batch = frame(
        [
            ("O1", D1, "orders_004.csv", 99),  # older file, whatever its row
            ("O1", D3, "orders_005.csv", 2),  # same file, earlier row
            ("O1", D3, "orders_005.csv", 3),  # the very same version again
        ]
    )
    new_index, winners, moved = merge(batch, index)
    assert_frame_equal(sorted_index(new_index), index)
    assert winners.height == 0
    assert moved.height == 0


def test_a_later_row_of_the_same_file_wins():
    index = frame([("O1", D1, "orders_005.csv", 3)])
    new_index, winners, moved = merge(frame([("O1", D1, "orders_005.csv", 4)]), index)
    assert_frame_equal(sorted_index(new_index), frame([("O1", D1, "orders_005.csv", 4)]))
    assert winners["_old_date"].to_list() == [D1]
    assert moved.height == 0  # same date: not moved


def test_file_names_compare_lexicographically_not_numerically():
    index = frame([("O1", D1, "orders_9.csv", 1)])
    new_index, winners, _ = merge(frame([("O1", D2, "orders_10.csv", 1)]), index)
    assert_frame_equal(sorted_index(new_index), index)
    assert winners.height == 0


def test_moved_keys_report_their_old_date():
    index = frame(
        [
            ("O1", D1, "orders_001.csv", 1),
            ("O2", D1, "orders_001.csv", 2),
            ("O3", D2, "orders_001.csv", 3),
        ]
    )
    batch = frame(
        [
            ("O1", D3, "orders_002.csv", 1),  # moves D1 -> D3
            ("O2", D1, "orders_002.csv", 2),  # new version, same date
            ("O4", D2, "orders_002.csv", 3),  # new key
        ]
    )
    new_index, winners, moved = merge(batch, index)
    expected = frame(
        [
            ("O1", D3, "orders_002.csv", 1),
            ("O2", D1, "orders_002.csv", 2),
            ("O3", D2, "orders_001.csv", 3),
            ("O4", D2, "orders_002.csv", 3),
        ]
    )
    assert_frame_equal(sorted_index(new_index), expected)
    assert sorted(winners["order_id"].to_list()) == ["O1", "O2", "O4"]
    assert moved.select("order_id", "date", "_old_date").rows() == [("O1", D3, D1)]


def test_moved_and_moved_back_in_one_batch_is_no_move():
    index = frame([("O1", D1, "orders_001.csv", 1)])
    batch = frame([("O1", D3, "orders_002.csv", 1), ("O1", D1, "orders_002.csv", 2)])
    new_index, winners, moved = merge(batch, index)
    assert_frame_equal(sorted_index(new_index), frame([("O1", D1, "orders_002.csv", 2)]))
    assert winners.height == 1
    assert moved.height == 0


BATCHES = [
    [("O1", D1, "orders_001.csv", 1), ("O2", D1, "orders_001.csv", 2)],
    [("O1", D2, "orders_003.csv", 1), ("O3", D3, "orders_003.csv", 7)],
    [("O1", D3, "orders_002.csv", 5), ("O2", D2, "orders_002.csv", 1), ("O3", D1, "a.csv", 9)],
]
FINAL = [
    ("O1", D2, "orders_003.csv", 1),
    ("O2", D2, "orders_002.csv", 1),
    ("O3", D3, "orders_003.csv", 7),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(BATCHES)))))
def test_latest_version_wins_regardless_of_arrival_order(order):
    index = empty()
    for i in order:
        index, _, _ = merge(frame(BATCHES[i]), index)
    assert_frame_equal(sorted_index(index), frame(FINAL))


def test_all_batches_at_once_equal_one_by_one():
    together, _, _ = merge(frame([row for batch in BATCHES for row in batch]), empty())
    assert_frame_equal(sorted_index(together), frame(FINAL))


def test_merging_the_same_batch_twice_is_a_no_op():
    batch = frame(BATCHES[2])
    once, _, _ = merge(batch, empty())
    twice, winners, moved = merge(batch, once)
    assert_frame_equal(sorted_index(twice), sorted_index(once))
    assert winners.height == 0
    assert moved.height == 0


_VERSIONS = st.lists(
    st.tuples(
        st.sampled_from(["O1", "O2", "O3"]),
        st.sampled_from([D1, D2, D3]),
        st.sampled_from(["orders_1.csv", "orders_10.csv", "orders_2.csv"]),
        st.integers(1, 4),
    ),
    max_size=24,
    unique_by=lambda r: (r[2], r[3]),  # a (file, row) is one version
)


@given(versions=_VERSIONS, cut=st.integers(0, 24), shuffle=st.randoms(use_true_random=False))
def test_a_batch_in_delivery_order_merges_as_a_shuffled_one(versions, cut, shuffle):
    """The version sort is skipped for a batch already in (file, row) order: same result."""
    previous, rows = versions[:cut], versions[cut:]
    index, _, _ = merge(frame(previous), empty())
    ordered = frame(sorted(rows, key=lambda r: (r[2], r[3])))
    mixed = list(rows)
    shuffle.shuffle(mixed)
    assert_frame_equal(in_delivery_order(frame(mixed)), ordered.sort("_file_name", "_row_number"))
    for got, want in zip(merge(ordered, index), merge(frame(mixed), index), strict=True):
        assert_frame_equal(got, want, check_row_order=False)


_FILES = st.lists(
    st.tuples(
        st.sampled_from(["orders_1.csv", "orders_10.csv", "orders_2.csv", "orders_é.csv"]),
        st.lists(st.integers(1, 9), unique=True, max_size=4),
    ),
    max_size=4,
    unique_by=lambda f: f[0],  # a source's file names are distinct
)


@given(files=_FILES)
def test_files_in_delivery_order_orders_a_chunk_as_the_row_by_row_check(files):
    """Told per file (names, then each file's row numbers), a chunk comes out of
    ``in_delivery_order`` as the check of every row against the one before leaves it."""
    parsed = [
        ParsedFile(
            "orders",
            name,
            frame([(f"O{row}", D1, name, row) for row in rows]),
            pl.DataFrame(schema=REJECT_SCHEMA),
            0,
        )
        for name, rows in files
    ]
    chunk = pl.concat([p.valid for p in parsed]) if parsed else empty()
    told = files_in_delivery_order(parsed)
    assert_frame_equal(in_delivery_order(chunk, told), in_delivery_order(chunk))
    if told:  # never says so of rows out of order
        assert in_delivery_order(chunk) is chunk


def test_composite_key_of_order_items():
    index = frame([("O1", 1, D1, "items_001.csv", 1), ("O1", 2, D1, "items_001.csv", 2)], ITEMS)
    batch = frame([("O1", 2, D2, "items_002.csv", 1), ("O2", 1, D2, "items_002.csv", 2)], ITEMS)
    new_index, _, moved = merge(batch, index, ITEMS)
    expected = frame(
        [
            ("O1", 1, D1, "items_001.csv", 1),
            ("O1", 2, D2, "items_002.csv", 1),
            ("O2", 1, D2, "items_002.csv", 2),
        ],
        ITEMS,
    )
    assert_frame_equal(sorted_index(new_index, ITEMS), expected)
    assert moved.select("order_id", "line_number", "_old_date").rows() == [("O1", 2, D1)]


def test_new_index_keeps_the_index_schema():
    new_index, _, _ = merge(frame(BATCHES[0]), empty())
    assert new_index.schema == pl.Schema(index_schema(ORDERS))


_KEYS = st.lists(st.tuples(st.sampled_from(["E1", "E2", "E3", None]), st.integers(1, 2)))


@given(rows=_KEYS, drop=_KEYS, pieces=st.integers(1, 4), width=st.integers(1, 2))
def test_without_keys_is_an_anti_join_that_keeps_order(rows, drop, pieces, width):
    key = ["event_id", "n"][:width]
    frame_ = pl.DataFrame(rows, schema={"event_id": pl.String, "n": pl.Int64}, orient="row")
    frame_ = frame_.with_row_index("pos")
    # a chunk arrives in pieces (one per file), as ``_apply`` concatenates them
    step = max(1, frame_.height // pieces)
    chunked = pl.concat([frame_.slice(i, step) for i in range(0, frame_.height, step)] or [frame_])
    keys = pl.DataFrame(drop, schema={"event_id": pl.String, "n": pl.Int64}, orient="row")
    expected = frame_.join(keys.select(key), on=key, how="anti", maintain_order="left")
    assert_frame_equal(without_keys(chunked, keys.select(key), key), expected)


@pytest.mark.parametrize(
    ("name", "landed"),
    [
        ("orders_001.csv", True),
        ("events.jsonl", True),
        ("orders.tmp.csv", True),
        ("orders.partial.csv", True),
        ("a.b", True),
        ("tmp", True),
        (".orders_001.csv", False),
        (".hidden", False),
        ("orders_001.csv.tmp", False),
        ("orders_001.csv.partial", False),
        (".orders_001.csv.tmp", False),
        ("x.tmp", False),
        ("x.partial", False),
    ],
)
def test_is_landed(name, landed):
    assert is_landed(name) is landed
