"""`assets-pkg quality`: the latest result of every asset check, per day, and open rejects.

A ranged (single-run) backfill records one evaluation per check per run, so a quality
check carries its per-day results in its metadata (``day_results``: ISO date, or ``"all"``
for an undated asset, -> ``{"passed", "severity", "message"}``). A check without
``day_results`` (the key checks) applies to every day its run covered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import dagster as dg
from rich.markup import escape
from rich.table import Table

from assets_pkg.config import parse_date

PASSED = "passed"
FAILED = "failed"
NOT_RUN = "not run"

#: the ``day_results`` key of an undated (dimension) asset: its result holds for every day
ALL_DAYS = "all"
#: evaluations read per query while looking for the one that covers a date
PAGE_SIZE = 100
#: failing days listed in a table cell before the rest are counted
SHOWN_DAYS = 5

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"


@dataclass(frozen=True)
class CheckStatus:
    """One check's result: of its latest evaluation, or of one day."""

    asset: str
    check: str
    status: str
    severity: str | None = None
    days_checked: int | None = None
    failing_days: list[str] = field(default_factory=list)
    message: str = ""
    run_id: str | None = None

    @property
    def error_failed(self) -> bool:
        """Whether this result fails the command: an ERROR-severity failure."""
        return self.status == FAILED and self.severity == dg.AssetCheckSeverity.ERROR.value


@dataclass(frozen=True)
class RejectCount:
    """Unresolved rows of ``quarantine.rejects`` for one source and reason."""

    source: str
    reason: str
    count: int


@dataclass(frozen=True)
class QualityReport:
    """Every check of the definitions and the unresolved rejects, for one day or overall."""

    date: dt.date | None
    checks: list[CheckStatus]
    rejects: list[RejectCount]

    @property
    def error_failures(self) -> list[CheckStatus]:
        """The failed ERROR-severity results."""
        return [c for c in self.checks if c.error_failed]


# --------------------------------------------------------------------------- checks


def _evaluations(
    instance: dg.DagsterInstance, key: dg.AssetCheckKey
) -> Iterator[tuple[dg.AssetCheckEvaluation, str]]:
    """Completed evaluations of one check, newest first, with their run id."""
    cursor: int | None = None
    while True:
        records = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=PAGE_SIZE, cursor=cursor
        )
        for record in records:
            # planned rows (one per partition of a ranged run) carry no result: skip them
            # here rather than filter by status, whose enum is not public API
            evaluation = record.evaluation
            if isinstance(evaluation, dg.AssetCheckEvaluation):
                yield evaluation, record.run_id
        if len(records) < PAGE_SIZE:
            return
        cursor = records[-1].id


def _day_results(evaluation: dg.AssetCheckEvaluation) -> dict[str, dict[str, Any]] | None:
    """The evaluation's ``day_results``, or None when it has none (a key check)."""
    value = evaluation.metadata.get("day_results")
    data = value.value if isinstance(value, dg.MetadataValue) else value
    if not isinstance(data, Mapping):
        return None
    return {str(day): dict(result) for day, result in data.items() if isinstance(result, Mapping)}


def _days_checked(evaluation: dg.AssetCheckEvaluation, fallback: int | None) -> int | None:
    value = evaluation.metadata.get("days_checked")
    data = value.value if isinstance(value, dg.MetadataValue) else value
    return data if isinstance(data, int) and not isinstance(data, bool) else fallback


class _RunDays:
    """The days each run covered, from its tags (None: no day tags, or the run is gone)."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self._instance = instance
        self._cache: dict[str, tuple[dt.date, dt.date] | None] = {}

    def span(
        self, evaluation: dg.AssetCheckEvaluation, run_id: str
    ) -> tuple[dt.date, dt.date] | None:
        """First and last day the evaluation applies to; None when the run tells no days."""
        if evaluation.partition:
            day = _as_date(evaluation.partition)
            return (day, day) if day else None
        if run_id not in self._cache:
            run = self._instance.get_run_by_id(run_id)
            self._cache[run_id] = _span_of_tags(run.tags) if run else None
        return self._cache[run_id]


def _as_date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None  # a partition key that is not a day: it covers no date


def _span_of_tags(tags: Mapping[str, str]) -> tuple[dt.date, dt.date] | None:
    start, end = _as_date(tags.get(RANGE_START_TAG)), _as_date(tags.get(RANGE_END_TAG))
    if start and end:
        return start, end
    day = _as_date(tags.get(PARTITION_TAG))
    return (day, day) if day else None


def _latest(
    key: dg.AssetCheckKey,
    evaluation: dg.AssetCheckEvaluation,
    run_id: str,
    runs: _RunDays,
    dated: bool,
) -> CheckStatus:
    """The result of one evaluation over all the days it checked."""
    asset, name = key.asset_key.to_user_string(), key.name
    severity = evaluation.severity.value
    days = _day_results(evaluation)
    if days is None:
        span = runs.span(evaluation, run_id) if dated else None
        return CheckStatus(
            asset,
            name,
            PASSED if evaluation.passed else FAILED,
            severity,
            days_checked=(span[1] - span[0]).days + 1 if span else None,
            message=evaluation.description or "",
            run_id=run_id,
        )
    failing = sorted(day for day, result in days.items() if not result.get("passed", False))
    if failing:
        severities = {str(days[day].get("severity") or severity) for day in failing}
        error = dg.AssetCheckSeverity.ERROR.value
        severity = error if error in severities else dg.AssetCheckSeverity.WARN.value
        first = failing[0]
        message = f"{first}: {days[first].get('message') or ''}".rstrip(": ")
        if len(failing) > 1:
            message += f" (and {len(failing) - 1} more day(s))"
    else:
        message = evaluation.description or ""
    return CheckStatus(
        asset,
        name,
        FAILED if failing or not evaluation.passed else PASSED,
        severity,
        days_checked=_days_checked(evaluation, len(days)),
        failing_days=failing,
        message=message,
        run_id=run_id,
    )


def _on_day(
    key: dg.AssetCheckKey,
    evaluations: Iterator[tuple[dg.AssetCheckEvaluation, str]],
    date: dt.date,
    runs: _RunDays,
    dated: bool,
) -> CheckStatus:
    """The result for ``date`` of the newest evaluation that checked it."""
    asset, name = key.asset_key.to_user_string(), key.name
    wanted = date.isoformat()
    for evaluation, run_id in evaluations:
        days = _day_results(evaluation)
        if days is not None:
            label = wanted if wanted in days else ALL_DAYS if ALL_DAYS in days else None
            if label is None:
                continue
            result = days[label]
            passed = bool(result.get("passed", False))
            return CheckStatus(
                asset,
                name,
                PASSED if passed else FAILED,
                str(result.get("severity") or evaluation.severity.value),
                days_checked=1,
                failing_days=[] if passed else [label],
                message=str(result.get("message") or ""),
                run_id=run_id,
            )
        # a check of an undated asset holds for every day; of a dated one, for its run's days
        # (a run whose days cannot be told, e.g. deleted, covers none)
        if dated:
            span = runs.span(evaluation, run_id)
            if span is None or not span[0] <= date <= span[1]:
                continue
        return CheckStatus(
            asset,
            name,
            PASSED if evaluation.passed else FAILED,
            evaluation.severity.value,
            days_checked=1,
            failing_days=[] if evaluation.passed else [wanted if dated else ALL_DAYS],
            message=evaluation.description or "",
            run_id=run_id,
        )
    return CheckStatus(asset, name, NOT_RUN)


def check_statuses(
    instance: dg.DagsterInstance,
    check_keys: Sequence[dg.AssetCheckKey],
    date: dt.date | None,
    undated: AbstractSet[dg.AssetKey] = frozenset(),
) -> list[CheckStatus]:
    """One result per check: its latest evaluation, or the newest one that checked ``date``."""
    runs = _RunDays(instance)
    statuses = []
    for key in sorted(check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        evaluations = _evaluations(instance, key)
        dated = key.asset_key not in undated
        if date is not None:
            statuses.append(_on_day(key, evaluations, date, runs, dated))
            continue
        latest = next(evaluations, None)
        if latest is None:
            statuses.append(CheckStatus(key.asset_key.to_user_string(), key.name, NOT_RUN))
        else:
            evaluation, run_id = latest
            statuses.append(_latest(key, evaluation, run_id, runs, dated))
    return statuses


# --------------------------------------------------------------------------- rejects


def reject_counts(warehouse_path: str | Path, date: dt.date | None) -> list[RejectCount]:
    """Unresolved rejects by source and reason (of rows for ``date`` when given)."""
    from assets_pkg.resources.warehouse import WarehouseResource, table_exists

    path = Path(warehouse_path)
    if not path.is_file():
        return []  # nothing ingested yet: no rejects, and a read must not create the file
    sql = "SELECT source, reason, count(*) FROM quarantine.rejects WHERE resolved_at IS NULL"
    params: list[Any] = []
    if date is not None:
        sql += " AND partition_date = ?"
        params.append(date)
    sql += " GROUP BY source, reason ORDER BY source, reason"
    warehouse = WarehouseResource(database=str(path), lock_timeout_s=60)
    with warehouse.get_connection(read_only=True) as conn:
        if not table_exists(conn, "quarantine.rejects"):
            return []
        rows = conn.execute(sql, params).fetchall()
    return [RejectCount(source, reason, count) for source, reason, count in rows]


def quality_report(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    warehouse_path: str | Path,
    date: dt.date | None,
) -> QualityReport:
    """Every asset check of ``defs`` (latest result, or ``date``'s) and the open rejects."""
    graph = defs.resolve_asset_graph()
    undated = {key for key in graph.get_all_asset_keys() if not graph.get(key).is_partitioned}
    return QualityReport(
        date=date,
        checks=check_statuses(instance, list(graph.asset_check_keys), date, undated),
        rejects=reject_counts(warehouse_path, date),
    )


# --------------------------------------------------------------------------- command


def _day_list(days: list[str]) -> str:
    more = len(days) - SHOWN_DAYS
    return ", ".join(days[:SHOWN_DAYS]) + (f" (+{more} more)" if more > 0 else "")


def _days_cell(status: CheckStatus) -> str:
    if status.failing_days:
        return f"failing: {_day_list(status.failing_days)}"
    if status.days_checked is not None:
        return f"{status.days_checked} checked"
    return ALL_DAYS if status.status != NOT_RUN else ""


def _status_cell(status: CheckStatus) -> str:
    if status.status == PASSED:
        return f"[green]{PASSED}[/green]"
    if status.status == FAILED:
        colour = "red" if status.error_failed else "yellow"
        return f"[{colour}]{FAILED}[/{colour}]"
    return f"[dim]{NOT_RUN}[/dim]"


def quality_tables(report: QualityReport) -> tuple[Table, Table | None]:
    """The checks table and the rejects table (None when there are no open rejects)."""
    scope = f" on {report.date}" if report.date else " (latest evaluation)"
    checks = Table(title=f"asset checks{scope}")
    for col in ("asset", "check", "status", "severity", "days", "message"):
        # a narrow terminal wraps the cells (fold: never cut short, names are looked up)
        checks.add_column(col, no_wrap=col in ("status", "severity"), overflow="fold")
    for status in report.checks:
        checks.add_row(
            escape(status.asset),
            escape(status.check),
            _status_cell(status),
            status.severity or "",
            escape(_days_cell(status)),
            escape(status.message),
        )
    if not report.rejects:
        return checks, None
    rejects = Table(title=f"unresolved rejects{' on ' + str(report.date) if report.date else ''}")
    for col in ("source", "reason", "rows"):
        rejects.add_column(col, justify="right" if col == "rows" else "left")
    for row in report.rejects:
        rejects.add_row(escape(row.source), escape(row.reason), str(row.count))
    return checks, rejects


def _quality(date: str | None) -> None:
    # imported when run, not at the top: main.py imports this module at its end, so a
    # top-level import of main would be circular (and fail under `python -m`)
    from assets_pkg.cli import main as cli
    from assets_pkg.definitions import build_definitions
    from assets_pkg.instance import ensure_instance

    settings = cli._settings()
    day = parse_date(date, "--date") if date else None
    with ensure_instance(settings) as instance:
        report = quality_report(instance, build_definitions(), settings.warehouse_path, day)
    checks, rejects = quality_tables(report)
    cli.console.print(checks)
    if rejects is None:
        cli.console.print("no unresolved rejects" + (f" on {day}" if day else ""))
    else:
        cli.console.print(rejects)
    failed = report.error_failures
    if failed:
        names = ", ".join(
            f"{c.check} ({_day_list(c.failing_days)})" if c.failing_days and not day else c.check
            for c in failed
        )
        raise cli.CommandError(
            f"{len(failed)} ERROR check(s) failed{f' on {day}' if day else ''}: {names}"
        )


@click.command("quality")
@click.option(
    "--date",
    "date",
    default=None,
    help="Report this day (YYYY-MM-DD); default: the latest evaluation of each check.",
)
def quality_cmd(date: str | None) -> None:
    """Print every asset check's result and the unresolved rejects; fail on ERROR failures."""
    from assets_pkg.cli import main as cli

    cli._guard(_quality)(date)
