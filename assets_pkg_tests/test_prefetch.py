"""``prefetched`` and ``Behind``: the read-ahead and write-behind the ingest pass and the
staging steps chunk their work with."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from assets_pkg.prefetch import Behind, prefetched


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


def test_behind_runs_a_call_on_its_thread_and_the_next_waits_for_it() -> None:
    release = threading.Event()
    calls: list[tuple[str, str]] = []

    def write(name: str) -> None:
        calls.append((name, threading.current_thread().name))
        assert release.wait(10)

    with ThreadPoolExecutor(1, thread_name_prefix="writer") as pool:
        behind = Behind(pool)
        behind.submit(write, "day 1")  # returns with the call under way
        second = threading.Thread(target=behind.submit, args=(write, "day 2"))
        second.start()
        second.join(0.3)
        assert second.is_alive(), "a second call started while the first was in flight"
        release.set()
        second.join(10)
        behind.wait()
    assert [name for name, _ in calls] == ["day 1", "day 2"]
    assert all(thread.startswith("writer") for _, thread in calls)


def test_behind_raises_a_failed_call_where_the_caller_next_waits() -> None:
    def fail(day: str) -> None:
        raise OSError(28, f"No space left on device writing {day}")

    with ThreadPoolExecutor(1) as pool:
        behind = Behind(pool)
        behind.submit(fail, "day 1")
        with pytest.raises(OSError, match="writing day 1"):
            behind.submit(fail, "day 2")  # waits for day 1 first: its error, not day 2's
        behind.wait()  # raised once; day 2 never started
    inline = Behind(None)
    with pytest.raises(OSError, match="writing day 3"):
        inline.submit(fail, "day 3")  # without an executor the call runs in submit
