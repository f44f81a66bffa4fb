"""`assets-pkg quality`: check results per day from a real instance, rejects from a real file."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping

import dagster as dg
import duckdb
import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from assets_pkg.checks import key_check_results, key_check_specs
from assets_pkg.cli import main as cli_main
from assets_pkg.cli.quality import FAILED, NOT_RUN, PASSED, RejectCount, quality_report
from assets_pkg.config import Settings
from assets_pkg.instance import ensure_instance
from assets_pkg.lake.ingest import REJECTS_DDL
from assets_pkg.partitions import range_tags, run_days

# the throwaway assets use a single-run backfill policy, which dagster marks beta
pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")

PARTITIONS = dg.DailyPartitionsDefinition(start_date="2024-03-01", end_date="2024-03-11")
ORDERS = dg.AssetKey("stg_orders")
CUSTOMERS = dg.AssetKey("dim_customer")
PAYMENTS = dg.AssetKey("fct_payments")


def _quality_result(
    name: str, key: dg.AssetKey, days: list[str], failing: Mapping[str, str]
) -> dg.AssetCheckResult:
    """A quality check result in the shape the assets emit: one result per day checked."""
    results = {
        day: {
            "passed": day not in failing,
            "severity": failing.get(day, "ERROR"),
            "message": f"{name} off on {day}" if day in failing else "ok",
        }
        for day in days
    }
    severities = set(failing.values())
    return dg.AssetCheckResult(
        check_name=name,
        asset_key=key,
        passed=not failing,
        severity=dg.AssetCheckSeverity.ERROR
        if "ERROR" in severities or not severities
        else dg.AssetCheckSeverity.WARN,
        metadata={"day_results": dg.MetadataValue.json(results), "days_checked": len(results)},
    )


def build_assets(
    failing: Mapping[str, str] | None = None, duplicates: int = 0
) -> list[dg.AssetsDefinition]:
    """Throwaway assets whose quality checks fail on ``failing`` (day -> severity) and key
    checks on ``duplicates``; ``fct_payments`` is never materialized by the tests."""
    failing = dict(failing or {})

    @dg.asset(
        key=ORDERS,
        partitions_def=PARTITIONS,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=[
            dg.AssetCheckSpec("stg_orders__reject_rate", asset=ORDERS),
            *key_check_specs(ORDERS, ["order_id"]),
        ],
    )
    def stg_orders(context) -> Iterator:  # annotated, dagster cannot see the postponed type
        days = [d.isoformat() for d in run_days(context)]
        yield dg.MaterializeResult()
        yield _quality_result(
            "stg_orders__reject_rate", ORDERS, days, {d: s for d, s in failing.items() if d in days}
        )
        yield from key_check_results(ORDERS, ["order_id"], duplicates, 0, 10)

    @dg.asset(
        key=CUSTOMERS,
        check_specs=[
            dg.AssetCheckSpec("dim_customer__scd", asset=CUSTOMERS),
            *key_check_specs(CUSTOMERS, ["customer_id"]),
        ],
    )
    def dim_customer() -> Iterator:
        yield dg.MaterializeResult()
        yield _quality_result("dim_customer__scd", CUSTOMERS, ["all"], {})
        yield from key_check_results(CUSTOMERS, ["customer_id"], 0, 0, 5)

    @dg.asset(
        key=PAYMENTS,
        partitions_def=PARTITIONS,
        check_specs=[dg.AssetCheckSpec("fct_payments__drift", asset=PAYMENTS)],
    )
    def fct_payments() -> Iterator:
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(check_name="fct_payments__drift", passed=True)

    return [stg_orders, dim_customer, fct_payments]


def test_defs() -> dg.Definitions:
    return dg.Definitions(assets=build_assets())


test_defs.__test__ = False  # a helper, not a test


@pytest.fixture
def instance(settings: Settings) -> Iterator[dg.DagsterInstance]:
    """The instance the command opens: the temp DAGSTER_HOME of the settings fixture."""
    with ensure_instance(settings) as instance:
        yield instance


def run_orders(
    instance: dg.DagsterInstance,
    start: str,
    end: str | None = None,
    failing: Mapping[str, str] | None = None,
    duplicates: int = 0,
) -> str:
    """One run of ``stg_orders`` over start..end (ranged), or over ``start`` alone."""
    assets = build_assets(failing, duplicates)
    if end is None:
        result = dg.materialize(
            assets, instance=instance, selection=[ORDERS], partition_key=start, raise_on_error=False
        )
    else:
        tags = range_tags(dt.date.fromisoformat(start), dt.date.fromisoformat(end))
        # a failing blocking key check fails the step; its evaluation is recorded all the same
        result = dg.materialize(
            assets, instance=instance, selection=[ORDERS], tags=tags, raise_on_error=False
        )
    return result.run_id


def run_customers(instance: dg.DagsterInstance) -> str:
    return dg.materialize(build_assets(), instance=instance, selection=[CUSTOMERS]).run_id


def quality(monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    """`assets-pkg quality ARGS` in-process, against the test's definitions."""
    monkeypatch.setattr("assets_pkg.definitions.build_definitions", test_defs)
    # wide enough that no cell is cut: the tests look for names and days in the output
    monkeypatch.setattr(cli_main, "console", Console(width=250))
    return CliRunner().invoke(cli_main.cli, ["quality", *args], catch_exceptions=False)


def by_check(report) -> dict:
    return {c.check: c for c in report.checks}


def on_day(instance: dg.DagsterInstance, settings: Settings, day: dt.date):
    return quality_report(instance, test_defs(), settings.warehouse_path, day)


def test_all_passing_exits_zero_and_lists_every_check(settings, instance, monkeypatch):
    run_orders(instance, "2024-03-01", "2024-03-03")
    run_customers(instance)

    result = quality(monkeypatch)

    assert result.exit_code == 0, result.output + result.stderr
    for name in (
        "stg_orders__reject_rate",
        "stg_orders__unique_key",
        "stg_orders__not_null_key",
        "dim_customer__scd",
        "dim_customer__unique_key",
        "dim_customer__not_null_key",
        "fct_payments__drift",
    ):
        assert name in result.output
    lines = {line.split("│")[2].strip(): line for line in result.output.splitlines() if "│" in line}
    assert "passed" in lines["stg_orders__reject_rate"]
    assert "3 checked" in lines["stg_orders__reject_rate"]
    assert "3 checked" in lines["stg_orders__unique_key"]  # the days of its run
    assert "passed" in lines["dim_customer__scd"]
    assert "not run" in lines["fct_payments__drift"]  # never evaluated
    assert "no unresolved rejects" in result.output  # and no warehouse file: not a crash
    assert not settings.warehouse_path.exists()

    report = quality_report(instance, test_defs(), settings.warehouse_path, None)
    statuses = {c.check: c.status for c in report.checks}
    assert statuses == {
        "stg_orders__reject_rate": PASSED,
        "stg_orders__unique_key": PASSED,
        "stg_orders__not_null_key": PASSED,
        "dim_customer__scd": PASSED,
        "dim_customer__unique_key": PASSED,
        "dim_customer__not_null_key": PASSED,
        "fct_payments__drift": NOT_RUN,
    }
    assert report.error_failures == []


def test_error_day_failure_exits_non_zero_naming_the_check(settings, instance, monkeypatch):
    run_orders(
        instance, "2024-03-01", "2024-03-04", failing={"2024-03-02": "ERROR", "2024-03-03": "WARN"}
    )

    result = quality(monkeypatch)

    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert "stg_orders__reject_rate" in lines[0]
    assert "2024-03-02" in lines[0]
    assert "failing: 2024-03-02, 2024-03-03" in result.output

    check = by_check(quality_report(instance, test_defs(), settings.warehouse_path, None))[
        "stg_orders__reject_rate"
    ]
    assert (check.status, check.severity, check.days_checked) == (FAILED, "ERROR", 4)
    assert check.failing_days == ["2024-03-02", "2024-03-03"]
    assert "2024-03-02" in check.message


def test_warn_failure_prints_but_exits_zero(settings, instance, monkeypatch):
    run_orders(instance, "2024-03-01", "2024-03-03", failing={"2024-03-03": "WARN"})

    result = quality(monkeypatch)

    assert result.exit_code == 0, result.stderr
    row = next(line for line in result.output.splitlines() if "stg_orders__reject_rate" in line)
    assert "failed" in row and "WARN" in row and "2024-03-03" in row

    result = quality(monkeypatch, "--date", "2024-03-03")
    assert result.exit_code == 0, result.stderr
    assert "stg_orders__reject_rate off on 2024-03-03" in result.output


def test_date_picks_the_newest_evaluation_covering_it(settings, instance, monkeypatch):
    old = run_orders(
        instance, "2024-03-01", "2024-03-03", failing={"2024-03-02": "ERROR"}, duplicates=1
    )
    new = run_orders(instance, "2024-03-04", "2024-03-05")
    run_customers(instance)

    # overall, the latest evaluations passed
    assert quality(monkeypatch).exit_code == 0

    # 2024-03-02 is only in the older run: its failures are that day's result
    day = dt.date(2024, 3, 2)
    checks = by_check(on_day(instance, settings, day))
    assert checks["stg_orders__reject_rate"].status == FAILED
    assert checks["stg_orders__reject_rate"].run_id == old
    assert checks["stg_orders__reject_rate"].message == "stg_orders__reject_rate off on 2024-03-02"
    assert checks["stg_orders__unique_key"].status == FAILED  # key check: covered by its run
    assert checks["stg_orders__unique_key"].run_id == old
    assert checks["stg_orders__not_null_key"].status == PASSED
    assert checks["dim_customer__scd"].status == PASSED  # undated: holds for every day
    assert checks["dim_customer__unique_key"].status == PASSED
    assert checks["fct_payments__drift"].status == NOT_RUN

    result = quality(monkeypatch, "--date", "2024-03-02")
    assert result.exit_code == 1
    assert "stg_orders__reject_rate" in result.stderr
    assert "stg_orders__unique_key" in result.stderr
    assert "on 2024-03-02" in result.stderr

    # 2024-03-01 is in the older run too, but passed there
    checks = by_check(on_day(instance, settings, day.replace(day=1)))
    assert checks["stg_orders__reject_rate"].status == PASSED
    assert checks["stg_orders__unique_key"].status == FAILED

    # 2024-03-04 is in the newer run only
    checks = by_check(on_day(instance, settings, day.replace(day=4)))
    assert {c.run_id for n, c in checks.items() if n.startswith("stg_orders")} == {new}
    assert all(c.status == PASSED for n, c in checks.items() if n.startswith("stg_orders"))
    assert quality(monkeypatch, "--date", "2024-03-04").exit_code == 0

    # a day no run covered: the dated checks did not run; the undated ones still hold
    checks = by_check(on_day(instance, settings, day.replace(day=9)))
    assert checks["stg_orders__reject_rate"].status == NOT_RUN
    assert checks["stg_orders__unique_key"].status == NOT_RUN
    assert checks["dim_customer__scd"].status == PASSED
    result = quality(monkeypatch, "--date", "2024-03-09")
    assert result.exit_code == 0
    assert "not run" in result.output

    # a single-partition run (tag dagster/partition) covers its own day
    single = run_orders(instance, "2024-03-07", duplicates=1)
    checks = by_check(on_day(instance, settings, day.replace(day=7)))
    assert checks["stg_orders__unique_key"].status == FAILED
    assert checks["stg_orders__unique_key"].run_id == single
    checks = by_check(on_day(instance, settings, day.replace(day=4)))
    assert checks["stg_orders__unique_key"].run_id == new


def _plant_rejects(settings: Settings, rows: list[tuple]) -> None:
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS quarantine")
        conn.execute(REJECTS_DDL)
        for i, (source, reason, day, resolved) in enumerate(rows):
            conn.execute(
                "INSERT INTO quarantine.rejects (source, file_name, row_number, reason, "
                "partition_date, ingest_id, rejected_at, resolved_at) "
                "VALUES (?, 'f.csv', ?, ?, ?, 'i1', TIMESTAMP '2024-03-12 00:00:00', ?)",
                [source, i, reason, day, resolved],
            )


def test_reject_counts_by_source_and_reason_filtered_by_date(settings, instance, monkeypatch):
    march = dt.date(2024, 3, 1)
    resolved = dt.datetime(2024, 3, 12, 1)
    _plant_rejects(
        settings,
        [
            ("orders", "bad_date", march, None),
            ("orders", "bad_date", march, None),
            ("orders", "bad_date", march.replace(day=2), None),
            ("orders", "orphan_item", march.replace(day=2), resolved),  # resolved: not counted
            ("payments", "negative_amount", march.replace(day=2), None),
            ("payments", "unparseable", None, None),  # no day: counted overall only
        ],
    )

    report = quality_report(instance, test_defs(), settings.warehouse_path, None)
    assert report.rejects == [
        RejectCount("orders", "bad_date", 3),
        RejectCount("payments", "negative_amount", 1),
        RejectCount("payments", "unparseable", 1),
    ]
    report = quality_report(instance, test_defs(), settings.warehouse_path, march.replace(day=2))
    assert report.rejects == [
        RejectCount("orders", "bad_date", 1),
        RejectCount("payments", "negative_amount", 1),
    ]

    result = quality(monkeypatch, "--date", "2024-03-01")
    assert result.exit_code == 0, result.stderr
    row = next(line for line in result.output.splitlines() if "bad_date" in line)
    assert "orders" in row and row.rstrip(" │").endswith("2")
    assert "negative_amount" not in result.output


def test_warehouse_without_rejects_table_counts_none(settings, instance):
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    duckdb.connect(str(settings.warehouse_path)).close()
    assert quality_report(instance, test_defs(), settings.warehouse_path, None).rejects == []


def test_command_runs_on_the_project_definitions(settings, tmp_path):
    # `python -m` loads main.py as __main__: the command must register and run there too
    result = subprocess.run(
        [sys.executable, "-m", "assets_pkg.cli.main", "quality", "--date", "2024-03-02"],
        env={**os.environ, "COLUMNS": "250"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "__unique_key" in result.stdout
    assert "not run" in result.stdout
    assert "passed" not in result.stdout  # a fresh instance has evaluated nothing
