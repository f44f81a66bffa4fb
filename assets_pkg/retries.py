"""Which failures are worth a retry.

Steps that touch storage retry with exponential backoff and jitter, but only for errors
that can pass: an I/O error, a file briefly unavailable, a DuckDB I/O error. Anything
else (a bad contract, a bad setting, a corrupt file, a bug) fails the step at once with
``dg.Failure``: retrying it would only delay the same answer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

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

P = ParamSpec("P")
R = TypeVar("R")


def is_transient(exc: BaseException) -> bool:
    # polars raises OSError for a file it cannot reach and ComputeError for one it cannot
    # decode: only the first can pass
    return isinstance(exc, TRANSIENT_ERRORS)


def permanent_unless_transient(fn: Callable[P, R]) -> Callable[P, R]:
    """Let transient errors reach the retry policy; turn the rest into a final failure."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except dg.Failure:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise
            raise dg.Failure(
                description=f"{type(exc).__name__}: {exc} (a permanent error: not retried)",
                allow_retries=False,
            ) from exc

    return wrapper
