"""Landing-to-visible latency of event files dropped at a steady rate into a running daemon.

Each phase (one per --rates x --intervals pair) is a fresh temp platform: its own data dir
and DAGSTER_HOME seeded with the project's instance settings, ASSETS_PKG_END_DATE = --day
(the day the events are dated: the speed layer's "today"), and the real daemon,
`python -m dagster._daemon run -m assets_pkg.definitions`, in its own process group with
ASSETS_PKG_SENSOR_INTERVAL_S = the phase's interval (15, the shipped default, unless told).

Once the landing sensor has ticked, FILES event files (JSON Lines, each a new session of a
few events on --day) are written as `.<name>.tmp` and renamed into <data>/landing/events/
at a steady RATE files/s, as producers must. A reader polls what a user would read: the
day's row of `marts.realtime_funnel` in realtime.duckdb, or `marts.daily_funnel` in
analytics.duckdb when the batch mart has retired the day from the speed layer (read-only
opens, retried on a lock). Each file adds exactly one session, so the k-th file landed is
visible when the reader first sees at least k sessions; latency = that moment - its rename.

With --settle (the default) the phase then waits for the batch layer to catch up (the
batch mart shows every session) and for the instance to go quiet, so every run the phase
caused is counted. Every run must succeed, the manifest must hold FILES loaded files, the
lake index every event once and the reader the exact funnel; otherwise the benchmark fails
before reporting a time.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import itertools
import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import common

NAME = "ingest_latency"
DEFAULT_DAY = dt.date(2024, 3, 10)
STEPS = ["page_view", "product_view", "add_to_cart", "checkout", "purchase"]
FUNNEL_COLUMNS = ("sessions", "product_views", "add_to_cart", "checkouts", "purchases")
INGEST_JOB = "ingest_job"
LANDING_SENSOR = "landing_sensor"
DAEMON_CMD = [sys.executable, "-m", "dagster._daemon", "run", "-m", "assets_pkg.definitions"]
#: what a reader reads, in order: the speed layer, then the batch mart for retired days
LAYERS = (
    ("speed", "realtime.duckdb", "marts.realtime_funnel"),
    ("batch", "analytics.duckdb", "marts.daily_funnel"),
)
#: the shipped defaults compared against (README "Schedules, automation and sensors";
#: ../shared/DESIGN-NOTES.md "Sensor defaults")
SHIPPED_INTERVAL_S = 15
DAEMON_LOOP_S = 5
AUTOMATION_INTERVAL_S = 30


@dataclasses.dataclass(frozen=True)
class Options:
    rates: tuple[float, ...] = (1.0, 5.0)
    #: how long each phase drops files; FILES = rate x seconds unless ``files`` is given
    seconds: float = 60.0
    files: int | None = None
    intervals: tuple[int, ...] = (SHIPPED_INTERVAL_S,)
    day: dt.date = DEFAULT_DAY
    #: daily partitions before ``day`` (the platform's range ends on ``day``)
    history_days: int = 2
    #: wait for the batch layer and a quiet instance, so every run the phase caused counts
    settle: bool = True
    quiet_s: float = AUTOMATION_INTERVAL_S + 2 * DAEMON_LOOP_S
    poll_s: float = 0.25
    workdir: Path | None = None
    keep: bool = False
    #: a guard against a phase that never completes (a stuck daemon), not a time limit
    timeout_s: float = 900.0

    def files_for(self, rate: float) -> int:
        return self.files if self.files is not None else max(1, round(rate * self.seconds))

    @property
    def start(self) -> dt.date:
        return self.day - dt.timedelta(days=self.history_days)


SMOKE = {"rates": (4.0,), "files": 6, "intervals": (1,), "settle": False}


# --------------------------------------------------------------------------- the files


def session_file(day: dt.date, n: int) -> str:
    """Session ``n`` of ``day``: its events up to step ``n % 5`` of the funnel, one per line."""
    kinds = STEPS[: n % len(STEPS) + 1]
    return "".join(
        f'{{"event_id": "E{n}-{i}", "session_id": "S{n}", "event_type": "{kind}", '
        f'"event_ts": "{day}T{n % 24:02d}:{n // 24 % 60:02d}:{i:02d}Z"}}\n'
        for i, kind in enumerate(kinds)
    )


def file_name(n: int) -> str:
    return f"events_{n:05d}.jsonl"


def expected_funnel(files: int) -> tuple[int, ...]:
    """The day's funnel once ``files`` sessions are counted, each exactly once."""
    return tuple(sum(1 for n in range(files) if n % len(STEPS) >= step) for step in range(5))


def expected_events(files: int) -> int:
    return sum(n % len(STEPS) + 1 for n in range(files))


def drop_files(
    landing: Path,
    day: dt.date,
    files: int,
    rate: float,
    t0: float,
    landed: list[tuple[float, float]],
    stop: threading.Event,
) -> None:
    """Thread: file k written as ``.name.tmp`` and renamed into place at ``t0 + k / rate``.

    Appends ``(scheduled, renamed)`` wall-clock times to ``landed``, in order.
    """
    landing.mkdir(parents=True, exist_ok=True)
    for k in range(files):
        scheduled = t0 + k / rate
        delay = scheduled - time.time()
        if delay > 0 and stop.wait(delay):
            return
        if stop.is_set():
            return
        name = file_name(k)
        tmp = landing / f".{name}.tmp"
        tmp.write_text(session_file(day, k))
        os.rename(tmp, landing / name)
        landed.append((scheduled, time.time()))


# --------------------------------------------------------------------------- reading


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def query(path: Path, sql: str, params: list[Any], retries: int = 500) -> list[tuple] | None:
    """Rows of a read-only query, or None while the file or table does not exist.

    DuckDB locks a file per process, readers included: a writer holding it makes the open
    fail at once, so the open is retried every 20 ms (a writer's hold is short).
    """
    import duckdb

    if not path.exists():
        return None
    for _ in range(retries):
        try:
            with duckdb.connect(str(path), read_only=True) as conn:
                return conn.execute(sql, params).fetchall()
        except duckdb.CatalogException:
            return None
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if not _is_lock_error(exc):
                raise
            time.sleep(0.02)
    raise common.BenchmarkError(f"{path} stayed locked for {retries * 0.02:.0f}s")


def read_funnel(data_dir: Path, day: dt.date) -> tuple[str | None, tuple[int, ...] | None]:
    """What a reader sees for ``day``: the speed layer if it has the day, else the batch mart."""
    for layer, file, table in LAYERS:
        row = read_layer(data_dir, day, file, table)
        if row is not None:
            return layer, row
    return None, None


def read_layer(data_dir: Path, day: dt.date, file: str, table: str) -> tuple[int, ...] | None:
    rows = query(
        data_dir / file, f"SELECT {', '.join(FUNNEL_COLUMNS)} FROM {table} WHERE date = ?", [day]
    )
    return tuple(int(x) for x in rows[0]) if rows else None


def batch_funnel(data_dir: Path, day: dt.date) -> tuple[int, ...] | None:
    _, file, table = LAYERS[1]
    return read_layer(data_dir, day, file, table)


def manifest_files(data_dir: Path) -> list[dict[str, Any]]:
    """Every file the ingest manifest (SQLite) holds: name, status, run id, when ingested."""
    path = data_dir / "manifest.sqlite"
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    try:
        rows = conn.execute(
            "SELECT source, file_name, status, run_id, ingested_at FROM files"
        ).fetchall()
    finally:
        conn.close()
    return [
        {"source": s, "file_name": f, "status": st, "run_id": r, "ingested_at": _iso_ts(at)}
        for s, f, st, r, at in rows
    ]


def lake_event_rows(data_dir: Path) -> int:
    """Rows of the lake's live-version index of events: one per event ever ingested."""
    import duckdb

    found = sorted(data_dir.rglob("_index/events.parquet"))
    if not found:
        return 0
    with duckdb.connect(":memory:") as conn:
        return conn.execute("SELECT count(*) FROM read_parquet(?)", [str(found[0])]).fetchone()[0]


def _iso_ts(text: str | None) -> float | None:
    if not text:
        return None
    stamp = dt.datetime.fromisoformat(text)
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)).timestamp()


def _ts(value: dt.datetime | float | None) -> float | None:
    if value is None or isinstance(value, int | float):
        return value
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()


# --------------------------------------------------------------------------- the instance


def _in_flight_statuses():
    import dagster as dg

    s = dg.DagsterRunStatus
    return [s.QUEUED, s.NOT_STARTED, s.STARTING, s.STARTED, s.CANCELING]


def runs_of(instance: Any) -> list[dict[str, Any]]:
    """Every run in the instance, oldest first, with its job, status and times."""
    records = sorted(instance.get_run_records(), key=lambda r: _ts(r.create_timestamp))
    return [
        {
            "run_id": r.dagster_run.run_id,
            "job": r.dagster_run.job_name,
            "status": r.dagster_run.status.value,
            "created": _ts(r.create_timestamp),
            "started": r.start_time,
            "ended": r.end_time,
            "files": int(r.dagster_run.tags.get("landing/files", 0) or 0),
            "assets": sorted(k.to_user_string() for k in r.dagster_run.asset_selection or ()),
        }
        for r in records
    ]


def sensor_ticks(instance: Any, name: str, after: float | None = None) -> list[float]:
    """Start times of the named sensor's ticks (after ``after``), oldest first."""
    from dagster._core.scheduler.instigation import InstigatorType

    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name == name:
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, after=after)
            return sorted(t.timestamp for t in ticks)
    return []


@contextlib.contextmanager
def running_daemon(platform: common.Platform, interval: int):
    """The real daemon on ``platform``, in its own process group, stopped (and killed) after."""
    env = platform.env() | {"ASSETS_PKG_SENSOR_INTERVAL_S": str(interval)}
    platform.logs.mkdir(parents=True, exist_ok=True)
    log = platform.logs / "daemon.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            DAEMON_CMD,
            env=env,
            cwd=platform.root,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc, log
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        # the run workers are in the daemon's group too: none may outlive the phase
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


class Phase:
    """One rate at one sensor interval on a fresh platform; ``run()`` returns its figures."""

    def __init__(
        self,
        platform: common.Platform,
        options: Options,
        rate: float,
        interval: int,
        say: common.Say,
    ) -> None:
        self.pf, self.options, self.rate, self.interval, self.say = (
            platform,
            options,
            rate,
            interval,
            say,
        )
        self.files = options.files_for(rate)
        self.day = options.day
        self.landing = platform.data_dir / "landing" / "events"

    # ------------------------------------------------------------------ helpers

    def _alive(self, proc: subprocess.Popen, log: Path) -> None:
        if proc.poll() is not None:
            raise common.BenchmarkError(
                f"the daemon exited ({proc.returncode}) (log {log}):\n{common.tail(log)}"
            )

    def _deadline(self, what: str, since: float) -> None:
        if time.time() - since > self.options.timeout_s:
            raise common.BenchmarkError(
                f"phase {self.rate:g} files/s: {what} not reached after "
                f"{self.options.timeout_s:.0f}s (logs in {self.pf.logs})"
            )

    def _wait_up(self, instance: Any, proc: subprocess.Popen, log: Path, since: float) -> float:
        """Until the landing sensor has ticked: the daemon is up and the code loaded."""
        while True:
            self._alive(proc, log)
            self._deadline("a first landing-sensor tick", since)
            ticks = sensor_ticks(instance, LANDING_SENSOR, after=since)
            if ticks:
                return ticks[-1]
            time.sleep(0.5)

    # ------------------------------------------------------------------ the phase

    def run(self) -> dict[str, Any]:
        import dagster as dg

        began = time.time()
        n = self.files
        # the instance's storage is created here, once, before the daemon opens it
        with (
            dg.DagsterInstance.from_config(str(self.pf.dagster_home)) as instance,
            running_daemon(self.pf, self.interval) as (proc, log),
        ):
            up_tick = self._wait_up(instance, proc, log, began)
            self.say(
                f"  daemon up ({time.time() - began:.1f}s); dropping {n} files at {self.rate:g}/s"
            )
            landed: list[tuple[float, float]] = []
            stop = threading.Event()
            t0 = time.time() + 0.1
            dropper = threading.Thread(
                target=drop_files,
                args=(self.landing, self.day, n, self.rate, t0, landed, stop),
                daemon=True,
            )
            dropper.start()
            try:
                reader = self._watch(proc, log, landed, dropper, t0)
            finally:
                stop.set()
                dropper.join()
            visible_at = reader.pop("visible")
            last_visible = max(visible_at)
            self.say(
                f"  all {n} visible {last_visible - landed[-1][1]:.1f}s after the last "
                "landed; waiting for the runs"
            )
            settled_at, caught_up = self._settle(instance, proc, log, last_visible)
            runs = runs_of(instance)
            ticks = sensor_ticks(instance, LANDING_SENSOR, after=up_tick - 1)
        # the daemon is stopped: what it left behind is final
        return self._figures(
            landed=landed,
            visible_at=visible_at,
            reader=reader,
            runs=runs,
            ticks=ticks,
            t0=t0,
            settled_at=settled_at,
            caught_up=caught_up,
            began=began,
        )

    def _watch(
        self,
        proc: subprocess.Popen,
        log: Path,
        landed: list[tuple[float, float]],
        dropper: threading.Thread,
        t0: float,
    ) -> dict[str, Any]:
        """Poll the reader until all files are counted; when the k-th session showed up."""
        n = self.files
        visible: list[float] = []
        polls = batch_polls = regressions = 0
        last = 0
        while len(visible) < n:
            self._alive(proc, log)
            self._deadline("every session visible", t0)
            if not dropper.is_alive() and len(landed) < n:
                raise common.BenchmarkError("the file dropper stopped early")
            at = time.time()  # the rows read were committed before this moment
            layer, row = read_funnel(self.pf.data_dir, self.day)
            polls += 1
            batch_polls += layer == "batch"
            count = row[0] if row else 0
            if count > len(landed):
                raise common.BenchmarkError(
                    f"the reader counts {count} sessions with {len(landed)} files landed: "
                    "an event counted twice"
                )
            regressions += count < last
            last = count
            while len(visible) < count:
                visible.append(at)
            time.sleep(max(0.0, self.options.poll_s - (time.time() - at)))
        return {
            "visible": visible,
            "polls": polls,
            "batch_polls": batch_polls,
            "regressions": regressions,
        }

    def _settle(
        self, instance: Any, proc: subprocess.Popen, log: Path, since: float
    ) -> tuple[float, float | None]:
        """Until the runs the phase caused are done: (when the last one ended or was created,
        when the batch mart first showed every session, or None).

        Always: no ingest run in flight (their times are part of the figures). With
        --settle: also the batch mart shows every session and no run is in flight or was
        created or ended for ``quiet_s`` (longer than the automation sensor's interval).
        """
        import dagster as dg

        in_flight = _in_flight_statuses()
        expected = expected_funnel(self.files)
        caught_up = None
        while True:
            self._alive(proc, log)
            self._deadline("a quiet instance", since)
            at = time.time()
            looking = self.options.settle and caught_up is None
            if looking and batch_funnel(self.pf.data_dir, self.day) == expected:
                caught_up = at
            busy = instance.get_run_records(filters=dg.RunsFilter(statuses=in_flight))
            runs = runs_of(instance)
            latest = max([since] + [t for r in runs for t in (r["created"], r["ended"]) if t])
            if not self.options.settle:
                if not any(r.dagster_run.job_name == INGEST_JOB for r in busy):
                    return latest, None
            elif (
                not busy and caught_up is not None and time.time() - latest >= self.options.quiet_s
            ):
                return latest, caught_up
            time.sleep(1.0)

    # ------------------------------------------------------------------ figures

    def _figures(
        self,
        *,
        landed: list[tuple[float, float]],
        visible_at: list[float],
        reader: dict[str, Any],
        runs: list[dict[str, Any]],
        ticks: list[float],
        t0: float,
        settled_at: float,
        caught_up: float | None,
        began: float,
    ) -> dict[str, Any]:
        n = self.files
        data = self.pf.data_dir
        layer, funnel = read_funnel(data, self.day)
        expected = expected_funnel(n)
        manifest = [m for m in manifest_files(data) if m["source"] == "events"]
        by_name = {m["file_name"]: m for m in manifest}
        lake_rows = lake_event_rows(data)
        batch = batch_funnel(data, self.day)

        # every event counted once, or no figures
        problems = []
        if funnel != expected:
            problems.append(f"the reader ({layer}) sees {funnel}, expected {expected}")
        statuses = Counter(m["status"] for m in manifest)
        if dict(statuses) != {"loaded": n} or set(by_name) != {file_name(k) for k in range(n)}:
            problems.append(f"the manifest holds {dict(statuses)}, expected {{'loaded': {n}}}")
        if lake_rows != expected_events(n):
            problems.append(f"the lake index has {lake_rows} events, expected {expected_events(n)}")
        if self.options.settle and batch != expected:
            problems.append(f"the batch mart sees {batch}, expected {expected}")
        in_flight = {s.value for s in _in_flight_statuses()}
        unfinished = [r for r in runs if r["status"] in in_flight]
        failed = [r for r in runs if r["status"] not in in_flight and r["status"] != "SUCCESS"]
        if failed:
            problems.append(
                "runs did not succeed: "
                + ", ".join(f"{r['job']} {r['run_id'][:8]} {r['status']}" for r in failed)
            )
        if self.options.settle and unfinished:
            problems.append(f"{len(unfinished)} run(s) still in flight after settling")
        ingests = {r["run_id"]: r for r in runs if r["job"] == INGEST_JOB}
        orphans = [m["file_name"] for m in manifest if m["run_id"] not in ingests]
        if orphans:
            problems.append(f"files loaded by no ingest run of the phase: {orphans[:3]}")
        if problems:
            raise common.BenchmarkError(
                f"phase {self.rate:g} files/s: " + "; ".join(problems) + f" (logs {self.pf.logs})"
            )

        renamed = [at for _, at in landed]
        latencies = [v - at for v, at in zip(visible_at, renamed, strict=True)]
        # where each file's time went: its ingest run from the manifest
        parts: dict[str, list[float]] = {"to_tick": [], "to_start": [], "to_visible": []}
        for k, at in enumerate(renamed):
            run = ingests[by_name[file_name(k)]["run_id"]]
            parts["to_tick"].append(run["created"] - at)
            parts["to_start"].append(run["started"] - run["created"])
            parts["to_visible"].append(visible_at[k] - run["started"])
        first, last = renamed[0], visible_at[-1]
        phase_ticks = [t for t in ticks if first - self.interval - DAEMON_LOOP_S <= t <= last]
        gaps = [b - a for a, b in itertools.pairwise(phase_ticks)]
        ingest_runs = list(ingests.values())
        spans = sorted((r["started"], r["ended"]) for r in ingest_runs)
        overlapping = sum(1 for a, b in itertools.pairwise(spans) if b[0] < a[1])
        return {
            "rate": self.rate,
            "interval_s": self.interval,
            "files": n,
            "events": expected_events(n),
            "drop": {
                "seconds": renamed[-1] - renamed[0],
                "max_late_s": max(at - s for s, at in landed),
            },
            "latency": summary(latencies),
            "latencies": latencies,
            "breakdown": {k: _mean(v) for k, v in parts.items()},
            "landing_ticks": {
                "count": len(phase_ticks),
                "mean_gap_s": _mean(gaps),
                "min_gap_s": min(gaps) if gaps else None,
                "max_gap_s": max(gaps) if gaps else None,
            },
            "ingest_runs": {
                "count": len(ingest_runs),
                "files_mean": n / len(ingest_runs),
                "files_max": max(r["files"] for r in ingest_runs),
                "run_s_mean": _mean([r["ended"] - r["started"] for r in ingest_runs]),
                "launch_s_mean": _mean([r["started"] - r["created"] for r in ingest_runs]),
                "overlapping": overlapping,
            },
            "runs": {
                "total": len(runs),
                "by_job": dict(Counter(r["job"] for r in runs)),
                "statuses": dict(Counter(r["status"] for r in runs)),
                "unfinished": len(unfinished),
                "settled": self.options.settle,
                "last_run_after_last_visible_s": max(
                    0.0, max((r["ended"] or r["created"]) for r in runs) - last
                ),
            },
            "reader": reader | {"layer_at_end": layer, "poll_s": self.options.poll_s},
            "checks": {
                "funnel": list(funnel),
                "batch_funnel": list(batch) if batch else None,
                "manifest_loaded": statuses["loaded"],
                "lake_events": lake_rows,
                "every_event_once": True,
            },
            # the lambda layers side by side: when the batch mart had every file, from the
            # last file's rename (polled every second while settling)
            "batch_caught_up_s": caught_up - renamed[-1] if caught_up else None,
            "run_list": runs,
            "wall_s": time.time() - began,
        }


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) with linear interpolation between order statistics."""
    ordered = sorted(values)
    if not ordered:
        return None
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": percentile(values, 0.5),
        "p95": percentile(values, 0.95),
        "max": max(values) if values else None,
        "min": min(values) if values else None,
        "mean": _mean(values),
    }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


# --------------------------------------------------------------------------- the benchmark


def run(options: Options, say: common.Say = lambda _: None) -> dict[str, Any]:
    """Run every phase; returns the JSON-able result (figures only if every check passed)."""
    if not options.rates or min(options.rates) <= 0 or not options.intervals:
        raise common.BenchmarkError("need at least one rate > 0 and one interval")
    if min(options.intervals) < 1 or options.history_days < 0 or options.poll_s <= 0:
        raise common.BenchmarkError("need --intervals >= 1, --history-days >= 0, --poll-s > 0")
    machine = common.machine_info()
    began = time.perf_counter()
    phases = []
    with common.temp_root(options.workdir, options.keep, say) as root:
        code = common.freeze_code(root / "code")
        machine["code"]["digest"] = common.code_digest(code)
        for interval in options.intervals:
            for rate in options.rates:
                name = f"rate{rate:g}_interval{interval}"
                platform = common.Platform.create(root / name, options.start, options.day, code)
                say(
                    f"phase {name}: {options.files_for(rate)} files at {rate:g}/s, sensor "
                    f"interval {interval}s, in {platform.root}"
                )
                figures = Phase(platform, options, rate, interval, say).run()
                lat = figures["latency"]
                say(
                    f"  p50 {lat['p50']:.1f}s, p95 {lat['p95']:.1f}s, max {lat['max']:.1f}s; "
                    f"{figures['ingest_runs']['count']} ingest runs, "
                    f"{figures['runs']['total']} runs in all ({figures['wall_s']:.0f}s)"
                )
                phases.append(figures)
    result = {
        "benchmark": NAME,
        "config": {
            "rates": list(options.rates),
            "seconds": options.seconds,
            "files": options.files,
            "intervals": list(options.intervals),
            "day": options.day.isoformat(),
            "start": options.start.isoformat(),
            "settle": options.settle,
            "quiet_s": options.quiet_s,
            "poll_s": options.poll_s,
            "daemon": " ".join(["python", *DAEMON_CMD[1:]]),
        },
        "phases": phases,
        "machine": machine,
        "total_wall_s": time.perf_counter() - began,
    }
    result["machine"]["load_avg_end"] = common.load_avg()
    return result


# --------------------------------------------------------------------------- reporting

HEADERS = [
    "rate",
    "files",
    "sensor interval",
    "p50",
    "p95",
    "max",
    "ingest runs",
    "files per ingest run",
    "all runs",
    "landed → tick",
    "tick → run start",
    "run start → visible",
    "tick gap",
]
RIGHT = set(range(len(HEADERS)))


def table_rows(r: dict[str, Any]) -> list[list[str]]:
    rows = []
    for p in r["phases"]:
        lat, b, ing, runs = p["latency"], p["breakdown"], p["ingest_runs"], p["runs"]
        all_runs = str(runs["total"]) if runs["settled"] else f"{runs['total']} (not settled)"
        rows.append(
            [
                f"{p['rate']:g}/s",
                str(p["files"]),
                f"{p['interval_s']} s",
                f"**{common.fmt_s(lat['p50'])}**",
                f"**{common.fmt_s(lat['p95'])}**",
                common.fmt_s(lat["max"]),
                str(ing["count"]),
                f"{ing['files_mean']:.1f} (max {ing['files_max']})",
                all_runs,
                common.fmt_s(b["to_tick"]),
                common.fmt_s(b["to_start"]),
                common.fmt_s(b["to_visible"]),
                common.fmt_s(p["landing_ticks"]["mean_gap_s"]),
            ]
        )
    return rows


def _jobs(by_job: dict[str, int]) -> str:
    names = {INGEST_JOB: "ingest", "__ASSET_JOB": "automation"}
    return ", ".join(f"{count} {names.get(job, job)}" for job, count in sorted(by_job.items()))


def comparison(p: dict[str, Any]) -> str:
    """The latency against the sensor interval: p50 ≈ tick gap / 2 + launch + run."""
    lat, b, t = p["latency"], p["breakdown"], p["landing_ticks"]
    gap = t["mean_gap_s"] or float(p["interval_s"])
    model = gap / 2 + b["to_start"] + b["to_visible"]
    worst = gap + b["to_start"] + b["to_visible"]
    return (
        f"At {p['rate']:g} file(s)/s with a {p['interval_s']} s interval, p50 "
        f"{common.fmt_s(lat['p50'])} ≈ half the {common.fmt_s(gap)} between landing-sensor "
        f"ticks (a tick is due every {p['interval_s']} s, `minimum_interval_seconds`, and the "
        f"daemon's sensor loop looks at most every {DAEMON_LOOP_S} s; a file waited "
        f"{common.fmt_s(b['to_tick'])} on average for its tick) + "
        f"{common.fmt_s(b['to_start'])} from the tick's run request to the run's "
        f"start (the queued-run coordinator, every {DAEMON_LOOP_S} s, and a new run process) + "
        f"{common.fmt_s(b['to_visible'])} from the run's start to the reader seeing the file "
        f"(ingest, then the speed-layer refresh) = {common.fmt_s(model)}. p95 "
        f"{common.fmt_s(lat['p95'])} against a file that just missed a tick, a full gap plus "
        f"the same launch and run: {common.fmt_s(worst)}."
    )


def batch_layer(p: dict[str, Any]) -> str:
    """When the batch mart had every file, and the automation runs that got it there."""
    if p.get("batch_caught_up_s") is None:
        return ""
    auto = [r for r in p.get("run_list", []) if r["job"] != INGEST_JOB]
    steps = " → ".join(
        "+".join(a.rsplit("/", 1)[-1] for a in r["assets"]) or r["job"] for r in auto
    )
    return (
        f" The batch mart had every file {common.fmt_s(p['batch_caught_up_s'])} after the last "
        f"rename, through {len(auto)} automation run(s) in this order: {steps}; at the end the "
        f"reader was answered by the {p['reader']['layer_at_end']} layer."
    )


def notes(r: dict[str, Any]) -> list[str]:
    c = r["config"]
    out = [
        f"Each phase is a fresh platform (partitions {c['start']}..{c['day']}, the events dated "
        f"{c['day']}, the last partition: the speed layer's today) and a fresh daemon "
        f"(`{c['daemon']}`); files start landing right after the landing sensor's first tick. "
        f"Latency is from a file's rename into `landing/events/` to the first read that counts "
        f"its session, polling every {c['poll_s']} s (so up to {c['poll_s']} s of it is the "
        "poll): the k-th file landed is visible once the day shows k sessions in "
        "`marts.realtime_funnel`, or in `marts.daily_funnel` once the batch mart has retired "
        "the day from the speed layer. *landed → tick*: from the rename to the landing "
        "sensor's run request for the file's batch (the manifest says which run loaded it); "
        "*tick → run start*: queue and launch; *run start → visible*: ingest and speed-layer "
        "refresh, until the reader sees it (all means). *tick gap*: the mean time between "
        "landing-sensor ticks during the phase.",
    ]
    for p in r["phases"]:
        runs, ing, rd = p["runs"], p["ingest_runs"], p["reader"]
        settled = (
            f"the last run ended {common.fmt_s(runs['last_run_after_last_visible_s'])} after "
            f"the last file was visible, and no run started in the {common.fmt_s(c['quiet_s'])} "
            "after it"
            if runs["settled"]
            else "not settled: runs the batch layer would still start are not counted"
        )
        overlap = (
            f"; {ing['overlapping']} ingest run(s) overlapped the one before"
            if ing["overlapping"]
            else ""
        )
        out.append(
            f"**{p['rate']:g} file(s)/s, {p['files']} files over "
            f"{common.fmt_s(p['drop']['seconds'])}** (renames at most "
            f"{p['drop']['max_late_s'] * 1000:.0f} ms behind schedule): "
            f"{comparison(p)} Runs: {runs['total']} in all ({_jobs(runs['by_job'])}), every one "
            f"{'SUCCESS' if set(runs['statuses']) == {'SUCCESS'} else runs['statuses']}; "
            f"{settled}. Ingest runs took {common.fmt_s(ing['run_s_mean'])} from start to end "
            f"on average{overlap}. The reader polled {rd['polls']} times, "
            f"{rd['batch_polls']} of them answered by the batch mart"
            + (f", and saw the count drop {rd['regressions']} time(s)" if rd["regressions"] else "")
            + f".{batch_layer(p)}"
        )
    checked = ", ".join(
        f"{p['files']} files / {p['events']} events at {p['rate']:g}/s" for p in r["phases"]
    )
    out.append(
        f"Checked before any time was reported, per phase ({checked}): the reader's funnel for "
        "the day equals the files' (sessions and every step, each counted once), the manifest "
        "holds every file loaded once by an ingest run of the phase, the lake index holds "
        "every event once, every run the phase caused succeeded"
        + (", and the batch mart shows the same funnel." if c["settle"] else ".")
    )
    return out


def readme_block(r: dict[str, Any]) -> str:
    return "\n\n".join(
        [
            common.machine_line(r["machine"]),
            common.markdown_table(HEADERS, table_rows(r), right=RIGHT - {0}),
            *notes(r),
            f"Whole benchmark {common.fmt_s(r.get('total_wall_s'))}.",
        ]
    )


def print_table(r: dict[str, Any]) -> None:
    common.print_results(
        "landing-to-visible latency of the streaming ingest",
        HEADERS,
        table_rows(r),
        RIGHT - {0},
        [common.machine_line(r["machine"]), *notes(r)],
        width=160,
    )


# --------------------------------------------------------------------------- CLI


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = Options()
    parser.add_argument(
        "--rates",
        type=_floats,
        help="files per second, one phase each, comma-separated (default 1,5)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=d.seconds,
        help=f"how long each phase drops files: FILES = rate x seconds (default {d.seconds:g})",
    )
    parser.add_argument("--files", type=int, help="files per phase, whatever the rate")
    parser.add_argument(
        "--intervals",
        type=_ints,
        help="ASSETS_PKG_SENSOR_INTERVAL_S values, each run at every rate, comma-separated "
        f"(default {SHIPPED_INTERVAL_S}, the shipped default)",
    )
    parser.add_argument(
        "--day",
        type=dt.date.fromisoformat,
        default=d.day,
        help=f"the events' day, the last partition (default {d.day})",
    )
    parser.add_argument(
        "--settle",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="wait for the batch layer and a quiet instance to count every run a phase "
        "caused (default on, off with --smoke)",
    )
    parser.add_argument(
        "--quiet-s",
        type=float,
        default=d.quiet_s,
        help=f"how long no run may start or end to call a phase settled (default {d.quiet_s:g})",
    )
    parser.add_argument(
        "--poll-s", type=float, default=d.poll_s, help=f"reader poll (default {d.poll_s:g})"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="quick check of the harness: --rates 4 --files 6 --intervals 1 --no-settle unless "
        "given, README untouched unless --readme",
    )
    parser.add_argument(
        "--readme",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="regenerate the results block in benchmarks/README.md (default on, off with --smoke)",
    )
    parser.add_argument("--json", type=Path, help="also write the full result as JSON here")
    parser.add_argument(
        "--workdir", type=Path, help="parent of the temp dir (default: system temp)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp dir (daemon logs, instances, data)"
    )


def options_from(args: argparse.Namespace) -> Options:
    d = Options()
    preset = SMOKE if args.smoke else {}

    def pick(name: str):
        value = getattr(args, name)
        return value if value is not None else preset.get(name, getattr(d, name))

    return Options(
        rates=pick("rates"),
        seconds=args.seconds,
        files=pick("files"),
        intervals=pick("intervals"),
        day=args.day,
        settle=pick("settle"),
        quiet_s=args.quiet_s,
        poll_s=args.poll_s,
        workdir=args.workdir,
        keep=args.keep,
    )


def main(args: argparse.Namespace) -> int:
    return common.run_cli(NAME, args, options_from(args), run, print_table, readme_block)
