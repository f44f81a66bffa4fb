"""One ingest pass over the landing zone: what `assets-pkg ingest` and the landing sensor run.

For each source, in the contract's order, it picks up the landed files (in name order),
parses them, writes the valid rows to the lake partitioned by business date, keeps the
version index current, sends bad rows to ``quarantine.rejects`` and unreadable files to
``quarantine/``, and archives what it read. Every step is idempotent, so a pass that is
interrupted can simply be run again.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import itertools
import os
import shutil
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

from assets_pkg.config import Settings
from assets_pkg.contracts import INGEST_ORDER, SOURCES, VERSION_COLUMNS, SourceContract
from assets_pkg.lake.journal import JOURNAL_NAME, Commit, Journal, finish, recover
from assets_pkg.lake.manifest import Manifest
from assets_pkg.lake.parsing import (
    REJECT_SCHEMA,
    ParsedFile,
    UnreadableFile,
    parse_file,
    parse_files,
)
from assets_pkg.prefetch import Behind, prefetched
from assets_pkg.resources.lake import (
    LakeResource,
    index_parts,
    partition_dir,
    write_parquet_file,
)
from assets_pkg.resources.warehouse import WarehouseResource, arrow_view, ensure_schemas

#: a landed file read for parsing: its path, its bytes and their sha256
_Landed = tuple[Path, bytes, str]

NOT_LANDED_SUFFIXES = (".tmp", ".partial")
#: landed bytes parsed, validated and applied together: thousands of small files cost what
#: one file of their size does, and a pass holds two such chunks of a source at a time, one
#: applied while the next is parsed (at 10M items, 96 MiB ran as fast as 128 MiB with a 10%
#: lower peak, parsed on two threads)
CHUNK_BYTES = 96 << 20
#: a source's dated rows held in memory for the lake; past it they are written (``Spool``).
#: At 10M items 256 MiB peaked at 3.8 GiB (the held rows and their per-day copies as they
#: are written); 128 MiB peaked at 3.4 to 3.5 GiB, as fast, for 102 more lake files (1,570)
SPOOL_BYTES = 128 << 20

REJECTS_DDL = """
CREATE TABLE IF NOT EXISTS quarantine.rejects (
    source          VARCHAR NOT NULL,
    file_name       VARCHAR NOT NULL,
    row_number      BIGINT NOT NULL,
    reason          VARCHAR NOT NULL,
    detail          VARCHAR,
    raw_record      VARCHAR,
    partition_date  DATE,
    ingest_id       VARCHAR NOT NULL,
    rejected_at     TIMESTAMP NOT NULL,
    resolved_at     TIMESTAMP
)
"""


def is_landed(name: str) -> bool:
    """Producers write, then rename: dot-files and .tmp/.partial names are still in flight."""
    return not name.startswith(".") and not name.endswith(NOT_LANDED_SUFFIXES)


def landed_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        (p for p in folder.iterdir() if is_landed(p.name) and (p.is_file() or p.is_symlink())),
        key=lambda p: p.name,
    )


def safe_name(name: str) -> bool:
    """A landing name to keep as it is: UTF-8, no control characters.

    Names come from the directory listing, so they hold no ``/``; a name with a newline,
    an escape sequence or undecodable bytes would still reach logs, notes and paths.
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes, kept by the listing as surrogates
        return False
    return not any(ord(c) < 32 or ord(c) == 127 for c in name)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- report


@dataclass
class SourceReport:
    files_loaded: list[str] = field(default_factory=list)
    files_quarantined: list[tuple[str, str]] = field(default_factory=list)
    files_unchanged: list[str] = field(default_factory=list)
    rows_loaded: int = 0
    rows_rejected: int = 0
    collapsed: int = 0
    redelivered: int = 0
    orphans_pending: int = 0
    orphans_resolved: int = 0
    touched: set[dt.date] = field(default_factory=set)
    rows_per_day: dict[dt.date, int] = field(default_factory=dict)


@dataclass
class IngestReport:
    ingest_id: str
    sources: dict[str, SourceReport]

    @property
    def files_seen(self) -> int:
        return sum(
            len(r.files_loaded) + len(r.files_quarantined) + len(r.files_unchanged)
            for r in self.sources.values()
        )

    @property
    def rejects(self) -> int:
        return sum(r.rows_rejected for r in self.sources.values())

    def touched_dates(self) -> set[dt.date]:
        return set().union(*(r.touched for r in self.sources.values()))


# --------------------------------------------------------------------------- locking


@contextmanager
def ingest_lock(data_dir: Path, timeout_s: float = 600.0) -> Iterator[None]:
    """One ingest pass at a time per data dir (sensor runs and the CLI alike)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / ".ingest.lock", "a+") as fh:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"another ingest pass held {data_dir / '.ingest.lock'} for {timeout_s:.0f}s"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------- versions


def index_schema(contract: SourceContract) -> dict[str, pl.DataType]:
    return {k: contract.column(k).dtype for k in contract.key} | {
        "date": pl.Date(),
        "_file_name": pl.String(),
        "_row_number": pl.Int64(),
    }


def _valid_schema(contract: SourceContract) -> dict[str, pl.DataType]:
    """Columns of parsed valid rows: typed contract columns, version, raw text."""
    return {c.name: c.dtype for c in contract.columns} | {
        "_file_name": pl.String(),
        "_row_number": pl.Int64(),
        "_raw": pl.String(),
    }


def _newer(file_col: str, row_col: str, old_file: str, old_row: str) -> pl.Expr:
    return (
        pl.col(old_file).is_null()
        | (pl.col(file_col) > pl.col(old_file))
        | ((pl.col(file_col) == pl.col(old_file)) & (pl.col(row_col) > pl.col(old_row)))
    )


def _index_join(
    index: pl.DataFrame, keys: pl.DataFrame, key: list[str], how: Literal["semi", "anti"]
) -> pl.DataFrame:
    """The index rows whose key is (``semi``) or is not (``anti``) among ``keys``, in index
    order.

    A join hashes its right side: joining a chunk against the whole index hashed every key
    ever loaded once per chunk (quadratic over a pass); this hashes the chunk's keys and
    streams the index past them. Lazily, on Polars' streaming engine: an eager join runs on
    the in-memory engine, 1.2x to 1.7x slower on a 10M pass's indexes (4M to 18M keys).
    """
    return (
        index.lazy().join(keys.lazy().select(key), on=key, how=how, maintain_order="left").collect()
    )


def _entries_of(index: pl.DataFrame, rows: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """The index entries of the keys in ``rows``."""
    return _index_join(index, rows, key, "semi")


def without_keys(rows: pl.DataFrame, keys: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """``rows`` whose key is not among ``keys`` (a few), in their order.

    A filter on a membership mask rather than an anti join, which gathers every column of
    a chunk held in hundreds of pieces: a chunk of events (500k rows, 480 files) took
    0.056 s by anti join, and 0.020 s this way with 1,000 keys to drop (none: no work).
    A null key is among none, as in a join (a key of several columns takes the join).
    """
    if not keys.height:
        return rows
    if len(key) > 1:  # a struct compares nulls as equal: a join's semantics need a join
        return rows.join(keys, on=key, how="anti", maintain_order="left")
    return rows.filter(~pl.col(key[0]).is_in(keys[key[0]].implode()).fill_null(False))


def in_delivery_order(rows: pl.DataFrame, ordered: bool | None = None) -> pl.DataFrame:
    """``rows`` ordered by (file name, row number); as they are when they already are.

    A chunk is its files' rows in name order, each file's in row order, so the sort that
    decides which version came last mostly has nothing to do: checking the order is a
    fifth of sorting by a string column (9 s of a 10M-item pass's main thread). Where the
    caller knows (``ordered``: ``files_in_delivery_order``), nothing is checked: comparing
    each row's file name with the one before cost 11 to 68 ms a chunk.
    """
    if ordered is None:
        f, r = pl.col("_file_name"), pl.col("_row_number")
        in_order = (f > f.shift()) | ((f == f.shift()) & (r > r.shift()))
        ordered = rows.select(in_order.all()).item()  # the first row's null is ignored
    return rows if ordered else rows.sort(VERSION_COLUMNS)


def files_in_delivery_order(parsed: Sequence[ParsedFile]) -> bool:
    """Whether the valid rows of ``parsed``, one file after another, are in delivery order:
    the files by name, each file's rows by row number (about 1 ms a chunk)."""
    names = [p.file_name for p in parsed]
    return all(a < b for a, b in itertools.pairwise(names)) and all(
        p.valid["_row_number"].is_sorted() for p in parsed
    )


def merge_latest(
    batch: pl.DataFrame, index: pl.DataFrame, key: list[str], ordered: bool | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Merge a batch of dated versions into the version index (greatest (file, row) wins).

    Returns the new index, the keys whose live version changed (with their old date),
    and the keys that moved to a different date. ``ordered``: as ``in_delivery_order``.
    """
    latest = in_delivery_order(batch, ordered).unique(subset=key, keep="last")
    joined = latest.select([*key, "date", "_file_name", "_row_number"]).join(
        _entries_of(index, latest, key).rename(
            {"date": "_old_date", "_file_name": "_old_file", "_row_number": "_old_row"}
        ),
        on=key,
        how="left",
    )
    winners = joined.filter(_newer("_file_name", "_row_number", "_old_file", "_old_row"))
    # only the winners that replace an entry take one out: mostly new keys, often none
    replaced = winners.filter(pl.col("_old_file").is_not_null()).select(key)
    kept = _index_join(index, replaced, key, "anti") if replaced.height else index
    new_index = pl.concat([kept, winners.select(index.columns)])
    moved = winners.filter(
        pl.col("_old_date").is_not_null() & (pl.col("_old_date") != pl.col("date"))
    )
    return new_index, winners, moved


def _parse_group(
    contract: SourceContract, group: list[_Landed]
) -> tuple[list[ParsedFile], dict[str, Exception]]:
    """Parse files together (validation costs per pass, not per file), each judged alone."""
    try:
        return parse_files(contract, [(p.name, data) for p, data, _ in group])
    except Exception:  # a fault in the shared pass: find the file, one at a time
        parsed, failed = [], {}
        for path, data, _ in group:
            try:
                parsed.append(parse_file(contract, path.name, data))
            except Exception as exc:
                failed[path.name] = exc
        return parsed, failed


# --------------------------------------------------------------------------- the pass


@dataclass
class _SourceFiles:
    parsed: list[ParsedFile] = field(default_factory=list)
    loaded: list[dict] = field(default_factory=list)  # manifest rows
    to_archive: list[Path] = field(default_factory=list)


class RowSize:
    """Bytes a source's rows take in memory: measured on its first rows, scaled by rows after.

    ``estimated_size`` walks every string of a frame that was filtered or gathered (20 to
    45 ms a chunk, some 1.8 s of a 10M-item pass on the thread that applies the chunks);
    a source's rows are alike, so one measurement serves the bounds that use it.
    """

    def __init__(self) -> None:
        self.per_row: float | None = None

    def of(self, rows: pl.DataFrame) -> int:
        if self.per_row is None and rows.height:
            self.per_row = rows.estimated_size() / rows.height
        return round(rows.height * (self.per_row or 0.0))


class Spool:
    """A source's dated rows between its chunks and the lake.

    Rows stay in memory up to ``SPOOL_BYTES``; past that, what is held goes to the lake then
    and there, one file per day in it (``write(rows, tag)``, each flush its own file name),
    so a large pass holds a bounded share of its rows and writes each row once. A pass under
    the limit writes one file per day it touched. (The rows once waited in a local spill,
    sorted by day, to be read back for one lake file per day: at 10M items that second write
    and read cost about 2 s per 9M rows, and a day's several files stage the same.)
    """

    def __init__(
        self,
        write: Callable[[pl.DataFrame, str], None],
        limit: int | None = None,
        size: RowSize | None = None,
        writer: Executor | None = None,
    ) -> None:
        self.write = write
        self.limit = SPOOL_BYTES if limit is None else limit
        self.size = size or RowSize()
        #: flushes are written on ``writer`` while the caller goes on (None: in ``flush``)
        self.behind = Behind(writer)
        self.frames: list[pl.DataFrame] = []
        self.held = 0
        self.flushes = 0

    def add(self, rows: pl.DataFrame | None) -> None:
        if rows is None or rows.height == 0:
            return
        self.frames.append(rows)
        self.held += self.size.of(rows)
        if self.held > self.limit:
            self.flush()

    def flush(self) -> None:
        """Write what is held: the first flush of a pass as ``{ingest id}``, the next ones
        with a numbered suffix (``-0001``)."""
        if not self.frames:
            return
        rows = pl.concat(self.frames, how="vertical_relaxed")
        self.frames, self.held = [], 0
        tag = f"-{self.flushes:04d}" if self.flushes else ""
        self.flushes += 1
        self.behind.submit(self.write, rows, tag)  # one flush in flight at most

    def wait(self) -> None:
        """Return once the flush in flight is in the lake; raise its error if it failed."""
        self.behind.wait()


class IngestPass:
    def __init__(
        self,
        settings: Settings,
        lake: LakeResource,
        run_id: str | None = None,
        log: Callable[[str], None] | None = None,
        only: Collection[str] | None = None,
    ) -> None:
        self.settings = settings
        #: ``source/name`` of the files this pass may take (a sensor's micro-batch); None: all
        self.only = None if only is None else frozenset(only)
        self.lake = lake
        self.run_id = run_id
        self.log = log or (lambda _msg: None)
        self.manifest = Manifest(settings.manifest_path)
        self.now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self.reports = {s: SourceReport() for s in INGEST_ORDER}
        self.rejects: list[pl.DataFrame] = []
        self.resolved: pl.DataFrame | None = None
        self.manifest_rows: list[dict] = []
        self.relandings: list[dict] = []
        self.moves: list[tuple[Path, Path]] = []
        self.quarantine_notes: list[tuple[Path, dict]] = []
        #: index and pending files, written only once every lake partition of the pass is
        #: (see ``_commit``)
        self.bookkeeping: dict[tuple[str, ...], pl.DataFrame | Path] = {}
        #: digest ("" until parsed, for a new file) and identity (inode, size, mtime) of each
        #: landed file when it was listed
        self.identities: dict[Path, tuple[str, tuple[int, int, int]]] = {}
        #: bookkeeping read from the lake or from disk while a source is applied
        self._read: dict[tuple[str, ...], pl.DataFrame] = {}
        #: orders whose live version moved to another day in this pass, with their new day
        self.moved_orders = pl.DataFrame(schema={"order_id": pl.String, "date": pl.Date})
        #: rows of a first-delivery source not yet resolved against its version index
        self.arrived: list[pl.DataFrame] = []
        self.arrived_bytes = 0
        #: whether the held rows are in delivery order, and the last file name they come from
        self.arrived_ordered, self.arrived_after = True, ""
        #: the size of the current source's dated rows: the spool's and the held rows' bound
        self.row_size = RowSize()
        #: the lake files this pass writes, for the next pass should this one die
        self.journal = Journal(settings.data_dir / JOURNAL_NAME, "")

    # ---- landing zone

    def _classify(self, source: str, ingest_id_parts: list[str]) -> list[Path]:
        """New files to read; known ones are handled here (no-op or name_reused).

        Only a file whose name the manifest knows is hashed here (same bytes or another
        file under that name?); a new one is hashed when its source is parsed, from the
        bytes parsed, so the landing zone is read once, not twice (5.6 GB at 10M items:
        some 5 s at the start of a pass with one core mostly idle). The ingest id is made
        of the new files' names and sizes and how many files the manifest knows: the same
        landed files on another copy of the platform get the same id, and no later pass
        here does (each records every file it takes; a file taken again under a known
        name adds its digest).
        """
        known = self.manifest.known(source)
        ingest_id_parts.append(f"{source}: {len(known)} known")
        report = self.reports[source]
        fresh: list[Path] = []
        landed = [
            p
            for p in landed_files(self.settings.landing_dir / source)
            if self.only is None or f"{source}/{p.name}" in self.only
        ]
        regular = [p for p in landed if p.is_file() and not p.is_symlink()]
        self._hash([p for p in regular if p.name in known])
        self._stat([p for p in regular if p.name not in known])
        for path in landed:
            if path.is_symlink() or not path.is_file():
                self._quarantine(source, path, None, "unsafe_file", "not a regular file (symlink)")
                continue
            if not safe_name(path.name):
                self._quarantine(
                    source,
                    path,
                    None,
                    "unsafe_file",
                    "the file name has control characters or is not UTF-8; not read",
                )
                continue
            if path not in self.identities:  # gone since it was listed: nothing to ingest
                continue
            digest, (_, size, _) = self.identities[path]
            seen = known.get(path.name)
            if seen is not None and seen.status != "loaded" and seen.sha256 != digest:
                seen = None  # a quarantined file may land again, fixed, under its name
            if seen is None:
                fresh.append(path)
                ingest_id_parts.append(f"{source}/{path.name}/{size}/{digest}")
            elif seen.sha256 == digest:
                report.files_unchanged.append(path.name)
                self.relandings.append(
                    {
                        "source": source,
                        "file_name": path.name,
                        "sha256": digest,
                        "outcome": "unchanged",
                    }
                )
                self.moves.append((path, self._kept_place(source, path, seen.status)))
            else:
                self.relandings.append(
                    {
                        "source": source,
                        "file_name": path.name,
                        "sha256": digest,
                        "outcome": "name_reused",
                    }
                )
                self._quarantine(
                    source,
                    path,
                    digest,
                    "name_reused",
                    f"a file named {path.name} was already ingested with sha256 {seen.sha256}; "
                    f"this copy has sha256 {digest}",
                    record=False,
                )
        return fresh

    def _kept_place(self, source: str, path: Path, status: str) -> Path:
        """Where a re-landed copy of a file the manifest holds with these bytes goes.

        Nowhere (``Path()``: removed from landing) when the pass that took it finished. A
        pass cut short after recording the manifest has its moves finished from its
        journal; should its files still be in landing (a data dir written before the
        journal, a journal removed by hand), a loaded one missing from the archive, or a
        quarantined one whose note is there without it, is moved where that pass would
        have put it. A quarantined file with no note was purged, and stays purged.
        """
        if status == "loaded":
            kept = self.settings.archive_dir / source / path.name
            return Path() if kept.exists() else kept
        kept = self.settings.quarantine_dir / source / path.name
        note = kept.with_name(kept.name + ".error.json")
        return kept if note.exists() and not kept.exists() else Path()

    def _hash(self, paths: list[Path]) -> None:
        """SHA-256 of each file into ``identities``, on every core (hashing and reading release
        the GIL).

        The file's identity (inode, size, mtime) is kept with it: when the file is read
        again to be parsed and is still the same file, its digest is not computed twice.
        """

        def one(path: Path) -> tuple[Path, str, tuple[int, int, int]] | None:
            try:
                with open(path, "rb") as fh:
                    st = os.fstat(fh.fileno())
                    digest = sha256_of(fh.read())
            except FileNotFoundError:
                return None
            return path, digest, (st.st_ino, st.st_size, st.st_mtime_ns)

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            found = [r for r in pool.map(one, paths) if r is not None]
        self.identities.update({path: (digest, ident) for path, digest, ident in found})

    def _stat(self, paths: list[Path]) -> None:
        """The identity of each file into ``identities``, its digest left to the parse."""
        for path in paths:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            self.identities[path] = ("", (st.st_ino, st.st_size, st.st_mtime_ns))

    def _quarantine(
        self,
        source: str,
        path: Path,
        digest: str | None,
        reason: str,
        detail: str,
        record: bool = True,
    ) -> None:
        folder = self.settings.quarantine_dir / source
        shown = path.name if safe_name(path.name) else ascii(path.name)
        kept_as = (
            path.name
            if safe_name(path.name)
            else ("unsafe-name-" + sha256_of(os.fsencode(path.name))[:16])
        )
        target = folder / kept_as
        if target.exists() or target in (t for _, t in self.moves):
            target = folder / f"{kept_as}.{(digest or 'x')[:12]}-{int(time.time())}"
        self.moves.append((path, target))
        note = {
            "source": source,
            "file_name": shown,
            "reason": reason,
            "detail": detail,
            "sha256": digest,
            "quarantined_at": self.now.isoformat() + "Z",
        }
        self.quarantine_notes.append((target.with_name(target.name + ".error.json"), note))
        self.reports[source].files_quarantined.append((shown, reason))
        if record and digest is not None:
            self.manifest_rows.append(
                {
                    "source": source,
                    "file_name": path.name,
                    "size": path.stat().st_size,
                    "sha256": digest,
                    "status": "quarantined",
                    "reason": reason,
                    "run_id": self.run_id,
                }
            )
        self.log(f"quarantined {source}/{shown}: {reason}: {detail}")

    # ---- one source

    def _read_source(self, source: str, files: list[Path]) -> Iterator[_SourceFiles]:
        """The source's new files in name order, parsed a chunk (``CHUNK_BYTES``) at a time.

        The next chunk is read and parsed in a thread while the caller applies this one
        (parsing is mostly Polars work that frees the GIL, applying is partly Python), so
        at most two chunks are in memory; what a chunk's files did is recorded here, on the
        caller's thread, in file-name order.
        """
        for group, parsed, failed in prefetched(self._parsed_chunks(source, files)):
            yield self._record_group(source, group, parsed, failed)

    def _parsed_chunks(
        self, source: str, files: list[Path]
    ) -> Iterator[tuple[list[_Landed], list[ParsedFile], dict[str, Exception]]]:
        contract = SOURCES[source]
        group: list[_Landed] = []
        size = 0
        for path in files:
            try:
                with open(path, "rb") as fh:
                    st = os.fstat(fh.fileno())
                    data = fh.read()
            except FileNotFoundError:  # taken away since it was listed: nothing to ingest
                self.log(f"{source}/{path.name} disappeared from the landing zone; skipped")
                continue
            # the digest of the bytes parsed: a new file's (see ``_classify``), or a file
            # re-landed since it was listed (another inode, size or mtime), hashed again
            digest, ident = self.identities.get(path, ("", None))
            if not digest or ident != (st.st_ino, st.st_size, st.st_mtime_ns):
                digest = sha256_of(data)
            group.append((path, data, digest))
            size += len(data)
            if size >= CHUNK_BYTES:
                yield group, *_parse_group(contract, group)
                group, size = [], 0
        if group:
            yield group, *_parse_group(contract, group)

    def _record_group(
        self,
        source: str,
        group: list[_Landed],
        parsed: list[ParsedFile],
        failed: dict[str, Exception],
    ) -> _SourceFiles:
        """Quarantine a chunk's failed files, and list its parsed ones for the manifest."""
        out = _SourceFiles()
        of_name = {p.file_name: p for p in parsed}
        for path, data, digest in group:
            exc = failed.get(path.name)
            if isinstance(exc, UnreadableFile):
                self._quarantine(source, path, digest, exc.reason, exc.detail)
                continue
            if exc is not None:  # one bad file never stops the good ones
                detail = f"{type(exc).__name__}: {exc}"[:500]
                self._quarantine(source, path, digest, "unreadable", detail)
                continue
            one = of_name[path.name]
            out.parsed.append(one)
            out.to_archive.append(path)
            out.loaded.append(
                {
                    "source": source,
                    "file_name": path.name,
                    "size": len(data),
                    "sha256": digest,
                    "status": "loaded",
                    "run_id": self.run_id,
                    "rows_loaded": one.valid.height,
                    "rows_rejected": one.rejects.height,
                }
            )
        return out

    def _write_partitions(
        self, source: str, rows: pl.DataFrame, ingest_id: str, tag: str = ""
    ) -> None:
        if rows.height == 0:
            return
        rows = rows.select(
            [*SOURCES[source].column_names, "_file_name", "_row_number", "date"]
        ).with_columns(_ingest_id=pl.lit(ingest_id))
        per_day = self.reports[source].rows_per_day
        for day, n in rows.group_by("date").len().iter_rows():
            per_day[day] = per_day.get(day, 0) + n
        files = [
            (part.drop("date"), ("lake", source, partition_dir(day), f"{ingest_id}{tag}.parquet"))
            for (day,), part in rows.partition_by("date", as_dict=True, maintain_order=True).items()
        ]
        self.journal.will_write(parts for _, parts in files)
        self.lake.write_many(files)

    def _index(self, source: str) -> pl.DataFrame:
        """The source's version index: this pass's, once a chunk has changed it."""
        parts = index_parts(source)
        return self._bookkept(parts, index_schema(SOURCES[source]))

    def _bookkept(self, parts: tuple[str, ...], schema: dict[str, pl.DataType]) -> pl.DataFrame:
        """Bookkeeping as this pass has it: in memory, parked on disk, or still the lake's.

        What is read (from disk or the lake) is kept until the current source is done.
        """
        kept = self.bookkeeping.get(parts)
        if isinstance(kept, pl.DataFrame):
            return kept
        if parts not in self._read:
            self._read[parts] = (
                pl.read_parquet(kept) if kept is not None else self.lake.read(*parts, schema=schema)
            )
        return self._read[parts]

    def run(self) -> IngestReport:
        spool_root = self.settings.data_dir / ".ingest-spool"
        # a pass that died first: its lake files undone, or its indexes finished from the
        # copies it parked in the spool
        finished = recover(self.journal.path, self.lake, self.manifest, self.log)
        if finished is not None:
            self._report_finished(finished)
        shutil.rmtree(spool_root, ignore_errors=True)

        parts: list[str] = []
        fresh = {s: self._classify(s, parts) for s in INGEST_ORDER}
        ingest_id = "ing-" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
        self.journal.ingest_id = ingest_id
        # a spool's flushes are written on this thread while the next chunks are applied
        # (the applying thread waited 13.6 s of a 10M pass for its lake writes); leaving
        # the block, even by an error, waits for the write in flight, so a retry's recovery
        # never races a file still being written
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake_flush") as writer:
            self._ingest_sources(fresh, ingest_id, spool_root, writer)

        self._stage_rejects(ingest_id)
        # every lake file is written: from here the pass is finished, even if it dies
        commit = self._commit(ingest_id)
        self.journal.committing(commit)
        finish(self.lake, self.manifest, commit)
        self.journal.close()
        shutil.rmtree(spool_root, ignore_errors=True)
        return IngestReport(ingest_id, self.reports)

    def _ingest_sources(
        self, fresh: dict, ingest_id: str, spool_root: Path, writer: Executor
    ) -> None:
        """Apply every source's chunks in order, its dated rows spooled to the lake."""
        for source in INGEST_ORDER:
            self.row_size = RowSize()
            spool = Spool(
                lambda rows, tag, source=source: self._write_partitions(
                    source, rows, ingest_id, tag
                ),
                size=self.row_size,
                writer=writer,
            )
            # at most two chunks of files in memory: this one applied, the next one parsed
            applied = False
            for src in self._read_source(source, fresh.pop(source)):
                spool.add(self._apply(source, src, ingest_id))
                applied = True
                del src
            if source == "order_items" and not applied:
                # held-back items wait for their order, which may come with no item files
                spool.add(self._apply(source, _SourceFiles(), ingest_id))
            if source == "order_items":
                spool.wait()  # it reads back the items this pass has written
                self._follow_moved_orders(ingest_id)
            if SOURCES[source].first_delivery_wins:
                spool.add(self._first_deliveries(source))
            spool.flush()
            spool.wait()
            self._park(spool_root / "_bookkeeping")
            self._read.clear()

    def _apply(self, source: str, src: _SourceFiles, ingest_id: str) -> pl.DataFrame | None:
        """Apply one chunk of a source's files; returns its dated rows for the lake, if any.

        Chunks are applied in file-name order and carry the version index, the pending
        items and the moved orders in ``self.bookkeeping``, so the result is that of one
        batch of all the source's files.
        """
        contract = SOURCES[source]
        report = self.reports[source]
        batch = (
            pl.concat([p.valid for p in src.parsed], how="vertical_relaxed")
            if src.parsed
            else pl.DataFrame(schema=_valid_schema(contract))
        )
        report.collapsed += sum(p.collapsed for p in src.parsed)
        rejects = [p.rejects for p in src.parsed]
        dated = None
        if contract.is_dimension:
            if batch.height:
                before = len(report.files_loaded)  # a later chunk of the pass: its own file
                parts = ("lake", source, f"{ingest_id}{f'-{before:06d}' if before else ''}.parquet")
                self.journal.will_write([parts])
                self.lake.write(
                    batch.drop("_raw").with_columns(_ingest_id=pl.lit(ingest_id)), *parts
                )
        elif source == "order_items":
            dated, orphan_rejects = self._items(batch)
            rejects.append(orphan_rejects)
        else:
            # chunks come in file-name order: only the order of each file's rows is checked
            ordered = files_in_delivery_order(src.parsed)
            dated = batch.drop("_raw").with_columns(date=pl.col(contract.date_column).dt.date())
            if contract.first_delivery_wins:
                # held, and resolved against the version index a spool's worth at a time:
                # each resolve streams the whole index past the rows' keys (a 10M pass's
                # events: 37 chunks, up to 18.8M keys)
                self.arrived.append(dated)
                if src.parsed:
                    ordered = ordered and self.arrived_after < src.parsed[0].file_name
                    self.arrived_after = src.parsed[-1].file_name
                self.arrived_ordered = self.arrived_ordered and ordered
                self.arrived_bytes += self.row_size.of(dated)
                over = self.arrived_bytes > SPOOL_BYTES
                dated = self._first_deliveries(source) if over else None
            else:
                index, winners, moved = merge_latest(
                    dated, self._index(source), list(contract.key), ordered
                )
                report.touched |= set(winners["date"].unique().to_list())
                report.touched |= set(moved["_old_date"].unique().to_list())
                if source == "orders" and moved.height:
                    self.moved_orders = pl.concat(
                        [self.moved_orders, moved.select("order_id", "date")]
                    ).unique(subset="order_id", keep="last", maintain_order=True)
                self.bookkeeping[index_parts(source)] = index
        if not contract.first_delivery_wins:  # those are counted as they are resolved
            report.rows_loaded += (batch if dated is None else dated).height
        all_rejects = pl.concat(rejects) if rejects else pl.DataFrame(schema=REJECT_SCHEMA)
        if source == "order_items" and all_rejects.height:
            all_rejects = self._date_item_rejects(all_rejects, self._index("orders"))
        report.rows_rejected += all_rejects.filter(pl.col("reason") != "orphan_order_item").height
        self.rejects.append(all_rejects)
        self.manifest_rows.extend(src.loaded)
        report.files_loaded.extend(p.name for p in src.to_archive)
        self.moves.extend((p, self.settings.archive_dir / source / p.name) for p in src.to_archive)
        return dated

    def _first_deliveries(self, source: str) -> pl.DataFrame | None:
        """The held rows (``arrived``) whose key was never delivered before, into the version
        index; the rest (redeliveries) are counted and dropped.

        Rows are held in delivery order (chunks in file-name order), so the first of a key
        among them is the first delivered.
        """
        if not self.arrived:
            return None
        key = list(SOURCES[source].key)
        report = self.reports[source]
        arrived = pl.concat(self.arrived)
        ordered = self.arrived_ordered
        self.arrived, self.arrived_bytes = [], 0
        self.arrived_ordered, self.arrived_after = True, ""
        # lazily (streaming): half the eager unique's time on a chunk of events
        first = (
            in_delivery_order(arrived, ordered)
            .lazy()
            .unique(subset=key, keep="first", maintain_order=True)
            .collect()
        )
        index = self._index(source)
        new = without_keys(first, _entries_of(index, first, key).select(key), key)
        self.bookkeeping[index_parts(source)] = pl.concat([index, new.select(index.columns)])
        report.redelivered += arrived.height - new.height
        report.rows_loaded += new.height
        report.touched |= set(new["date"].unique().to_list())
        return new

    # ---- order items: dated by their order, orphans held back until it arrives

    def _items(self, batch: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Date a chunk of items by their order; hold back those whose order is unknown."""
        contract = SOURCES["order_items"]
        key = list(contract.key)
        report = self.reports["order_items"]
        pending_schema = _valid_schema(contract)
        pending_parts = ("lake", "_pending", "order_items.parquet")
        pending = self._bookkept(pending_parts, pending_schema)
        order_dates = self._index("orders").select("order_id", "date")

        candidates = pl.concat(
            [
                pending.with_columns(_pending=pl.lit(True)),
                batch.with_columns(_pending=pl.lit(False)),
            ],
            how="vertical_relaxed",
        )
        # A file is parsed once, so a pending row comes back in a chunk only by a fault; it
        # is then taken once, as first held. Looked for only where a pending row's file is in
        # the chunk: a unique over every row cost a pass, and its order then a sort (10M
        # items: 8 s of the pass's main thread).
        if (
            pending.height
            and pending["_file_name"].is_in(batch["_file_name"].unique().implode()).any()
        ):
            candidates = candidates.unique(
                subset=["_file_name", "_row_number"], keep="first", maintain_order=True
            )
        # a left join hashes its right side: the chunk's orders, not the whole index; rows
        # stay in delivery order, so ``merge_latest`` need not sort them
        dated = candidates.join(
            _entries_of(order_dates, candidates, ["order_id"]),
            on="order_id",
            how="left",
            maintain_order="left",
        )
        known = dated.filter(pl.col("date").is_not_null())
        unknown = dated.filter(pl.col("date").is_null())

        resolved = known.filter(pl.col("_pending")).select("_file_name", "_row_number")
        report.orphans_resolved += resolved.height
        self.resolved = resolved if self.resolved is None else pl.concat([self.resolved, resolved])
        new_orphans = unknown.filter(~pl.col("_pending"))
        report.orphans_pending = unknown.height
        self.bookkeeping[pending_parts] = unknown.select(list(pending_schema))

        known = known.drop("_pending", "_raw")
        index, winners, moved = merge_latest(known, self._index("order_items"), key)
        report.touched |= set(winners["date"].unique().to_list())
        report.touched |= set(moved["_old_date"].unique().to_list())
        self.bookkeeping[index_parts("order_items")] = index

        orphan_rejects = new_orphans.select(
            source=pl.lit("order_items"),
            file_name=pl.col("_file_name"),
            row_number=pl.col("_row_number"),
            reason=pl.lit("orphan_order_item"),
            detail=pl.lit("order ")
            + pl.col("order_id")
            + pl.lit(" is not known yet; the item loads when its order arrives"),
            raw_record=pl.col("_raw"),
            partition_date=pl.lit(None, pl.Date),
            order_ref=pl.col("order_id"),
        )
        return known, orphan_rejects

    def _follow_moved_orders(self, ingest_id: str) -> None:
        """Items follow an order that moved to another day: copy their live rows over."""
        moved_orders = self.moved_orders
        if not moved_orders.height:
            return
        contract = SOURCES["order_items"]
        key = list(contract.key)
        report = self.reports["order_items"]
        index = self._index("order_items")
        follow = index.join(
            moved_orders.rename({"date": "_new_date"}), on="order_id", how="inner"
        ).filter(pl.col("date") != pl.col("_new_date"))
        if not follow.height:
            return
        old_days = sorted(set(follow["date"].to_list()))
        live = (
            self.lake.scan("lake/order_items", old_days, contract.schema())
            .join(
                follow.lazy().select([*key, "_file_name", "_row_number", "_new_date"]),
                on=[*key, "_file_name", "_row_number"],
                how="inner",
            )
            .unique(subset=[*key, "_file_name", "_row_number"])
            .collect()
        )
        report.touched |= set(old_days) | set(live["_new_date"].to_list())
        self._write_partitions(
            "order_items",
            live.drop("_ingest_id").rename({"_new_date": "date"}),
            ingest_id,
            tag="-moved",
        )
        self.bookkeeping[index_parts("order_items")] = (
            index.join(moved_orders.rename({"date": "_new_date"}), on="order_id", how="left")
            .with_columns(date=pl.coalesce("_new_date", "date"))
            .drop("_new_date")
        )

    def _date_item_rejects(self, rejects: pl.DataFrame, orders_index: pl.DataFrame) -> pl.DataFrame:
        dates = orders_index.select(order_ref=pl.col("order_id"), _order_date=pl.col("date"))
        return (
            rejects.join(dates, on="order_ref", how="left")
            .with_columns(
                partition_date=pl.when(
                    pl.col("reason").is_in(["orphan_order_item", "malformed_record"])
                )
                .then(None)
                .otherwise(pl.coalesce("partition_date", "_order_date"))
            )
            .drop("_order_date")
        )

    def _park(self, folder: Path) -> None:
        """Move the bookkeeping of the sources done so far out of memory, to local disk.

        It goes to the lake only at the end of the pass; until then a large index (tens of
        millions of keys) would sit in memory beside the next source's chunks. Written as
        the lake writes its files, so the commit puts it there as it is (``write_file``).
        """
        folder.mkdir(parents=True, exist_ok=True)
        for parts, kept in self.bookkeeping.items():
            if isinstance(kept, pl.DataFrame):
                path = folder / "-".join(parts)
                write_parquet_file(kept, path)
                self.bookkeeping[parts] = path

    def _commit(self, ingest_id: str) -> Commit:
        """What is left once the lake files are written: see ``journal``.

        The version indexes and pending items, parked on local disk by ``_park``, are
        written to the lake only then: a pass that dies before leaves them as they were.
        """
        parked = {p: kept for p, kept in self.bookkeeping.items() if isinstance(kept, Path)}
        assert len(parked) == len(self.bookkeeping), "bookkeeping left in memory"
        for row in (*self.manifest_rows, *self.relandings):
            row["ingest_id"] = ingest_id
        for _, note in self.quarantine_notes:
            note["ingest_id"] = ingest_id
        return Commit(
            bookkeeping=parked,
            files=self.manifest_rows,
            relandings=self.relandings,
            at=self.now.replace(tzinfo=dt.UTC).isoformat(),
            notes=self.quarantine_notes,
            moves=self.moves,
            touched={
                source: {d.isoformat(): r.rows_per_day.get(d, 0) for d in sorted(r.touched)}
                for source, r in self.reports.items()
                if r.touched
            },
        )

    def _report_finished(self, commit: Commit) -> None:
        """Report what a dead pass's commit, finished by this pass, loaded."""
        for source, days in commit.touched.items():
            report = self.reports[source]
            for day, rows in days.items():
                day = dt.date.fromisoformat(day)
                report.touched.add(day)
                report.rows_per_day[day] = report.rows_per_day.get(day, 0) + rows
        for row in commit.files:
            if row["status"] == "loaded":
                report = self.reports[row["source"]]
                report.files_loaded.append(row["file_name"])
                report.rows_loaded += row.get("rows_loaded", 0)

    # ---- publishing

    def _stage_rejects(self, ingest_id: str) -> None:
        """Write this pass's rejects beside the lake; ``publish_rejects`` loads them.

        Staging them as Parquet keeps the pass off the warehouse file, so ingest (and the
        speed layer after it) never waits behind a long warehouse step. The ``files``
        part is written last: it is what makes a staged set complete.
        """
        rejects = pl.concat(self.rejects, how="vertical_relaxed") if self.rejects else None
        files = sorted({(r["source"], r["file_name"]) for r in self.manifest_rows})
        resolved = (
            self.resolved
            if self.resolved is not None
            else pl.DataFrame(schema={"_file_name": pl.String, "_row_number": pl.Int64})
        )
        if (rejects is None or rejects.height == 0) and not files and resolved.height == 0:
            return
        stem = f"{self.now:%Y%m%dT%H%M%S%f}-{ingest_id}"
        staged = []
        if rejects is not None and rejects.height:
            table = rejects.drop("order_ref").with_columns(
                ingest_id=pl.lit(ingest_id), rejected_at=pl.lit(self.now)
            )
            staged.append((table, (*STAGED_REJECTS, f"{stem}.rejects.parquet")))
        if resolved.height:
            staged.append(
                (
                    resolved.with_columns(resolved_at=pl.lit(self.now)),
                    (*STAGED_REJECTS, f"{stem}.resolved.parquet"),
                )
            )
        files_frame = pl.DataFrame(
            files, schema={"source": pl.String, "file_name": pl.String}, orient="row"
        )
        staged.append((files_frame, (*STAGED_REJECTS, f"{stem}.files.parquet")))
        self.journal.will_write(parts for _, parts in staged)
        for frame, parts in staged:
            self.lake.write(frame, *parts)


def run_ingest(
    settings: Settings,
    lake: LakeResource,
    run_id: str | None = None,
    log: Callable[[str], None] | None = None,
    only: Collection[str] | None = None,
) -> IngestReport:
    """Run one ingest pass under the data dir's ingest lock.

    ``only`` limits the pass to these ``source/name`` files (a sensor's micro-batch); a
    file of the batch that another pass already took is a no-op, by the manifest.
    """
    with ingest_lock(settings.data_dir):
        return IngestPass(settings, lake, run_id=run_id, log=log, only=only).run()


#: where an ingest pass stages its rejects until ``publish_rejects`` loads them
STAGED_REJECTS = ("lake", "_rejects")


def publish_rejects(lake: LakeResource, warehouse: WarehouseResource) -> int:
    """Load every staged reject set into ``quarantine.rejects``, in the order staged.

    One transaction for all of them: a set replaces the rejects of its files (so a file
    ingested again gives the same rows), then marks the orphans it resolved. A crash
    before the staged sets are removed only means they are applied again, to the same
    result. Returns the number of sets published.
    """
    staged = lake.list_files(*STAGED_REJECTS, suffix=".files.parquet")
    stems = sorted(name[: -len(".files.parquet")] for name in staged)
    with warehouse.get_connection() as conn:
        ensure_schemas(conn)
        conn.execute(REJECTS_DDL)
        if not stems:
            return 0
        conn.execute("BEGIN TRANSACTION")
        try:
            for stem in stems:
                files = lake.read(*STAGED_REJECTS, f"{stem}.files.parquet")
                if files.height:
                    conn.register("_files", arrow_view(files))
                    conn.execute(
                        "DELETE FROM quarantine.rejects r USING _files f "
                        "WHERE r.source = f.source AND r.file_name = f.file_name"
                    )
                    conn.unregister("_files")
                rejects = (*STAGED_REJECTS, f"{stem}.rejects.parquet")
                if lake.exists(*rejects):
                    conn.register("_rejects", arrow_view(lake.read(*rejects)))
                    conn.execute("INSERT INTO quarantine.rejects BY NAME SELECT * FROM _rejects")
                    conn.unregister("_rejects")
                resolved = (*STAGED_REJECTS, f"{stem}.resolved.parquet")
                if lake.exists(*resolved):
                    conn.register("_resolved", arrow_view(lake.read(*resolved)))
                    conn.execute(
                        "UPDATE quarantine.rejects r SET resolved_at = v.resolved_at "
                        "FROM _resolved v "
                        "WHERE r.source = 'order_items' AND r.reason = 'orphan_order_item' "
                        "AND r.resolved_at IS NULL AND r.file_name = v._file_name "
                        "AND r.row_number = v._row_number"
                    )
                    conn.unregister("_resolved")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    for stem in stems:
        for part in ("rejects", "resolved", "files"):
            lake.delete(*STAGED_REJECTS, f"{stem}.{part}.parquet")
    return len(stems)
