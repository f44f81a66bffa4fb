"""Read-ahead and write-behind for chunked work.

Both the ingest pass (parse the next files while this chunk is applied) and the staging
steps (read the next days from the lake while these are checked and written) work in
chunks whose halves release the GIL (Polars, Parquet I/O), so one read-ahead thread keeps
the second core busy while memory holds at most two chunks. Their writes go behind them
the same way (``Behind``): one write in flight while the next chunk is worked on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, TypeVar

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


class Behind:
    """Calls run on ``executor`` behind the caller, one in flight at most (write-behind).

    ``submit`` first waits for the call before it, so what waits to be written stays
    bounded; ``wait`` returns once the call in flight is done and raises its error. With no
    executor a call runs at once, in ``submit``.
    """

    def __init__(self, executor: Executor | None) -> None:
        self.executor = executor
        self._in_flight: Future[Any] | None = None

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> None:
        self.wait()
        if self.executor is None:
            fn(*args)
        else:
            self._in_flight = self.executor.submit(fn, *args)

    def wait(self) -> None:
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.result()
