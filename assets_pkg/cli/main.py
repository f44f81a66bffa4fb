"""`assets-pkg`: generate sample data, ingest, backfill, and the demo that does all three.

Every command exits 0 on success and 1 with a one-line reason on stderr on failure.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import click
import dagster as dg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from assets_pkg.config import ConfigError, Settings, load_settings, parse_date
from assets_pkg.partitions import range_tags
from assets_pkg.resources.warehouse import WarehouseLockTimeout, WarehouseResource

console = Console(stderr=False)
err = Console(stderr=True)

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class CommandError(Exception):
    """A failure the user can act on; printed as one line."""


@dataclass
class RunOutcome:
    success: bool
    run_id: str
    reason: str


def _failure_reason(result: dg.ExecuteInProcessResult) -> str:
    """The first failed step or blocking check, as one line."""
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            evaluation = getattr(data, "evaluation", data)
            if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
                return (
                    f"check {evaluation.check_name} on {evaluation.asset_key.to_user_string()} "
                    f"failed"
                )
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
    """Run a job of the code location in-process, recorded in the shared instance."""
    from assets_pkg.definitions import build_definitions
    from assets_pkg.instance import ensure_instance, process_tags, reap_dead_runs

    defs = build_definitions()
    job = defs.resolve_job_def(job_name)
    instance = ensure_instance(settings)
    for run in reap_dead_runs(instance):
        err.print(f"marked run {run} failed: its process is gone (slots freed)")
    tags = {**(tags or {}), **process_tags()}
    run_id = str(uuid.uuid4())
    outcome: dict[str, dg.ExecuteInProcessResult | BaseException] = {}

    def target() -> None:
        try:
            outcome["result"] = job.execute_in_process(
                instance=instance,
                run_id=run_id,
                tags=tags,
                run_config=QUIET_LOGS,
                raise_on_error=False,
            )
        except BaseException as exc:  # surfaced below, in the main thread
            outcome["result"] = exc

    worker = threading.Thread(target=target, daemon=True)
    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=len(job.graph.node_dict))
        worker.start()
        while worker.is_alive():
            worker.join(0.5)
            done, current = _step_progress(instance, run_id)
            progress.update(task, completed=done, description=current)
    result = outcome["result"]
    if isinstance(result, BaseException):
        raise result
    return RunOutcome(result.success, run_id, "" if result.success else _failure_reason(result))


def _step_progress(instance: dg.DagsterInstance, run_id: str) -> tuple[int, str]:
    try:
        records = instance.get_records_for_run(
            run_id, of_type={dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_START}
        ).records
    except Exception:
        return 0, ""
    done = sum(1 for r in records if r.event_log_entry.dagster_event_type.value == "STEP_SUCCESS")
    started = [r.event_log_entry.step_key for r in records]
    return done, (started[-1] or "") if started else ""


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


def do_generate(settings: Settings, start: dt.date, days: int, seed: int, scale: float) -> None:
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
            settings.landing_dir, start=start, days=days, seed=seed, scale=scale, progress=report
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
@_guard
def generate_cmd(start: str | None, days: int, seed: int, scale: float) -> None:
    """Write a realistic, deterministic sample of every source into the landing zone."""
    settings = _settings()
    first = parse_date(start, "--start") if start else settings.start_date
    do_generate(settings, first, days, seed, scale)


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


def main() -> None:
    cli(prog_name="assets-pkg")


if __name__ == "__main__":
    main()
