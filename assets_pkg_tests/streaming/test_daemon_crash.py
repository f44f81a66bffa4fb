"""Crash anywhere, sensor path: a real ``dagster-daemon`` is SIGKILLed, with every process
it started (code server, run workers), at seeded moments while files keep landing, and
restarted each time. Once landing stops and the daemon drains, the platform ends where a
clean serial ingest + backfill of the same files does: every file kept exactly once, the
manifest holding each once, no run left in flight, the same lake, speed layer and warehouse.

The number of kills is ``--crash-kills`` / ``ASSETS_PKG_CRASH_KILLS`` (3 by default).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets_pkg.cli.main import do_backfill, do_ingest
from assets_pkg.config import Settings
from assets_pkg.instance import TEMPLATE, ensure_instance, reap_dead_runs
from assets_pkg.lake.ingest import is_landed
from assets_pkg.lake.manifest import Manifest
from assets_pkg.sample.generator import generate
from assets_pkg_tests.conftest import use_temp_platform
from assets_pkg_tests.test_crash import _kept, _landed
from assets_pkg_tests.test_end_to_end import table_hashes

START, END = dt.date(2024, 3, 1), dt.date(2024, 3, 4)
DAYS = (END - START).days + 1
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
#: bound on any single wait; generous because the machine is shared and small
WAIT_S = 300.0
#: a missed mid-run moment is retried on the next run, unless none starts this soon
MID_RUN_ATTEMPTS = 5
NEXT_RUN_S = 20.0


# --- a daemon and the processes it starts ------------------------------------------------


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, session id) of a live process, from /proc."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name is parenthesised and may itself hold spaces or parentheses
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[3])


def tree_pids(root: int) -> list[int]:
    """The root and every process in its session or descended from it.

    The daemon is started as a session leader; its code server and the run workers that
    server spawns stay in that session, and descent catches any that left it.
    """
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None:
                stats[int(entry.name)] = stat
    found = {pid for pid, (_, sid) in stats.items() if sid == root}
    if root in stats:
        found.add(root)
    grew = True
    while grew:
        extra = {pid for pid, (ppid, _) in stats.items() if ppid in found} - found
        found |= extra
        grew = bool(extra)
    return sorted(found)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def is_run_worker(pid: int) -> bool:
    """Run workers are the code server's multiprocessing children."""
    return "multiprocessing" in cmdline(pid)


class Daemon:
    """``dagster-daemon`` over the code location, logging to a file for diagnostics."""

    def __init__(self, root: Path, log: Path) -> None:
        self.root = root
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with open(self.log, "ab") as out:
            out.write(f"\n=== daemon start {self.starts} ===\n".encode())
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dagster._daemon", "run", "-m", "assets_pkg.definitions"],
                cwd=self.root,
                env=dict(os.environ),
                start_new_session=True,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def pids(self) -> list[int]:
        return tree_pids(self.proc.pid) if self.proc else []

    def kill(self) -> int:
        """SIGKILL the daemon and everything it started; returns how many processes died."""
        assert self.proc is not None
        victims = self.pids()
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        wait_until(lambda: not set(victims) & set(self.pids_alive(victims)), 60, "kill")
        self.proc = None
        return len(victims)

    @staticmethod
    def pids_alive(pids: list[int]) -> list[int]:
        # a killed child stays a zombie until its parent (also killed) is reaped by init
        alive = []
        for pid in pids:
            try:
                state = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            if state[state.rindex(")") + 2] != "Z":
                alive.append(pid)
        return alive

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        if self.pids_alive(self.pids()):
            self.kill()
        self.proc = None

    def check_alive(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, (
            f"the daemon exited:\n{self.tail()}"
        )

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no daemon log)"


def start_daemon_home(settings: Settings, home: Path) -> dg.DagsterInstance:
    """Seed the project's instance settings, then create the instance once, here."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TEMPLATE, home / "dagster.yaml")
    return ensure_instance(settings)


def wait_for(predicate: Callable[[], object], timeout_s: float, poll_s: float = 0.1) -> bool:
    """Whether `predicate` holds within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
    return True


def wait_until(predicate: Callable[[], object], timeout_s: float, what: str | Callable) -> None:
    if not wait_for(predicate, timeout_s, poll_s=0.25):
        detail = what() if callable(what) else what
        raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for: {detail}")


def runs_with(instance: dg.DagsterInstance, statuses: list[dg.DagsterRunStatus]) -> list:
    return list(instance.get_run_records(filters=dg.RunsFilter(statuses=statuses)))


def describe_runs(instance: dg.DagsterInstance) -> str:
    records = instance.get_run_records()
    lines = [
        f"{r.dagster_run.run_id[:8]} {r.dagster_run.job_name} {r.dagster_run.status.value} "
        f"created {r.create_timestamp:%H:%M:%S} "
        + " ".join(
            f"{k}={v[:40]}"
            for k, v in r.dagster_run.tags.items()
            if k.startswith("dagster/") and "run_key" not in k
        )
        for r in records[:40]
    ]
    return f"{len(records)} runs, newest first:\n" + "\n".join(lines)


def drain(settings: Settings, instance: dg.DagsterInstance, daemon: Daemon) -> None:
    """Wait until nothing is left to land and no run is in flight, twice a tick apart."""

    def quiet() -> bool:
        daemon.check_alive()
        return not _landed(settings) and not runs_with(instance, IN_FLIGHT)

    def why() -> str:
        left = sorted(_landed(settings))
        return (
            f"{len(left)} file(s) still in landing {left[:5]}; {describe_runs(instance)}\n"
            f"daemon log:\n{daemon.tail()}"
        )

    for _ in range(2):
        wait_until(quiet, WAIT_S, why)
        time.sleep(2.0)  # past a sensor tick, so a run it was about to ask for shows
    wait_until(quiet, WAIT_S, why)


def stopped_runs(instance: dg.DagsterInstance) -> list[str]:
    """After the daemon stops: nothing may be left running. A run the automation asked for
    between the drain and the stop may wait QUEUED for the next daemon, and one the stop
    cut short is reaped like any dead run; the ids reaped are returned."""
    reaped = reap_dead_runs(instance)
    running = runs_with(
        instance,
        [
            dg.DagsterRunStatus.STARTING,
            dg.DagsterRunStatus.STARTED,
            dg.DagsterRunStatus.CANCELING,
        ],
    )
    assert not running, f"runs left running after the daemon stopped: {describe_runs(instance)}"
    return reaped


# --- comparisons ---------------------------------------------------------------------------


def file_digests(folder_files: dict[str, Path]) -> dict[str, str]:
    return {ref: hashlib.sha256(p.read_bytes()).hexdigest() for ref, p in folder_files.items()}


def kept_files(settings: Settings) -> dict[str, Path]:
    """Every file in the archive or quarantine (notes aside), by ``source/name``."""
    found: dict[str, Path] = {}
    for folder in (settings.archive_dir, settings.quarantine_dir):
        for p in folder.glob("*/*"):
            if p.is_file() and not p.name.endswith(".error.json"):
                ref = f"{p.parent.name}/{p.name}"
                assert ref not in found, f"{ref} is kept twice (archive and quarantine)"
                found[ref] = p
    return found


#: columns that say which file delivered a row: for events the first delivery wins, and
#: which delivery is first depends on the order the micro-batches ran in, not on content
DELIVERY = ["_file_name", "_row_number"]


def lake_rows(settings: Settings) -> dict[str, str]:
    """A digest per lake dataset of the versions it holds, and of the version index and the
    items parked for their order, ignoring which ingest pass wrote what.

    A version may sit in more than one day's partition (an item written under its order's
    first date stays there when a later version moves the order; the index says where it
    lives), so versions are compared as a set, and no version may repeat within a day.
    """
    root = Path(settings.lake_url) / "lake"
    out = {}
    for dataset in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")):
        frame = pl.concat(
            [
                pl.read_parquet(f).with_columns(_day=pl.lit(f.parent.name))
                for f in dataset.rglob("*.parquet")
            ],
            how="diagonal_relaxed",
        ).drop("_ingest_id", strict=False)
        doubled = frame.filter(frame.is_duplicated())
        assert doubled.is_empty(), f"lake/{dataset.name} repeats rows within a day: {doubled}"
        if dataset.name == "events":
            frame = frame.drop(DELIVERY)
        out[dataset.name] = _frame_digest(frame.drop("_day").unique())
    for folder in ("_index", "_pending"):
        for path in sorted((root / folder).glob("*.parquet")):
            frame = pl.read_parquet(path)
            if path.stem == "events":
                frame = frame.drop(DELIVERY, strict=False)
            out[f"{folder}/{path.stem}"] = _frame_digest(frame)
    return out


def _frame_digest(frame: pl.DataFrame) -> str:
    frame = frame.select(sorted(frame.columns))
    rows = sorted(str(r) for r in frame.iter_rows())
    return f"{len(rows)}:" + hashlib.sha256("\n".join(rows).encode()).hexdigest()


def realtime_rows(settings: Settings) -> dict[str, list[tuple]]:
    if not settings.realtime_path.exists():
        return {}
    out = {}
    with duckdb.connect(str(settings.realtime_path), read_only=True) as conn:
        for (table,) in conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables ORDER BY 1"
        ).fetchall():
            rel = conn.sql(f"SELECT * FROM {table}")
            keep = [c for c in rel.columns if c != "as_of"]
            out[table] = sorted(map(str, rel.select(*keep).fetchall()))
    return out


def rejects(settings: Settings) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Open rejects, resolved rejects, and any (source, file, row) rejected twice."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        base = (
            "SELECT source, file_name, row_number, reason, partition_date FROM quarantine.rejects"
        )
        open_ = conn.execute(f"{base} WHERE resolved_at IS NULL ORDER BY ALL").fetchall()
        resolved = conn.execute(f"{base} WHERE resolved_at IS NOT NULL ORDER BY ALL").fetchall()
        doubled = conn.execute(
            "SELECT source, file_name, row_number, count(*) FROM quarantine.rejects "
            "GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL"
        ).fetchall()
    return open_, resolved, doubled


# --- the test ------------------------------------------------------------------------------


def _generate(root: Path) -> dict[str, Path]:
    """The files a producer will deliver, in delivery order (dimensions first, then by
    day: a day's orders before its items), held outside the landing zone."""
    generate(root, start=START, days=DAYS, seed=7, scale=0.15)
    rank = {
        "customers": 0,
        "products": 1,
        "orders": 2,
        "order_items": 3,
        "payments": 4,
        "events": 5,
    }
    files = [p for p in root.glob("*/*") if p.is_file() and is_landed(p.name)]

    def order(p: Path) -> tuple:
        dimension = p.parent.name in ("customers", "products")
        return (
            not dimension,
            p.name.split("_")[-2][:10] if not dimension else "",
            rank[p.parent.name],
            p.name,
        )

    return {f"{p.parent.name}/{p.name}": p for p in sorted(files, key=order)}


@pytest.fixture
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A serial ingest of every file at once, then a backfill: the reference end state."""
    delivery = _generate(tmp_path / "produced")
    settings = use_temp_platform(tmp_path / "clean", monkeypatch, start=START, end=END)
    for ref, path in delivery.items():
        target = settings.landing_dir / ref
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    do_ingest(settings)
    do_backfill(settings, START, END)
    open_, resolved, doubled = rejects(settings)
    assert not doubled and not resolved
    return {
        "delivery": delivery,
        "digests": file_digests(delivery),
        "kept": _kept(settings),
        "manifest": Manifest(settings.manifest_path).counts(),
        "hashes": {k: v for k, v in table_hashes(settings).items() if k != "quarantine.rejects"},
        "rejects": open_,
        "lake": lake_rows(settings),
        "realtime": realtime_rows(settings),
    }


def test_daemon_killed_while_files_land_ends_like_a_clean_run(
    clean: dict, crash_kills: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "crashed"
    settings = use_temp_platform(root, monkeypatch, start=START, end=END)
    monkeypatch.setenv("ASSETS_PKG_SENSOR_INTERVAL_S", "1")
    # small batches, so several ingest runs are in flight across the kills
    monkeypatch.setenv("ASSETS_PKG_SENSOR_BATCH_FILES", "4")
    instance = start_daemon_home(settings, root / "dagster_home")
    daemon = Daemon(root, tmp_path / "daemon.log")
    rng = random.Random(crash_kills)

    refs = list(clean["delivery"])
    # contiguous slices keep the producer's order: a day's items never before its orders
    cuts = [len(refs) * i // (crash_kills + 1) for i in range(crash_kills + 2)]
    slices = [refs[a:b] for a, b in itertools.pairwise(cuts)]
    pace = random.Random(-crash_kills)
    go = threading.Semaphore(0)
    landed: list[str] = []
    failed: list[BaseException] = []

    def writer() -> None:
        # lands each slice when released, file by file, whole then renamed into place,
        # so files keep arriving while the daemon dies and restarts
        try:
            for part in slices:
                if not go.acquire(timeout=WAIT_S):
                    raise TimeoutError("the test never released the next slice")
                for ref in part:
                    target = settings.landing_dir / ref
                    target.parent.mkdir(parents=True, exist_ok=True)
                    partial = target.with_name(f".{target.name}.partial")
                    shutil.copyfile(clean["delivery"][ref], partial)
                    os.replace(partial, target)
                    landed.append(ref)
                    time.sleep(pace.uniform(0.05, 0.4))
        except BaseException as exc:  # surfaced in the main thread
            failed.append(exc)

    thread = threading.Thread(target=writer, daemon=True)
    mid_run = 0
    killed_procs: list[int] = []
    try:
        daemon.start()
        thread.start()
        go.release()
        for _ in range(crash_kills):
            restarted = dt.datetime.now(dt.UTC)

            def live_run(since: dt.datetime = restarted) -> bool:
                # runs the previous daemon left STARTED are dead; only this one's count
                daemon.check_alive()
                return any(
                    r.create_timestamp >= since
                    for r in runs_with(instance, [dg.DagsterRunStatus.STARTED])
                )

            # a run is in flight, then a seeded moment of it. Runs here last a second or
            # two, so the moment can miss; then the next run of this slice is tried, and
            # only when none starts for a while (the slice is drained) does the kill land
            # between runs
            wait_until(
                live_run,
                WAIT_S,
                lambda: f"a run to start\n{describe_runs(instance)}\n{daemon.tail()}",
            )
            for _attempt in range(MID_RUN_ATTEMPTS):
                time.sleep(rng.uniform(0.0, 0.5))
                if live_run():
                    mid_run += 1
                    break
                if not wait_for(live_run, NEXT_RUN_S):
                    break
            killed_procs.append(daemon.kill())
            go.release()  # the next slice starts landing while the daemon is down
            time.sleep(rng.uniform(0.0, 2.0))
            daemon.start()
        thread.join(WAIT_S)
        assert not thread.is_alive() and not failed, f"writer: {failed}"
        assert sorted(landed) == sorted(refs)
        drain(settings, instance, daemon)
    finally:
        daemon.stop()
    stopped_runs(instance)
    print(
        f"\nkills: {crash_kills}, with a run in flight: {mid_run}, processes killed per kill: "
        f"{killed_procs}, runs: {len(instance.get_run_records())}, failed (reaped or "
        f"killed): {len(runs_with(instance, [dg.DagsterRunStatus.FAILURE]))}"
    )
    assert mid_run >= 1, "no kill landed while a run was in flight: the test proved nothing"

    # every landed file kept exactly once, byte-identical, and recorded once
    kept = kept_files(settings)
    assert set(kept) == set(refs), (
        f"lost: {sorted(set(refs) - set(kept))}, unexpected: {sorted(set(kept) - set(refs))}"
    )
    assert file_digests(kept) == clean["digests"]
    assert _kept(settings) == clean["kept"]
    assert not _landed(settings)
    # one row per (source, file) by its key: equal counts mean each file once, none missing
    assert Manifest(settings.manifest_path).counts() == clean["manifest"]

    # the batch layer is rebuilt over the range; it must equal the clean run's
    do_backfill(settings, START, END)
    assert lake_rows(settings) == clean["lake"]
    assert realtime_rows(settings) == clean["realtime"]
    hashes = {k: v for k, v in table_hashes(settings).items() if k != "quarantine.rejects"}
    assert hashes == clean["hashes"]
    open_, resolved, doubled = rejects(settings)
    assert not doubled, f"rows rejected more than once: {doubled}"
    assert [r[:4] for r in open_] == [r[:4] for r in clean["rejects"]]
    # an item row rejected while its order was not yet ingested has no date to carry
    # (its order's batch ran later); every other reject carries the clean run's date
    dates = {r[:4]: r[4] for r in clean["rejects"]}
    assert [r for r in open_ if r[4] != dates[r[:4]] and r[0] != "order_items"] == []
    assert [r for r in open_ if r[4] != dates[r[:4]] and r[4] is not None] == []
    # a batch that ran before its orders' batch parks items as orphans, then resolves them
    assert {r[3] for r in resolved} <= {"orphan_order_item"}
    print(f"orphaned items resolved later: {len(resolved)}; open rejects: {len(open_)}")
