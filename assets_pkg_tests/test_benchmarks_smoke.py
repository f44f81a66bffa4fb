"""The benchmark harness end to end at its smallest size, in a temp dir: no timing asserted.

- ``python -m benchmarks`` lists the backfill benchmark;
- a 3-day, 1-run backfill benchmark runs, compares the per-partition and in-process
  warehouses with the single run's before reporting, and returns every expected field;
- the README block regenerates around hand-written text, and only where it is told to:
  the smoke test and ``--smoke`` leave ``benchmarks/README.md`` alone;
- the ingest-latency benchmark drops a few files into the real daemon on a temp platform
  and reports latency figures and runs, every event counted once.
"""

from __future__ import annotations

import datetime as dt

import pytest

from benchmarks import backfill_runs, common, discover, end_to_end, ingest_latency
from benchmarks.__main__ import build_parser


def test_cli_lists_the_benchmark():
    assert {"backfill_runs", "ingest_latency", "lake_backends", "celery_workers"} <= set(discover())
    assert "backfill_runs" in build_parser().format_help()


def test_smoke_flag_does_not_touch_the_readme():
    args = build_parser().parse_args(["backfill_runs", "--smoke"])
    options = backfill_runs.options_from(args)
    assert (options.days, options.runs) == (20, 3)
    assert args.readme is None and args.smoke  # main() then skips the README


def test_sample_days_spread_over_the_range():
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(365)]
    picked = backfill_runs.sample_days(days, 30)
    assert len(set(picked)) == 30 and picked[0] == days[0] and picked[-1] == days[-1]
    assert backfill_runs.sample_days(days[:3], 30) == days[:3]


@pytest.fixture(scope="module")
def smoke_result(tmp_path_factory):
    readme_before = common.README.read_bytes() if common.README.exists() else None
    options = backfill_runs.Options(
        days=3, runs=1, scale=0.02, workdir=tmp_path_factory.mktemp("bench")
    )
    result = backfill_runs.run(options)
    after = common.README.read_bytes() if common.README.exists() else None
    assert after == readme_before, "run() must never write benchmarks/README.md"
    return result


def test_correctness_was_checked(smoke_result):
    correctness = smoke_result["correctness"]
    assert correctness["checked"] and correctness["equal"]
    assert correctness["variants"] == ["per_partition", "in_process"]
    assert correctness["days"] == 1
    assert set(correctness["tables"]) == {
        *backfill_runs.DATED_TABLES,
        *backfill_runs.FULL_TABLES,
    }
    assert correctness["tables"]["marts.daily_sales"] == 1  # one row per sampled day
    assert correctness["rows_compared"] > 0


def test_result_has_the_expected_fields(smoke_result):
    r = smoke_result
    assert r["config"]["days"] == 3 and r["config"]["runs"] == 1
    assert r["config"]["sampled_days"] == ["2024-01-02"]
    for key in ("wall_s", "peak_rss_bytes", "rows_per_s"):
        assert r["single_run"][key] > 0
    per = r["per_partition"]
    assert len(per["runs"]) == 1 and per["extrapolated"]
    for key in ("wall_s_mean", "wall_s_for_all_days", "peak_rss_bytes", "ratio_to_single"):
        assert per[key] > 0
    assert r["in_process"]["runs_measured"] == 1
    assert r["in_process"]["wall_s_for_all_days"] > 0
    assert set(r["per_run_breakdown"]) == {
        "process_start_and_code_load_s",
        "run_orchestration_and_fixed_work_s",
        "data_work_s",
    }
    # where the time went, from the event logs: one planned event per asset and partition
    single = r["single_run"]
    assert single["events"]["planned"] == 3 * len(single["steps"])
    assert per["events_mean"]["planned"] == len(single["steps"])
    assert single["events"]["run_s"] > 0 and per["events_mean"]["before_start_s"] > 0
    assert r["data"]["fact_rows"] >= r["data"]["fact_rows_sampled_days"] > 0
    machine = r["machine"]
    assert machine["cpus"] >= 1 and machine["versions"]["dagster"]


def test_readme_block_is_regenerated_between_markers(smoke_result, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\nhand-written intro\n")
    common.update_readme("backfill_runs", backfill_runs.readme_block(smoke_result), readme)
    common.update_readme("backfill_runs", backfill_runs.readme_block(smoke_result), readme)
    text = readme.read_text()
    assert text.startswith("# Benchmarks\n\nhand-written intro\n")
    assert text.count("<!-- results:backfill_runs:begin") == 1
    assert text.count("<!-- results:backfill_runs:end -->") == 1
    assert "extrapolated" in text and "| single-run backfill, 3 days |" in text


# --------------------------------------------------------------------------- ingest_latency


def test_ingest_latency_is_listed_and_its_smoke_preset():
    assert "ingest_latency" in discover()
    args = build_parser().parse_args(["ingest_latency", "--smoke"])
    options = ingest_latency.options_from(args)
    assert options.files_for(options.rates[0]) == 6 and not options.settle
    assert args.readme is None and args.smoke  # main() then skips the README
    defaults = ingest_latency.options_from(build_parser().parse_args(["ingest_latency"]))
    assert defaults.rates == (1.0, 5.0) and defaults.intervals == (15,) and defaults.settle
    assert [defaults.files_for(r) for r in defaults.rates] == [60, 300]


def test_ingest_latency_session_files_are_what_the_funnel_expects():
    day = dt.date(2024, 3, 10)
    lines = [line for n in range(7) for line in ingest_latency.session_file(day, n).splitlines()]
    assert len(lines) == ingest_latency.expected_events(7) == 1 + 2 + 3 + 4 + 5 + 1 + 2
    assert ingest_latency.expected_funnel(7) == (7, 5, 3, 2, 1)
    assert ingest_latency.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5


def test_ingest_latency_smoke_counts_every_event_once(tmp_path):
    """The real daemon on a temp platform, a few files at a fast rate: no time asserted."""
    readme_before = common.README.read_bytes() if common.README.exists() else None
    options = ingest_latency.Options(
        rates=(4.0,), files=5, intervals=(1,), settle=False, workdir=tmp_path
    )
    result = ingest_latency.run(options)
    after = common.README.read_bytes() if common.README.exists() else None
    assert after == readme_before, "run() must never write benchmarks/README.md"

    (phase,) = result["phases"]
    assert (phase["rate"], phase["files"], phase["interval_s"]) == (4.0, 5, 1)
    assert set(phase["latency"]) == {"p50", "p95", "max", "min", "mean"}
    assert len(phase["latencies"]) == 5 and all(x > 0 for x in phase["latencies"])
    assert set(phase["breakdown"]) == {"to_tick", "to_start", "to_visible"}
    checks = phase["checks"]
    assert checks["every_event_once"] and checks["manifest_loaded"] == 5
    assert tuple(checks["funnel"]) == ingest_latency.expected_funnel(5)
    assert checks["lake_events"] == ingest_latency.expected_events(5)
    runs = phase["runs"]
    assert 1 <= phase["ingest_runs"]["count"] == runs["by_job"]["ingest_job"] <= 5
    assert runs["total"] >= phase["ingest_runs"]["count"]
    assert runs["statuses"].get("SUCCESS", 0) == runs["total"] - runs["unfinished"]

    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\nhand-written intro\n")
    for _ in range(2):
        common.update_readme("ingest_latency", ingest_latency.readme_block(result), readme)
    text = readme.read_text()
    assert text.startswith("# Benchmarks\n\nhand-written intro\n")
    assert text.count("<!-- results:ingest_latency:begin") == 1
    assert "| 4/s | 5 | 1 s |" in text


# --------------------------------------------------------------------------- check_cost


def test_check_cost_is_listed_and_its_smoke_preset():
    from benchmarks import check_cost

    assert "check_cost" in discover()
    args = build_parser().parse_args(["check_cost", "--smoke"])
    options = check_cost.options_from(args)
    assert (options.short_days, options.long_days) == (10, 20)
    assert args.readme is None and args.smoke  # main() then skips the README
    defaults = check_cost.options_from(build_parser().parse_args(["check_cost"]))
    assert (defaults.short_days, defaults.long_days) == (30, 365)


def test_check_cost_smoke_reports_every_table_and_ratio(tmp_path):
    """Two tiny histories, one day's checks timed on each: rows and ratios, no time asserted."""
    from assets_pkg.marts.assets import MART_TABLES
    from assets_pkg.warehouse.assets import WAREHOUSE_TABLES
    from benchmarks import check_cost

    readme_before = common.README.read_bytes() if common.README.exists() else None
    options = check_cost.Options(
        short_days=4, long_days=8, scale=0.1, repeats=1, run_repeats=1, workdir=tmp_path
    )
    result = check_cost.run(options)
    after = common.README.read_bytes() if common.README.exists() else None
    assert after == readme_before, "run() must never write benchmarks/README.md"

    dated = {s.table for s in [*WAREHOUSE_TABLES, *MART_TABLES] if s.date_column is not None}
    assert set(result["tables"]) == dated
    for table, row in result["tables"].items():
        for part in ("stage", "build", "check"):
            assert row[part]["short_s"] > 0 and row[part]["long_s"] > 0, (table, part)
            assert row[part]["ratio"] > 0
        info = row["info"]
        assert info["short"]["table_days"] <= 4 and info["long"]["table_days"] <= 8
        assert info["long"]["table_rows"] > info["short"]["table_rows"]
        assert info["short"]["results"] > 0 and "completeness" in info["short"]["rules"]
    assert "drift" in result["tables"]["warehouse.fct_orders"]["info"]["long"]["rules"]
    for key in ("all_checks", "one_day_run"):
        assert result[key]["ratio"] > 0
    assert result["control"]["all"]["ratio"] > 0
    assert len(result["one_day_run"]["long_walls_s"]) == 1

    headers, rows = check_cost.table_rows(result)
    assert len(rows) == len(dated) + 3  # the tables, all of them, control, one-day run
    assert all(len(r) == len(headers) for r in rows)
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\nhand-written intro\n")
    for _ in range(2):
        common.update_readme("check_cost", check_cost.readme_block(result), readme)
    text = readme.read_text()
    assert text.startswith("# Benchmarks\n\nhand-written intro\n")
    assert text.count("<!-- results:check_cost:begin") == 1
    assert "| `marts.daily_sales` | 1 / 1 |" in text and "| checks 8/4 |" in text


# --------------------------------------------------------------------------- end_to_end


def test_end_to_end_smoke_preset():
    args = build_parser().parse_args(["end_to_end", "--smoke"])
    options = end_to_end.options_from(args)
    assert options.sizes == (0.005, 0.01) and options.days == 10
    assert args.readme is None and args.smoke
    defaults = end_to_end.options_from(build_parser().parse_args(["end_to_end"]))
    assert defaults.sizes == (0.5, 1.0, 10.0) and defaults.days == 365
    assert (defaults.pandas_max, defaults.project_min) == (0.5, 1.0)
    # the generator's scale for a size: items a day at scale 1 times days times scale
    assert defaults.scale(1.0) * end_to_end.ITEMS_PER_DAY_AT_SCALE_1 * 365 == pytest.approx(1e6)


def test_end_to_end_checks_every_variant_before_timing(tmp_path):
    """Two tiny sizes, as the default three: pandas runs at the first only and is
    extrapolated to the second; the project runs at the second only, so the first's
    pandas marts are checked against the floor's, and the second's floor against the
    project's."""
    readme_before = common.README.read_bytes() if common.README.exists() else None
    options = end_to_end.Options(
        sizes=(0.002, 0.004),
        days=4,
        pandas_max=0.002,
        project_min=0.004,
        project_max=0.004,
        spark=False,
        overheads=False,
        workdir=tmp_path,
    )
    r = end_to_end.run(options)
    assert (common.README.read_bytes() if common.README.exists() else None) == readme_before
    small, big = r["sizes"]
    assert (small["reference"], small["compared"]) == ("floor", ["pandas"])
    assert (big["reference"], big["compared"]) == ("project", ["floor"])
    marts = {"daily_sales", "daily_sales_by_category", "daily_payments", "daily_funnel"}
    assert set(small["mart_rows"]) == set(big["mart_rows"]) == marts
    assert small["variants"]["floor"]["vs_floor"] == 1.0
    # not run below --project-min, and never scaled down to a size it did not run at
    assert "project" not in small["variants"]
    for size, names in ((small, ("floor", "pandas")), (big, ("project", "floor", "pandas"))):
        for name in names:
            v = size["variants"][name]
            assert v["wall_s"] > 0 and v["rows_per_s"] > 0
        assert size["input_rows"] == sum(s["rows"] for s in size["inputs"].values()) > 0
        assert size["inputs"]["order_items"]["rows"] > 0
    assert "extrapolated_from" not in small["variants"]["pandas"]
    pandas = big["variants"]["pandas"]
    assert pandas["extrapolated_from"] == 0.002 and pandas["peak_rss_bytes"] is None
    ratio = big["input_rows"] / small["input_rows"]
    assert pandas["wall_s"] == pytest.approx(small["variants"]["pandas"]["wall_s"] * ratio)
    block = end_to_end.readme_block(r)
    assert "| 0.004M items" in block and "(extrapolated from 0.002M)" in block
    assert "the project did not run at this size" in block
