"""What benchmarks share: a temp platform, measured subprocesses, machine info, README blocks.

Nothing here imports ``assets_pkg`` or ``dagster`` at import time: the code under test runs
in child processes, so every figure includes what a user's process pays and the harness
process stays out of the memory figures. The children import a frozen copy of the code
(``freeze_code``), taken when the benchmark starts, so edits to the working tree during a
run cannot change or break what is measured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

#: the checkout whose code is measured: the directory that holds ``benchmarks/``
CODE_ROOT = Path(__file__).resolve().parents[1]
README = Path(__file__).with_name("README.md")
INSTANCE_TEMPLATE = Path("assets_pkg") / "instance" / "dagster.yaml"  # under a code root
#: what a benchmark measures: uncommitted changes here are reported with the results
MEASURED_PATHS = ("assets_pkg", "pyproject.toml")
#: the packages a frozen copy of the code holds
FROZEN_PACKAGES = ("assets_pkg", "benchmarks")
VERSIONED = ("dagster", "polars", "duckdb", "pyarrow", "numpy")
#: a guard against a hung child (a run waiting on a pool slot forever), not a time limit
DEFAULT_TIMEOUT_S = 3600.0

Say = Callable[[str], None]


class BenchmarkError(RuntimeError):
    """A benchmark could not produce trustworthy figures; the message says why."""


# --------------------------------------------------------------------------- measuring


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One child process: wall time and the peak RSS of its process tree.

    ``peak_rss_bytes`` is the kernel's ``ru_maxrss`` for the child as returned by
    ``wait4``: the largest resident set of the child or of any descendant it waited for
    (the peak of the biggest single process in the tree, not a sum over the tree).
    """

    label: str
    wall_s: float
    peak_rss_bytes: int
    returncode: int
    log: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _maxrss_bytes(ru_maxrss: int) -> int:
    # Linux reports KiB, macOS bytes
    return ru_maxrss if sys.platform == "darwin" else ru_maxrss * 1024


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def run_measured(
    cmd: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log: Path,
    label: str = "",
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    check: bool = True,
) -> Measurement:
    """Run ``cmd`` with output to ``log``; wall time from spawn to exit, peak RSS via wait4.

    The child gets its own session, so a timeout (or Ctrl-C here) kills its whole tree.
    With ``check``, a non-zero exit raises :class:`BenchmarkError` with the log's tail.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    timed_out = threading.Event()

    def expire(pid: int) -> None:
        timed_out.set()
        _kill_group(pid)

    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        timer = threading.Timer(timeout_s, expire, (proc.pid,)) if timeout_s else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            _kill_group(proc.pid)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, 0)
            proc.returncode = -signal.SIGKILL
            raise
        finally:
            if timer:
                timer.cancel()
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: tell Popen
    result = Measurement(
        label=label or " ".join(cmd),
        wall_s=wall,
        peak_rss_bytes=_maxrss_bytes(usage.ru_maxrss),
        returncode=proc.returncode,
        log=str(log),
    )
    if timed_out.is_set():
        raise BenchmarkError(f"{result.label}: no exit after {timeout_s:.0f}s, killed (log {log})")
    if check and result.returncode != 0:
        raise BenchmarkError(f"{result.label}: exit {result.returncode} (log {log}):\n{tail(log)}")
    return result


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def python_call(
    target: str,
    payload: dict[str, Any],
    *,
    env: dict[str, str],
    cwd: Path,
    log: Path,
    label: str = "",
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
) -> tuple[Measurement, Any]:
    """Run ``module:function(payload)`` in a fresh Python process, measured.

    The function's JSON-able return value comes back with the measurement; the child is
    ``python -m benchmarks._worker``, so the same ``PYTHONPATH`` rules apply.
    """
    stem = log.with_suffix("")
    request, response = Path(f"{stem}.in.json"), Path(f"{stem}.out.json")
    request.parent.mkdir(parents=True, exist_ok=True)
    request.write_text(json.dumps(payload))
    response.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "benchmarks._worker", target, str(request), str(response)]
    measured = run_measured(
        cmd, env=env, cwd=cwd, log=log, label=label or target, timeout_s=timeout_s
    )
    if not response.exists():
        raise BenchmarkError(f"{measured.label}: no result written (log {log}):\n{tail(log)}")
    return measured, json.loads(response.read_text())


def run_event_summary(payload: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Child side (``python_call``): where the time of each run went, from the event logs.

    ``payload["instances"]`` maps a name to ``[dagster_home, job_name]``; the result maps
    the same names to the runs of that job in that instance, oldest first, each with
    ``events`` (count), ``planned`` and ``materialized`` (per-partition asset events),
    ``before_start_s`` (first event to RUN_START: the run's planned-materialization events
    are written then), ``run_s`` (RUN_START to the run's end) and ``steps`` (seconds per
    step). One child reads every instance, so dagster is imported once.
    """
    import dagster as dg

    result = {}
    for name, (home, job) in payload["instances"].items():
        with dg.DagsterInstance.from_config(home) as instance:
            found = instance.get_run_records(filters=dg.RunsFilter(job_name=job))
            runs = [r.dagster_run for r in sorted(found, key=lambda r: r.create_timestamp)]
            result[name] = [_run_summary(instance, run.run_id) for run in runs]
    return result


def _run_summary(instance: Any, run_id: str) -> dict[str, Any]:
    ends = {"RUN_SUCCESS", "RUN_FAILURE", "RUN_CANCELED"}
    records = instance.get_records_for_run(run_id).records
    kinds: dict[str, int] = {}
    marks: dict[str, float] = {}
    steps: dict[str, float] = {}
    for record in records:
        entry = record.event_log_entry
        kind = entry.dagster_event_type.name if entry.dagster_event_type else "LOG"
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == "RUN_START" or kind in ends:
            marks[kind if kind == "RUN_START" else "END"] = entry.timestamp
        if kind == "STEP_SUCCESS":
            steps[entry.step_key] = entry.dagster_event.event_specific_data.duration_ms / 1000
    first = records[0].event_log_entry.timestamp if records else None
    start, end = marks.get("RUN_START"), marks.get("END")
    return {
        "run_id": run_id,
        "events": len(records),
        "planned": kinds.get("ASSET_MATERIALIZATION_PLANNED", 0),
        "materialized": kinds.get("ASSET_MATERIALIZATION", 0),
        "before_start_s": start - first if start and first else None,
        "run_s": end - start if start and end else None,
        "steps": steps,
    }


# --------------------------------------------------------------------------- platform


@dataclasses.dataclass(frozen=True)
class Platform:
    """A throw-away platform: data dir, Dagster home and partition range, all under ``root``."""

    root: Path
    start: dt.date
    end: dt.date
    #: the code the children import (``PYTHONPATH``): a ``freeze_code`` copy or this checkout
    code: Path = CODE_ROOT

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def warehouse(self) -> Path:
        return self.data_dir / "analytics.duckdb"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @classmethod
    def create(cls, root: Path, start: dt.date, end: dt.date, code: Path = CODE_ROOT) -> Platform:
        """An empty platform whose ``DAGSTER_HOME`` is seeded with the project's settings."""
        made = cls(root.resolve(), start, end, code.resolve())
        made.data_dir.mkdir(parents=True, exist_ok=True)
        made.dagster_home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(made.code / INSTANCE_TEMPLATE, made.dagster_home / "dagster.yaml")
        return made

    def clone(self, root: Path, skip: Sequence[str] = ("archive", "landing")) -> Platform:
        """A copy of this platform's data (minus ``skip`` at its top level) and instance.

        Only call it while no process has the platform open (DuckDB and SQLite files are
        copied as they are on disk).
        """
        copy = Platform(root.resolve(), self.start, self.end, self.code)
        copy.root.mkdir(parents=True, exist_ok=True)
        shutil.copytree(
            self.data_dir,
            copy.data_dir,
            ignore=lambda d, names: [n for n in names if Path(d) == self.data_dir and n in skip],
        )
        shutil.copytree(self.dagster_home, copy.dagster_home)
        return copy

    def env(self) -> dict[str, str]:
        """A child's environment: this platform, this checkout's code, no other ASSETS_PKG_*."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSETS_PKG_")}
        env.update(
            ASSETS_PKG_DATA_DIR=str(self.data_dir),
            ASSETS_PKG_START_DATE=self.start.isoformat(),
            ASSETS_PKG_END_DATE=self.end.isoformat(),
            DAGSTER_HOME=str(self.dagster_home),
            PYTHONPATH=os.pathsep.join(p for p in (str(self.code), env.get("PYTHONPATH")) if p),
        )
        return env

    def run(
        self,
        cmd: Sequence[str],
        name: str,
        label: str = "",
        extra_env: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Measurement:
        """``run_measured`` in this platform, cwd at its root, log in ``logs/<name>.log``;
        ``extra_env`` is added to the platform's environment."""
        return run_measured(
            cmd,
            env={**self.env(), **(extra_env or {})},
            cwd=self.root,
            log=self.logs / f"{name}.log",
            label=label,
            **kwargs,
        )

    def call(
        self, target: str, payload: dict[str, Any], name: str, label: str = "", **kwargs: Any
    ) -> tuple[Measurement, Any]:
        return python_call(
            target,
            payload,
            env=self.env(),
            cwd=self.root,
            log=self.logs / f"{name}.log",
            label=label,
            **kwargs,
        )


def freeze_code(dest: Path, source: Path = CODE_ROOT) -> Path:
    """Copy the packages under test to ``dest`` (a code root for ``Platform(code=...)``)."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "README.md")
    for package in FROZEN_PACKAGES:
        shutil.copytree(source / package, dest / package, ignore=skip)
    return dest.resolve()


def code_digest(code: Path) -> str:
    """A short hash of the ``assets_pkg`` sources in ``code``: what exactly was measured."""
    digest = hashlib.sha256()
    package = code / "assets_pkg"
    for path in sorted(
        p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ):
        digest.update(str(path.relative_to(code)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def assets_pkg_cmd(*args: str) -> list[str]:
    """``assets-pkg ARGS`` run with this interpreter (the console script does the same)."""
    return [sys.executable, "-m", "assets_pkg.cli.main", *args]


def dagster_cmd(*args: str) -> list[str]:
    """``dagster ARGS`` run with this interpreter."""
    return [sys.executable, "-m", "dagster", *args]


@contextlib.contextmanager
def temp_root(
    parent: Path | None = None, keep: bool = False, say: Say | None = None
) -> Iterator[Path]:
    """A fresh directory for one benchmark, removed afterwards unless ``keep``."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="assets-pkg-bench-", dir=parent)).resolve()
    try:
        yield root
    finally:
        if keep:
            if say:
                say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _ram_bytes() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(AttributeError, ValueError, OSError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(CODE_ROOT), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.rstrip("\n") if out.returncode == 0 else None


def code_version() -> dict[str, Any]:
    """The commit measured and the files of the measured code that differ from it."""
    commit = _git("rev-parse", "--short", "HEAD")
    status = _git("status", "--porcelain", "--", *MEASURED_PATHS)
    changed = [line[3:] for line in (status or "").splitlines() if line.strip()]
    return {"commit": commit, "uncommitted": changed}


def load_avg() -> list[float] | None:
    """1, 5 and 15 minute load averages (other work on the machine skews timings)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def machine_info() -> dict[str, Any]:
    """What the figures were measured on, in a JSON-able dict."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": usable,
        "cpu_model": _cpu_model(),
        "ram_bytes": _ram_bytes(),
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "versions": versions,
        "load_avg_start": load_avg(),
        "code": code_version(),
    }


def machine_line(info: dict[str, Any]) -> str:
    """One markdown paragraph describing ``machine_info()``."""
    ram = fmt_bytes(info["ram_bytes"]) if info.get("ram_bytes") else "? RAM"
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    code = info.get("code") or {}
    commit = code.get("commit") or "unknown commit"
    changed = code.get("uncommitted") or []
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    dirty = f" plus uncommitted changes ({shown})" if changed else ""
    if code.get("digest"):
        dirty += f" (sources digest {code['digest']})"
    start, end = info.get("load_avg_start"), info.get("load_avg_end")
    load_text = f"; 1-min load average {start[0]:.2f} at start" if start else ""
    if start and end:
        load_text += f", {end[0]:.2f} at end"
    return (
        f"Measured {info['date']} on {info['cpus']} CPU(s) ({info['cpu_model']}), {ram} RAM, "
        f"{info['os']}; Python {info['python']}, {versions}; code at {commit}{dirty}"
        f"{load_text}."
    )


# --------------------------------------------------------------------------- formatting


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 600:
        return f"{seconds:.1f} s"
    return f"{seconds:,.0f} s ({seconds / 60:.1f} min)"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "—"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}" if unit == "GiB" else f"{n / size:,.0f} {unit}"
    return f"{n} B"


def fmt_rate(rows: float | None) -> str:
    return "—" if rows is None else f"{rows:,.0f}"


def fmt_ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:,.1f}×" if x >= 10 else f"{x:,.2f}×"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """A GitHub markdown table; columns whose index is in ``right`` are right-aligned."""
    sep = ["---:" if i in right else "---" for i in range(len(headers))]
    lines = [headers, sep, *rows]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines)


def plain(text: str) -> str:
    """Markdown emphasis and code marks removed, for the terminal."""
    return text.replace("**", "").replace("`", "").replace("*", "")


def print_results(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: set[int],
    paragraphs: Sequence[str],
    width: int = 120,
) -> None:
    """The results table and its notes on the terminal (rich), as the README shows them."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else width)
    table = Table(title=title)
    for i, h in enumerate(headers):
        table.add_column(h, justify="right" if i in right else "left")
    for row in rows:
        table.add_row(*[plain(x) for x in row])
    console.print(table)
    for paragraph in paragraphs:
        console.print(plain(paragraph), highlight=False)


# --------------------------------------------------------------------------- README blocks


def _markers(name: str) -> tuple[str, str]:
    return (
        f"<!-- results:{name}:begin — generated by `python -m benchmarks {name}`; "
        "edits between these markers are overwritten -->",
        f"<!-- results:{name}:end -->",
    )


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the results block of ``name`` replaced (or appended if absent)."""
    begin, end = _markers(name)
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(
        rf"<!-- results:{re.escape(name)}:begin.*?-->.*?<!-- results:{re.escape(name)}:end -->",
        re.DOTALL,
    )
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return f"{text.rstrip()}\n\n{block}\n" if text.strip() else f"{block}\n"


def update_readme(name: str, body: str, readme: Path = README) -> Path:
    """Rewrite the results block of ``name`` in ``readme``; the text around it is kept."""
    text = readme.read_text() if readme.exists() else ""
    new = replace_block(text, name, body)
    tmp = readme.with_name(f".{readme.name}.tmp")
    tmp.write_text(new)
    os.replace(tmp, readme)
    return readme


def run_cli(name, args, options, run, print_table, readme_block) -> int:
    """What every benchmark's ``main`` does: run, print, write JSON and the README block."""
    from rich.console import Console

    err = Console(stderr=True)
    began = time.monotonic()

    def say(message: str) -> None:
        err.print(f"[dim]{time.monotonic() - began:7.1f}s[/dim] {message}", highlight=False)

    try:
        result = run(options, say)
    except BenchmarkError as exc:
        err.print(f"[red]benchmark failed:[/red] {exc}", highlight=False)
        return 1
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
        say(f"wrote {args.json}")
    write_readme = args.readme if args.readme is not None else not args.smoke
    if write_readme:
        path = update_readme(name, readme_block(result))
        say(f"updated {path}")
    return 0
