"""Read-ahead for chunked work: the next chunk is computed while this one is used.

Both the ingest pass (parse the next files while this chunk is applied) and the staging
steps (read the next days from the lake while these are checked and written) work in
chunks whose two halves release the GIL (Polars, Parquet I/O), so one read-ahead thread
keeps the second core busy while memory holds at most two chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def prefetched(items: Iterator[T]) -> Iterator[T]:
    """``items``, the next one computed in a thread while the caller works on this one.

    Order and errors are those of ``items``: an exception raised making an item is raised
    to the caller where that item would have been yielded.
    """
    done = object()
    with ThreadPoolExecutor(1, thread_name_prefix="prefetch") as pool:
        ahead = pool.submit(next, items, done)
        while (item := ahead.result()) is not done:
            ahead = pool.submit(next, items, done)
            yield item  # type: ignore[misc]
