"""``prefetched``: the read-ahead the ingest pass and the staging steps chunk their work with."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from assets_pkg.prefetch import prefetched


def test_items_come_in_order_and_all_of_them() -> None:
    assert list(prefetched(iter(range(7)))) == list(range(7))
    assert list(prefetched(iter([]))) == []


def test_the_next_item_is_made_while_the_caller_holds_this_one() -> None:
    second_started = threading.Event()

    def items() -> Iterator[int]:
        yield 1
        second_started.set()
        yield 2

    seen = []
    for item in prefetched(items()):
        if item == 1:
            # without read-ahead nothing makes item 2 until this loop asks for it
            assert second_started.wait(timeout=10)
        seen.append(item)
    assert seen == [1, 2]


def test_an_error_making_an_item_reaches_the_caller_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise ValueError("chunk 2 is corrupt")

    got = []
    with pytest.raises(ValueError, match="chunk 2 is corrupt"):
        for item in prefetched(items()):
            got.append(item)
    assert got == [1]


def test_at_most_one_item_is_made_ahead() -> None:
    made = []

    def items() -> Iterator[int]:
        for i in range(5):
            made.append(i)
            yield i

    it = prefetched(items())
    assert next(it) == 0
    time.sleep(0.2)  # time enough for a runaway producer to run ahead
    assert made == [0, 1]
    assert list(it) == [1, 2, 3, 4]
