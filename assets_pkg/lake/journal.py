"""The ingest journal: a pass's lake writes and its commit, so a pass that dies is undone or
finished by the next one, never left half done.

A pass names its lake files by its ingest id, a digest of the landed files it takes (names
and sizes, and the files the manifest knows: see ``IngestPass._classify``). Killed before
the manifest recorded them, its files stay in landing to be taken again; but a sensor forms
its next micro-batch from whatever waits by then, so the pass that takes them again has
another id. Without the journal the lake would then hold their rows twice, each version and
dimension row under two names. The journal is a small local file beside the
manifest, in one of two phases:

- ``writing``: the lake files the pass is about to write, recorded before each write.
  Killed here, the pass is undone: the version indexes and the manifest do not know those
  files yet, so they are deleted and the landed files are taken again, as new.
- ``committing``: the lake files are written; what is left (the version indexes, parked
  on local disk, then the manifest, the quarantine notes and the file moves) is in the
  journal. From here the pass is finished, by itself or, killed, by the next pass before
  it starts (``recover``). Every step of the commit may run twice to the same result.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assets_pkg.lake.manifest import Manifest
from assets_pkg.resources.lake import LakeResource, index_parts

JOURNAL_NAME = ".ingest-journal.json"
#: written last: should the commit stop half-way, a moved order still shows as moved
ORDERS_INDEX = index_parts("orders")


@dataclass
class Commit:
    """What a pass has left to do once its lake files are written."""

    #: bookkeeping file (as lake path parts) -> its parked copy on local disk
    bookkeeping: dict[tuple[str, ...], Path]
    #: manifest rows of the files loaded or quarantined, and of the re-landings seen
    files: list[dict[str, Any]]
    relandings: list[dict[str, Any]]
    #: the pass's time, ISO 8601: when its files were ingested
    at: str
    #: quarantine notes (path, note), then file moves (from, to; ``Path()``: remove)
    notes: list[tuple[Path, dict[str, Any]]]
    moves: list[tuple[Path, Path]]
    #: source -> ISO day -> rows written: the days the pass touched, for its report
    touched: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "bookkeeping": {"/".join(k): str(v) for k, v in self.bookkeeping.items()},
            "files": self.files,
            "relandings": self.relandings,
            "at": self.at,
            "notes": [[str(p), n] for p, n in self.notes],
            "moves": [[str(a), str(b)] for a, b in self.moves],
            "touched": self.touched,
        }

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> Commit:
        return cls(
            bookkeeping={tuple(k.split("/")): Path(v) for k, v in state["bookkeeping"].items()},
            files=state["files"],
            relandings=state["relandings"],
            at=state["at"],
            notes=[(Path(p), n) for p, n in state["notes"]],
            moves=[(Path(a), Path(b)) for a, b in state["moves"]],
            touched=state["touched"],
        )


def replace_text(path: Path, text: str, *, fsync: bool = False) -> None:
    """Write ``path`` whole or not at all: a temp file beside it, renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass
class Journal:
    path: Path
    ingest_id: str
    #: lake files (as path parts) the pass is writing or has written
    written: list[tuple[str, ...]] = field(default_factory=list)
    commit: Commit | None = None
    #: a spool's flushes record their files from a writer thread
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def load(cls, path: Path) -> Journal | None:
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        commit = state.get("commit")
        return cls(
            path=path,
            ingest_id=state["ingest_id"],
            written=[tuple(p) for p in state["written"]],
            commit=None if commit is None else Commit.from_json(commit),
        )

    def _save(self) -> None:
        state = {
            "ingest_id": self.ingest_id,
            "written": self.written,
            "commit": None if self.commit is None else self.commit.to_json(),
        }
        replace_text(self.path, json.dumps(state), fsync=True)

    def will_write(self, parts: Iterable[tuple[str, ...]]) -> None:
        """Record lake files before they are written: no file of the pass exists unrecorded."""
        parts = list(parts)
        if parts:
            with self._lock:
                self.written.extend(parts)
                self._save()

    def committing(self, commit: Commit) -> None:
        """The lake files are written; from here the pass is finished, not undone."""
        self.commit = commit
        self._save()

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def write_bookkeeping(lake: LakeResource, bookkeeping: dict[tuple[str, ...], Path]) -> None:
    for parts in sorted(bookkeeping, key=lambda p: p == ORDERS_INDEX):
        lake.write_file(bookkeeping[parts], *parts)


def write_notes(commit: Commit) -> None:
    for path, note in commit.notes:
        replace_text(path, json.dumps(note, indent=2) + "\n")


def move_files(commit: Commit) -> None:
    """Move each file out of landing; one already moved (a replayed commit) is skipped."""
    for src, dst in commit.moves:
        if not os.path.lexists(src):
            continue
        if dst == Path():
            src.unlink(missing_ok=True)
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists() and dst.read_bytes() == src.read_bytes():
            src.unlink()
        else:
            os.replace(src, dst)


def finish(lake: LakeResource, manifest: Manifest, commit: Commit) -> None:
    """The commit of a pass: indexes, then notes, the manifest, the moves.

    Notes before the manifest and the manifest before the moves, so that whatever the
    landing zone shows is explained: a file recorded is kept where its record says.
    """
    write_bookkeeping(lake, commit.bookkeeping)
    write_notes(commit)
    manifest.record(commit.files, commit.relandings, commit.at)
    move_files(commit)


def recover(
    path: Path, lake: LakeResource, manifest: Manifest, log: Callable[[str], None]
) -> Commit | None:
    """Undo or finish the pass the journal at ``path`` names, if one died; returns the
    commit finished, whose days the recovering pass reports as its own (a step retried
    after its pass died committing announces the days that pass wrote).

    Idempotent: killed while recovering, the next pass recovers the same way.
    """
    left = Journal.load(path)
    if left is None:
        return None
    if left.commit is None:
        for parts in left.written:
            lake.delete(*parts)
        log(
            f"ingest pass {left.ingest_id} died writing the lake: removed the "
            f"{len(left.written)} file(s) it wrote; its landed files are taken again"
        )
    else:
        finish(lake, manifest, left.commit)
        log(f"ingest pass {left.ingest_id} died committing: finished its commit")
    left.close()
    return left.commit
