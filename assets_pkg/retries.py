"""Which failures are worth a retry.

Steps that touch storage retry with exponential backoff and jitter, but only for errors
that can pass: an I/O error, a file briefly unavailable, a DuckDB I/O error. Anything
else (a bad contract, a bad setting, a corrupt file, a bug) fails the step at once with
``dg.Failure``: retrying it would only delay the same answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb

STORAGE_RETRY = dg.RetryPolicy(
    max_retries=3,
    delay=1.0,
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)

#: errors a retry can cure: the storage was briefly unavailable
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    duckdb.IOException,
)


def is_transient(exc: BaseException) -> bool:
    # polars raises OSError for a file it cannot reach and ComputeError for one it cannot
    # decode: only the first can pass
    return isinstance(exc, TRANSIENT_ERRORS)


@contextmanager
def storage_errors() -> Iterator[None]:
    """Let transient errors reach the retry policy; turn the rest into a final failure.

    A context manager, not a decorator, so the asset function stays the one Dagster links
    to as its source.
    """
    try:
        yield
    except dg.Failure:
        raise
    except Exception as exc:
        if is_transient(exc):
            raise
        raise dg.Failure(
            description=f"{type(exc).__name__}: {exc} (a permanent error: not retried)",
            allow_retries=False,
        ) from exc
