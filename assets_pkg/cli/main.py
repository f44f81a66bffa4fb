"""`assets-pkg`: generate sample data, ingest, backfill, and the demo that does all three.

Every command exits 0 on success and 1 with a one-line reason on stderr on failure.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import json
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import dagster as dg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from assets_pkg.config import ConfigError, Settings, load_settings, parse_date
from assets_pkg.partitions import range_tags
from assets_pkg.resources.lake import LakeResource
from assets_pkg.resources.warehouse import (
    WarehouseLockTimeout,
    WarehouseResource,
    arrow_view,
    run_in_transaction,
)

console = Console(stderr=False)
err = Console(stderr=True)

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
#: seconds between polls of a run's events for the progress line on a terminal
PROGRESS_POLL_S = 1.0


class CommandError(Exception):
    """A failure the user can act on; printed as one line."""


@dataclass
class RunOutcome:
    success: bool
    run_id: str
    reason: str


def _failed_error_checks(result: dg.ExecuteInProcessResult | dg.JobExecutionResult) -> list[str]:
    """Every ERROR check that failed in the run, as ``check on asset: what failed``."""
    failed = []
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            evaluation = getattr(data, "evaluation", data)
            if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
                detail = (evaluation.description or "").split("; ")[0]
                failed.append(
                    f"check {evaluation.check_name} on {evaluation.asset_key.to_user_string()} "
                    f"failed" + (f" ({detail})" if detail else "")
                )
    return failed


def _failure_reason(result: dg.ExecuteInProcessResult | dg.JobExecutionResult) -> str:
    """The first failed step or ERROR check, as one line."""
    failed = _failed_error_checks(result)
    if failed:
        extra = f" and {len(failed) - 1} more failed check(s)" if len(failed) > 1 else ""
        return failed[0] + extra
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.event_specific_data.error
            cause = error
            while cause.cause is not None:
                cause = cause.cause
            message = (cause.message or error.message).strip().splitlines()[-1]
            return f"step {event.step_key} failed: {message}"
    return "the run failed"


def _execute(
    settings: Settings,
    job_name: str,
    tags: dict[str, str] | None = None,
    label: str = "running",
) -> RunOutcome:
    """Run a job of the code location, recorded in the shared instance.

    With the default in-process executor the run is ``execute_in_process``; with another
    executor (``ASSETS_PKG_EXECUTOR``: multiprocess, celery) this process orchestrates a run
    of the reconstructable job and its steps run in other processes or on celery workers.
    """
    from assets_pkg.definitions import build_definitions
    from assets_pkg.executors import reconstructable_job, runs_in_process
    from assets_pkg.instance import ensure_instance, process_tags, reap_dead_runs

    defs = build_definitions()
    job = defs.resolve_job_def(job_name)
    instance = ensure_instance(settings)
    for run in reap_dead_runs(instance):
        err.print(f"marked run {run} failed: its process is gone (slots freed)")
    tags = {**(tags or {}), **process_tags()}
    run_id = str(uuid.uuid4())
    outcome: dict[str, dg.ExecuteInProcessResult | dg.JobExecutionResult | BaseException] = {}
    in_process = runs_in_process(job)
    if not in_process:
        # execute_job picks its own run id: find the run again by this tag
        tags[INVOCATION_TAG] = run_id

    def target() -> None:
        try:
            if in_process:
                outcome["result"] = job.execute_in_process(
                    instance=instance,
                    run_id=run_id,
                    tags=tags,
                    run_config=QUIET_LOGS,
                    raise_on_error=False,
                )
            else:
                outcome["result"] = dg.execute_job(
                    reconstructable_job(job_name),
                    instance=instance,
                    tags=tags,
                    run_config=QUIET_LOGS,
                    raise_on_error=False,
                )
        except BaseException as exc:  # surfaced below, in the main thread
            outcome["result"] = exc

    worker = threading.Thread(target=target, daemon=True)
    # What is loaded by now (Dagster, the definitions, the instance) outlives the run: left
    # out of the collector's full passes while it runs, which walked it all each time (a
    # 1M-item backfill's 0.58 s of them to 0.28 s), and handed back to it after.
    gc.freeze()
    try:
        if not err.is_terminal:
            # no one to show a progress line to (a log, a pipe, a scheduler): polling the
            # event log and drawing the line cost a 10M-item ingest about 4 CPU seconds
            worker.start()
            worker.join()
        else:
            _follow(worker, instance, run_id, job, label, None if in_process else tags)
    finally:
        gc.unfreeze()
    result = outcome["result"]
    if isinstance(result, BaseException):
        raise result
    # an ERROR check that held a day back fails the command, though the other days published
    success = result.success and not _failed_error_checks(result)
    return RunOutcome(success, result.run_id, "" if success else _failure_reason(result))


#: tags a run started by ``execute_job`` so that the command can follow its progress
INVOCATION_TAG = "assets_pkg/invocation"


def _run_id_by_tag(instance: dg.DagsterInstance, key: str, value: str) -> str | None:
    try:
        records = instance.get_run_records(filters=dg.RunsFilter(tags={key: value}), limit=1)
    except Exception:
        return None
    return records[0].dagster_run.run_id if records else None


def _follow(
    worker: threading.Thread,
    instance: dg.DagsterInstance,
    run_id: str,
    job: dg.JobDefinition,
    label: str,
    tags: dict[str, str] | None,
) -> None:
    """Start ``worker`` (the run) and show its steps on a progress line until it ends.

    The line is drawn after each poll of the run's events, once a second, not by a refresh
    thread ten times a second; ``tags`` (a run in other processes) find the run's id.
    """
    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        auto_refresh=False,
    ) as progress:
        task = progress.add_task("", total=len(job.graph.node_dict))
        steps = StepProgress()
        worker.start()
        while worker.is_alive():
            worker.join(PROGRESS_POLL_S)
            if tags is not None:
                run_id = _run_id_by_tag(instance, INVOCATION_TAG, tags[INVOCATION_TAG]) or run_id
            steps.poll(instance, run_id)
            progress.update(task, completed=steps.done, description=steps.current, refresh=True)


class StepProgress:
    """Steps of a run done and the one last started, read from its new events only.

    A year's backfill logs tens of thousands of events: reading the run's step events
    anew at every poll scanned them all, twice a second, beside the run in this process.
    """

    def __init__(self) -> None:
        self.run_id: str | None = None
        self.cursor: str | None = None
        self.done = 0
        self.current = ""

    def poll(self, instance: dg.DagsterInstance, run_id: str) -> None:
        if run_id != self.run_id:
            self.__init__()
            self.run_id = run_id
        try:
            found = instance.get_records_for_run(
                run_id,
                cursor=self.cursor,
                of_type={dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_START},
            )
        except Exception:
            return
        for record in found.records:
            entry = record.event_log_entry
            if entry.dagster_event_type == dg.DagsterEventType.STEP_SUCCESS:
                self.done += 1
            self.current = entry.step_key or self.current
        self.cursor = found.cursor


def _guard(fn: Callable[..., None]) -> Callable[..., None]:
    """Turn expected failures into one line on stderr and exit code 1."""

    def wrapper(*args, **kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except (CommandError, ConfigError, WarehouseLockTimeout, TimeoutError) as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            sys.exit(1)
        except OSError as exc:
            err.print(f"[red]error:[/red] {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
            sys.exit(1)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _settings() -> Settings:
    return load_settings()


# --------------------------------------------------------------------------- commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """A local-first e-commerce data platform (Dagster + Polars + DuckDB)."""


def do_generate(
    settings: Settings, start: dt.date, days: int, seed: int, scale: float, clean: bool = False
) -> None:
    from assets_pkg.sample.generator import generate

    if days < 1:
        raise CommandError("--days must be at least 1")
    if scale <= 0:
        raise CommandError("--scale must be positive")
    with Progress(
        TextColumn("[bold]generating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=None)

        def report(label: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, description=label)

        summary = generate(
            settings.landing_dir,
            start=start,
            days=days,
            seed=seed,
            scale=scale,
            clean=clean,
            progress=report,
        )
    table = Table(title=f"sample landed in {settings.landing_dir}")
    for col in ("source", "files", "rows", "dirty rows"):
        table.add_column(col, justify="right" if col != "source" else "left")
    for source, files in summary.files.items():
        table.add_row(
            source,
            str(files),
            str(summary.rows.get(source, 0)),
            str(summary.dirty_rows.get(source, 0)),
        )
    console.print(table)
    if summary.broken_files:
        console.print("deliberately broken files: " + ", ".join(summary.broken_files))


@cli.command("generate")
@click.option("--start", "start", default=None, help="First day (YYYY-MM-DD); default: start date.")
@click.option("--days", default=14, show_default=True, type=int, help="Number of days.")
@click.option("--seed", default=7, show_default=True, type=int, help="Random seed.")
@click.option("--scale", default=1.0, show_default=True, type=float, help="Size multiplier.")
@click.option(
    "--clean",
    is_flag=True,
    help="No invalid rows or files (for checking hand-written baselines against the marts).",
)
@_guard
def generate_cmd(start: str | None, days: int, seed: int, scale: float, clean: bool) -> None:
    """Write a realistic, deterministic sample of every source into the landing zone."""
    settings = _settings()
    first = parse_date(start, "--start") if start else settings.start_date
    do_generate(settings, first, days, seed, scale, clean)


def do_ingest(settings: Settings) -> None:
    if not settings.landing_dir.is_dir():
        raise CommandError(
            f"no landing zone at {settings.landing_dir}: land files there or run "
            "`assets-pkg generate`"
        )
    outcome = _execute(settings, "ingest_job", label="ingesting")
    if not outcome.success:
        raise CommandError(f"ingest failed (run {outcome.run_id}): {outcome.reason}")
    _print_manifest(settings)


def _print_manifest(settings: Settings) -> None:
    from assets_pkg.lake.manifest import Manifest

    counts = Manifest(settings.manifest_path).counts()
    console.print(
        f"ingest done: {counts.get('loaded', 0)} file(s) loaded so far, "
        f"{counts.get('quarantined', 0)} quarantined (see {settings.quarantine_dir})"
    )


@cli.command("ingest")
@_guard
def ingest_cmd() -> None:
    """One pass over the landing zone: exactly what the landing sensor triggers."""
    do_ingest(_settings())


def do_backfill(settings: Settings, start: dt.date, end: dt.date) -> None:
    if end < start:
        raise CommandError(f"--end {end} is before --start {start}")
    first, last = settings.start_date, settings.last_partition()
    if start < first or end > last:
        raise CommandError(
            f"{start}..{end} is outside the partitions {first}..{last} "
            "(ASSETS_PKG_START_DATE / ASSETS_PKG_END_DATE)"
        )
    outcome = _execute(
        settings,
        "daily_pipeline",
        tags=range_tags(start, end),
        label=f"backfilling {start}..{end}",
    )
    if not outcome.success:
        raise CommandError(
            f"backfill {start}..{end} failed (run {outcome.run_id}): {outcome.reason}"
        )
    console.print(f"backfill {start}..{end} done (run {outcome.run_id})")


@cli.command("backfill")
@click.option("--start", "start", required=True, help="First day, YYYY-MM-DD.")
@click.option("--end", "end", required=True, help="Last day (inclusive), YYYY-MM-DD.")
@_guard
def backfill_cmd(start: str, end: str) -> None:
    """Materialize every asset for these days (and the dimensions) as one Dagster run."""
    do_backfill(_settings(), parse_date(start, "--start"), parse_date(end, "--end"))


def print_report(settings: Settings, limit: int = 20) -> None:
    warehouse = WarehouseResource(database=str(settings.warehouse_path), lock_timeout_s=60)
    with warehouse.get_connection(read_only=True) as conn:
        rows = conn.execute(
            "SELECT date, product_category, total_sales, order_count, avg_order_value "
            "FROM marts.daily_sales_by_category ORDER BY date, product_category LIMIT ?",
            [limit],
        ).fetchall()
        totals = conn.execute(
            "SELECT count(*), sum(revenue), sum(order_count) FROM marts.daily_sales"
        ).fetchall()[0]
        rejects = conn.execute(
            "SELECT reason, count(*) FROM quarantine.rejects GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
    table = Table(title="marts.daily_sales_by_category (first rows)")
    for col in ("date", "category", "total_sales", "orders", "avg_order_value"):
        table.add_column(col, justify="left" if col in ("date", "category") else "right")
    for date, category, sales, orders, aov in rows:
        table.add_row(
            str(date), category or "(unknown)", f"{sales:,.2f}", str(orders), f"{aov:,.2f}"
        )
    console.print(table)
    days, revenue, orders = totals
    console.print(f"{days} day(s) of sales, {orders or 0} orders, revenue {revenue or 0:,.2f}")
    if rejects:
        console.print("rejected rows: " + ", ".join(f"{r} {n}" for r, n in rejects))


@cli.command("demo")
@click.option("--days", default=14, show_default=True, type=int, help="Days of sample data.")
@click.option("--scale", default=0.5, show_default=True, type=float, help="Size multiplier.")
@click.option("--seed", default=7, show_default=True, type=int, help="Random seed.")
@_guard
def demo_cmd(days: int, scale: float, seed: int) -> None:
    """Generate a sample, ingest it, backfill its days and print the daily sales by category."""
    settings = _settings()
    start = settings.start_date
    end = start + dt.timedelta(days=days - 1)
    started = time.monotonic()
    do_generate(settings, start, days, seed, scale)
    do_ingest(settings)
    do_backfill(settings, start, min(end, settings.last_partition()))
    print_report(settings)
    console.print(f"demo done in {time.monotonic() - started:.0f}s; open the UI with `dagster dev`")


# --------------------------------------------------------------------------- retention


@dataclass
class PurgeReport:
    """What a purge deleted (or, with ``--dry-run``, would delete)."""

    files: list[str]
    reject_rows: dict[tuple[str, str], int]
    staged_sets: list[str]
    staged_kept: list[str]


def _quarantined_at(note: Path, fallback: Path) -> dt.datetime:
    """When a file was quarantined: its note's ``quarantined_at``, else the file's mtime."""
    try:
        stamp = json.loads(note.read_text())["quarantined_at"]
        return dt.datetime.fromisoformat(stamp.removesuffix("Z")).replace(tzinfo=None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        source = note if note.exists() else fallback
        return dt.datetime.fromtimestamp(source.stat().st_mtime, dt.UTC).replace(tzinfo=None)


def _old_quarantine_files(settings: Settings, cutoff: dt.datetime) -> list[Path]:
    """Quarantined files (with their ``.error.json``) quarantined before ``cutoff``."""
    old: list[Path] = []
    root = settings.quarantine_dir
    if not root.is_dir():
        return old
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        names = {p.name for p in entries}
        for path in entries:
            if path.name.endswith(".error.json") and path.name[: -len(".error.json")] in names:
                continue  # goes with its file
            if path.name.endswith(".error.json"):
                note, kept = path, path
            else:
                note, kept = path.with_name(path.name + ".error.json"), path
            if _quarantined_at(note, kept) < cutoff:
                old.append(kept)
                if note != kept and note.exists():
                    old.append(note)
    return old


def _staged_sets(lake: LakeResource) -> dict[str, dt.datetime]:
    """Staged reject sets under ``lake/_rejects`` by stem, with the time their pass ran."""
    from assets_pkg.lake.ingest import STAGED_REJECTS

    sets: dict[str, dt.datetime] = {}
    for name in lake.list_files(*STAGED_REJECTS, suffix=".rejects.parquet"):
        stem = name[: -len(".rejects.parquet")]
        try:
            sets[stem] = dt.datetime.strptime(stem.split("-", 1)[0], "%Y%m%dT%H%M%S%f")
        except ValueError:
            continue  # not a name an ingest pass writes: leave it alone
    return sets


def do_purge_quarantine(
    settings: Settings, older_than_days: int, dry_run: bool, now: dt.datetime | None = None
) -> PurgeReport:
    """Delete quarantined data older than ``older_than_days`` days; nothing younger.

    Quarantined files and their notes, rows of ``quarantine.rejects`` (one transaction)
    and staged reject sets already published. The manifest (which keeps a purged file
    from being ingested again) and ``archive/`` are never touched.
    """
    from assets_pkg.lake.ingest import STAGED_REJECTS
    from assets_pkg.resources.warehouse import table_exists

    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    cutoff = now - dt.timedelta(days=older_than_days)
    files = _old_quarantine_files(settings, cutoff)
    lake = LakeResource(root=settings.lake_url)
    old_sets = {s: t for s, t in _staged_sets(lake).items() if t < cutoff}
    reject_rows: dict[tuple[str, str], int] = {}
    published: list[str] = []
    if settings.warehouse_path.exists():
        warehouse = WarehouseResource(database=str(settings.warehouse_path))
        with warehouse.get_connection(read_only=dry_run) as conn:
            if table_exists(conn, "quarantine.rejects"):
                reject_rows = {
                    (source, name): n
                    for source, name, n in conn.execute(
                        "SELECT source, file_name, count(*) FROM quarantine.rejects "
                        "WHERE rejected_at < ? GROUP BY ALL ORDER BY ALL",
                        [cutoff],
                    ).fetchall()
                }
                for stem in sorted(old_sets):
                    # published: every row of the set is in the table, as of then or later
                    staged = lake.read(*STAGED_REJECTS, f"{stem}.rejects.parquet")
                    conn.register(
                        "_staged", arrow_view(staged.select("source", "file_name", "row_number"))
                    )
                    missing = conn.execute(
                        "SELECT count(*) FROM _staged s WHERE NOT EXISTS (SELECT 1 FROM "
                        "quarantine.rejects r WHERE r.source = s.source AND "
                        "r.file_name = s.file_name AND r.row_number = s.row_number "
                        "AND r.rejected_at >= ?)",
                        [old_sets[stem]],
                    ).fetchall()[0][0]
                    conn.unregister("_staged")
                    if missing == 0:
                        published.append(stem)
                if reject_rows and not dry_run:
                    run_in_transaction(
                        conn,
                        [("DELETE FROM quarantine.rejects WHERE rejected_at < ?", [cutoff])],
                    )
    if not dry_run:
        for path in files:
            path.unlink(missing_ok=True)
        for stem in published:
            for part in ("rejects", "resolved", "files"):
                lake.delete(*STAGED_REJECTS, f"{stem}.{part}.parquet")
    return PurgeReport(
        files=[p.relative_to(settings.data_dir).as_posix() for p in files],
        reject_rows=reject_rows,
        staged_sets=published,
        staged_kept=sorted(set(old_sets) - set(published)),
    )


def print_purge(report: PurgeReport, older_than_days: int, dry_run: bool) -> None:
    # plain lines, never wrapped: the list of what went is the record an auditor keeps
    verb = "would delete" if dry_run else "deleted"
    for name in report.files:
        click.echo(f"{verb} {name}")
    for (source, name), n in report.reject_rows.items():
        click.echo(f"{verb} {n} row(s) of quarantine.rejects from {source}/{name}")
    for stem in report.staged_sets:
        click.echo(f"{verb} staged reject set {stem}")
    for stem in report.staged_kept:
        click.echo(f"kept staged reject set {stem}: not published yet")
    click.echo(
        f"{verb}: {len(report.files)} quarantine file(s), "
        f"{sum(report.reject_rows.values())} reject row(s), "
        f"{len(report.staged_sets)} staged reject set(s), older than {older_than_days} day(s)"
    )


@cli.command("purge-quarantine")
@click.option(
    "--older-than",
    "older_than",
    required=True,
    type=click.IntRange(min=0),
    help="Delete what was quarantined or rejected more than N days ago.",
)
@click.option("--dry-run", is_flag=True, help="Print what would be deleted; delete nothing.")
@_guard
def purge_quarantine_cmd(older_than: int, dry_run: bool) -> None:
    """Delete quarantined files and reject rows older than N days (they may hold personal data)."""
    report = do_purge_quarantine(_settings(), older_than, dry_run)
    print_purge(report, older_than, dry_run)


# --------------------------------------------------------------------------- repair


#: what a rebuild replaces under ``<lake root>/lake``: the datasets and their bookkeeping,
#: never ``_rejects`` (staged sets not published yet)
REBUILT = ("_index", "_pending")


def do_repair_lake(settings: Settings) -> list[str]:
    """Rebuild the lake datasets from ``archive/`` in one ingest pass, then swap them in.

    The lake is derived data: every file it was built from is archived under its own
    name. The pass runs against a scratch data dir with its own manifest, so the real
    manifest, archive and quarantine are untouched; then each rebuilt dataset replaces
    the old one by rename. Returns the datasets replaced.
    """
    from assets_pkg.contracts import INGEST_ORDER
    from assets_pkg.lake.ingest import IngestPass, ingest_lock
    from assets_pkg.lake.journal import JOURNAL_NAME, recover
    from assets_pkg.lake.manifest import Manifest

    if settings.lake_url.startswith("s3://"):
        raise CommandError("repair-lake rebuilds a local lake only; ASSETS_PKG_LAKE_URL is s3://")
    lake_dir = Path(settings.lake_url) / "lake"
    scratch = settings.data_dir / ".repair-lake"
    with ingest_lock(settings.data_dir):
        # a pass that died is undone or finished first: later, its journal would write
        # bookkeeping of the old lake over the rebuilt one (and a finished pass's files
        # reach the archive, so the rebuild has them)
        recover(
            settings.data_dir / JOURNAL_NAME,
            LakeResource(root=settings.lake_url),
            Manifest(settings.manifest_path),
            lambda msg: print(msg, file=sys.stderr),
        )
        if not settings.archive_dir.is_dir():
            raise CommandError(f"no archive at {settings.archive_dir}: nothing to rebuild from")
        shutil.rmtree(scratch, ignore_errors=True)
        work = dataclasses.replace(
            settings, data_dir=scratch / "data", lake_url=str(scratch / "root")
        )
        for source in INGEST_ORDER:
            archived = settings.archive_dir / source
            if not archived.is_dir():
                continue
            target = work.landing_dir / source
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted(archived.iterdir()):
                if path.is_file() and not path.is_symlink():
                    try:
                        os.link(path, target / path.name)  # the pass moves it; the archive stays
                    except OSError:
                        shutil.copy2(path, target / path.name)
        IngestPass(work, LakeResource(root=work.lake_url)).run()
        rebuilt = scratch / "root" / "lake"
        replaced = []
        for name in (*INGEST_ORDER, *REBUILT):
            new, old = rebuilt / name, lake_dir / name
            if not new.exists() and not old.exists():
                continue
            if old.exists():
                os.replace(old, scratch / f"old-{name}")
            if new.exists():
                os.replace(new, old)
            replaced.append(name)
        shutil.rmtree(scratch, ignore_errors=True)
    return replaced


@cli.command("repair-lake")
@_guard
def repair_lake_cmd() -> None:
    """Rebuild the lake from archive/ (after a corrupt or missing lake file), then re-run days."""
    settings = _settings()
    replaced = do_repair_lake(settings)
    console.print(
        f"lake rebuilt from {settings.archive_dir}: {', '.join(replaced) or 'nothing'}; "
        "now run `assets-pkg backfill` for the failed days",
        highlight=False,
    )


def main() -> None:
    cli(prog_name="assets-pkg")


# imported last: quality.py reads this module's helpers when it runs
from assets_pkg.cli.quality import quality_cmd  # noqa: E402

cli.add_command(quality_cmd)

if __name__ == "__main__":
    main()
