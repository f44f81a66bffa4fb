"""Which failures are worth a retry.

Steps that touch storage retry with exponential backoff and jitter, but only for errors
that can pass: an I/O error, a file briefly unavailable, a DuckDB I/O error, and on an S3
lake a connection or timeout error, a 5xx, throttling. Anything else (a bad contract, a bad
setting, a corrupt file, no access to a bucket, a bug) fails the step at once with
``dg.Failure``: retrying it would only delay the same answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

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
    # botocore: endpoint unreachable, connect timeout (ConnectionError), read timeout,
    # connection reset (HTTPClientError)
    BotoConnectionError,
    HTTPClientError,
)

#: S3 error codes that say "try again later"
TRANSIENT_S3_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "PreconditionFailed",  # a manifest swap that kept losing the race
    }
)

#: what an object-store error from Polars says when retrying cannot help (the S3 code is in
#: its text; a missing object is not here: it is a reader racing a superseded object's
#: deletion, and a retry reads the manifest again)
PERMANENT_S3_MARKERS = (
    "AccessDenied",
    "NoSuchBucket",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidBucketName",
    "403 Forbidden",
)


def is_transient(exc: BaseException) -> bool:
    # polars raises OSError for a file it cannot reach (5xx, timeouts included) and
    # ComputeError for one it cannot decode: only the first can pass, unless the object
    # store refused us (PermissionError, or an S3 code for no access / no bucket)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return error.get("Code") in TRANSIENT_S3_CODES or int(status) >= 500
    if isinstance(exc, PermissionError):
        return False
    if isinstance(exc, OSError) and any(m in str(exc) for m in PERMANENT_S3_MARKERS):
        return False
    return isinstance(exc, TRANSIENT_ERRORS)


def describe(exc: BaseException) -> str:
    """One line: the error's first line, and the object it concerns when the text names one.

    Object-store errors from Polars run over several lines and end with the path; only
    URLs, codes and messages are kept, never request headers, so no credential shows.
    """
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    path = re.search(r"\(path: (s3://[^)]+)\)", text)
    code = re.search(r"<Code>([^<]+)</Code>", text)
    extra: list[str] = []
    if code and code.group(1) not in first:
        extra.append(f"S3 code {code.group(1)}")
    if path and path.group(1) not in first:
        extra.append(path.group(1))
    line = f"{type(exc).__name__}: {first}"
    return f"{line} [{'; '.join(extra)}]" if extra else line


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
            description=f"{describe(exc)} (a permanent error: not retried)",
            allow_retries=False,
        ) from exc
