"""The ingest manifest: every landed file seen, in SQLite beside the data, never in DuckDB.

Sensors read it every tick; keeping it out of the warehouse file keeps them off DuckDB's
per-process lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    source      TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    status      TEXT NOT NULL,            -- loaded | quarantined
    reason      TEXT,
    ingest_id   TEXT NOT NULL,
    run_id      TEXT,
    rows_loaded INTEGER NOT NULL DEFAULT 0,
    rows_rejected INTEGER NOT NULL DEFAULT 0,
    ingested_at TEXT NOT NULL,
    PRIMARY KEY (source, file_name)
);
CREATE TABLE IF NOT EXISTS relandings (
    source      TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    outcome     TEXT NOT NULL,            -- unchanged | name_reused
    ingest_id   TEXT NOT NULL,
    seen_at     TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class KnownFile:
    size: int
    sha256: str
    status: str


class Manifest:
    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=60)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            with conn:
                yield conn
        finally:
            conn.close()

    def known(self, source: str) -> dict[str, KnownFile]:
        """Every file name this source has seen, loaded or quarantined."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT file_name, size, sha256, status FROM files WHERE source = ?", (source,)
            ).fetchall()
        return {name: KnownFile(size, sha, status) for name, size, sha, status in rows}

    def record(self, files: list[dict], relandings: list[dict], at: str) -> None:
        """Record a pass's files and re-landings, in one transaction.

        ``at`` is the pass's time (ISO 8601). Idempotent, so a pass's commit can be replayed
        (``journal.commit``): a loaded file keeps its first record, and a re-landing is one
        row per (file, digest, pass, time).
        """
        with self.connect() as conn:
            conn.executemany(
                """INSERT INTO files (source, file_name, size, sha256, status, reason, ingest_id,
                                      run_id, rows_loaded, rows_rejected, ingested_at)
                   VALUES (:source, :file_name, :size, :sha256, :status, :reason, :ingest_id,
                           :run_id, :rows_loaded, :rows_rejected, :now)
                   ON CONFLICT (source, file_name) DO UPDATE SET
                       size = excluded.size, sha256 = excluded.sha256, status = excluded.status,
                       reason = excluded.reason, ingest_id = excluded.ingest_id,
                       run_id = excluded.run_id, rows_loaded = excluded.rows_loaded,
                       rows_rejected = excluded.rows_rejected, ingested_at = excluded.ingested_at
                   WHERE files.status = 'quarantined'""",
                [
                    {"reason": None, "run_id": None, "rows_loaded": 0, "rows_rejected": 0}
                    | r
                    | {"now": at}
                    for r in files
                ],
            )
            conn.executemany(
                """INSERT INTO relandings (source, file_name, sha256, outcome, ingest_id, seen_at)
                   SELECT :source, :file_name, :sha256, :outcome, :ingest_id, :now
                   WHERE NOT EXISTS (
                       SELECT 1 FROM relandings WHERE source = :source
                       AND file_name = :file_name AND sha256 = :sha256
                       AND ingest_id = :ingest_id AND seen_at = :now)""",
                [r | {"now": at} for r in relandings],
            )

    def counts(self) -> dict[str, int]:
        with self.connect() as conn:
            rows = conn.execute("SELECT status, count(*) FROM files GROUP BY status").fetchall()
        return dict(rows)
