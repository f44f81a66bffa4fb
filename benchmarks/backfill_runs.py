"""Backfill of a year of daily partitions: one single-run backfill vs per-partition runs.

Generates DAYS days of sample data at --scale in a temp dir, ingests it once and snapshots
the platform (lake, manifest, warehouse, Dagster instance). Then, each on its own copy of
the snapshot:

  single run     `assets-pkg backfill --start --end` over all DAYS days: one run, one
                 process (what the CLI, `--partition-range` and the UI do with the
                 project's single-run backfill policies);
  per-partition  RUNS one-partition runs, each its own process, the way a per-partition
                 backfill launches them: `dagster asset materialize -m assets_pkg.definitions
                 --select <daily_pipeline's selection> --partition D`; timed, and
                 EXTRAPOLATED to DAYS runs (mean per run x DAYS);
  in-process     (unless --no-in-process) the same RUNS one-partition runs as
                 `execute_in_process` calls in one Python process: separates process
                 start-up and code loading from per-run orchestration.

Before any time is reported, the marts and facts of the RUNS days from the per-partition
(and in-process) runs are compared row for row with the single run's, dimensions in full.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import time
from pathlib import Path
from typing import Any

from benchmarks import common

NAME = "backfill_runs"
DEFAULT_START = dt.date(2024, 1, 1)

#: tables compared for the sampled days, with their date column
DATED_TABLES = {
    "marts.daily_sales": "order_date",
    "marts.daily_sales_by_category": "date",
    "marts.daily_payments": "paid_date",
    "marts.daily_funnel": "date",
    "warehouse.fct_orders": "order_date",
    "warehouse.fct_order_items": "order_date",
    "warehouse.fct_payments": "paid_date",
    "warehouse.fct_sessions": "session_date",
}
#: compared in full (a one-partition run rebuilds them too)
FULL_TABLES = ("warehouse.dim_customer", "warehouse.dim_product")
FACT_TABLES = tuple(t for t in DATED_TABLES if t.startswith("warehouse.fct_"))
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
DAILY_PIPELINE = "daily_pipeline"  # the job `assets-pkg backfill` runs (assets_pkg.jobs)
ASSET_JOB = "__ASSET_JOB"  # Dagster's implicit job, which `dagster asset materialize` runs


@dataclasses.dataclass(frozen=True)
class Options:
    days: int = 365
    runs: int = 30
    scale: float = 1.0
    seed: int = 7
    start: dt.date = DEFAULT_START
    in_process: bool = True
    workdir: Path | None = None
    keep: bool = False
    timeout_s: float | None = common.DEFAULT_TIMEOUT_S

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days - 1)

    @property
    def sample_size(self) -> int:
        return min(self.runs, self.days)


SMOKE = {"days": 20, "runs": 3, "scale": 0.05}


def sample_days(days: list[dt.date], n: int) -> list[dt.date]:
    """``n`` distinct days spread evenly over ``days``, first and last included."""
    if n >= len(days):
        return list(days)
    if n == 1:
        return [days[len(days) // 2]]
    return [days[round(i * (len(days) - 1) / (n - 1))] for i in range(n)]


def run_events(
    root: Path, platforms: dict[str, tuple[common.Platform, str]]
) -> dict[str, list[dict[str, Any]]]:
    """Where the time of each run went, per platform, from the event logs (one child)."""
    anchor = next(iter(platforms.values()))[0]
    payload = {
        "instances": {name: [str(pf.dagster_home), job] for name, (pf, job) in platforms.items()}
    }
    _, summary = common.python_call(
        "benchmarks.common:run_event_summary",
        payload,
        env=anchor.env(),
        cwd=root,
        log=root / "logs" / "events.log",
        label="event logs",
    )
    for name, (pf, job) in platforms.items():
        if not summary.get(name):
            raise common.BenchmarkError(f"no {job} run recorded in {pf.dagster_home}")
    return summary


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _event_means(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        key: _mean([r[key] for r in runs])
        for key in ("events", "planned", "materialized", "before_start_s", "run_s")
    }


def pipeline_selection() -> str:
    """The asset selection of ``daily_pipeline``, the job ``assets-pkg backfill`` runs."""
    from assets_pkg.jobs import LAYERS

    return " or ".join(f"group:{layer}" for layer in LAYERS)


# --------------------------------------------------------------------------- child side


def in_process_runs(payload: dict[str, Any]) -> dict[str, Any]:
    """Child: one-partition runs of ``daily_pipeline`` via ``execute_in_process``, one process."""
    import resource
    import warnings

    started = time.perf_counter()
    import dagster as dg

    warnings.simplefilter("ignore", dg.BetaWarning)
    from assets_pkg.config import load_settings
    from assets_pkg.definitions import build_definitions
    from assets_pkg.instance import ensure_instance, process_tags
    from assets_pkg.jobs import DAILY_PIPELINE

    job = build_definitions().resolve_job_def(DAILY_PIPELINE)
    instance = ensure_instance(load_settings())
    loaded = time.perf_counter() - started
    runs = []
    for day in payload["days"]:
        t0 = time.perf_counter()
        result = job.execute_in_process(
            instance=instance,
            partition_key=day,
            run_config=QUIET_LOGS,
            tags=process_tags(),
            raise_on_error=False,
        )
        wall = time.perf_counter() - t0
        if not result.success:
            raise RuntimeError(f"in-process run for {day} failed (run {result.run_id})")
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        runs.append({"day": day, "wall_s": wall, "maxrss_kib": maxrss})
    return {"load_s": loaded, "runs": runs}


# --------------------------------------------------------------------------- comparing


def _rows(conn, table: str, days: list[dt.date] | None) -> list[tuple]:
    if days is None:
        return conn.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
    col = DATED_TABLES[table]
    return conn.execute(
        f"SELECT * FROM {table} WHERE list_contains(?::DATE[], {col}) ORDER BY ALL", [days]
    ).fetchall()


def compare_warehouses(expected: Path, actual: Path, days: list[dt.date]) -> dict[str, int]:
    """Rows per table that agree; raises BenchmarkError naming the first table that differs."""
    import duckdb

    compared: dict[str, int] = {}
    with (
        duckdb.connect(str(expected), read_only=True) as want,
        duckdb.connect(str(actual), read_only=True) as got,
    ):
        for table in [*DATED_TABLES, *FULL_TABLES]:
            scope = None if table in FULL_TABLES else days
            a, b = _rows(want, table, scope), _rows(got, table, scope)
            if a != b:
                missing = [r for r in a if r not in set(b)][:3]
                extra = [r for r in b if r not in set(a)][:3]
                raise common.BenchmarkError(
                    f"{table} differs between {expected} ({len(a)} rows) and {actual} "
                    f"({len(b)} rows) for the sampled days: only in the single run {missing}, "
                    f"only in the other {extra}"
                )
            compared[table] = len(a)
    empty = [t for t in DATED_TABLES if t.startswith("marts.") and compared[t] == 0]
    if empty:
        raise common.BenchmarkError(f"nothing to compare: {', '.join(empty)} empty for those days")
    return compared


def count_rows(warehouse: Path, tables: tuple[str, ...], days: list[dt.date] | None) -> int:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        total = 0
        for table in tables:
            where = (
                "" if days is None else f" WHERE list_contains(?::DATE[], {DATED_TABLES[table]})"
            )
            params = [] if days is None else [days]
            total += conn.execute(f"SELECT count(*) FROM {table}{where}", params).fetchone()[0]
    return total


# --------------------------------------------------------------------------- the benchmark


def run(options: Options, say: common.Say = lambda _: None) -> dict[str, Any]:
    """Run the benchmark; returns the JSON-able result (times only if the check passed)."""
    if options.days < 2 or options.runs < 1 or options.scale <= 0:
        raise common.BenchmarkError("need --days >= 2, --runs >= 1 and --scale > 0")
    machine = common.machine_info()
    began = time.perf_counter()
    selection = pipeline_selection()
    start, end = options.start.isoformat(), options.end.isoformat()
    with common.temp_root(options.workdir, options.keep, say) as root:
        code = common.freeze_code(root / "code")
        machine["code"]["digest"] = common.code_digest(code)
        base = common.Platform.create(root / "base", options.start, options.end, code)
        days = base.days
        sampled = sample_days(days, options.sample_size)
        t = options.timeout_s

        say(f"generating {options.days} days at --scale {options.scale} in {root}")
        generate = base.run(
            common.assets_pkg_cmd(
                "generate", "--start", start, "--days", str(options.days),
                "--seed", str(options.seed), "--scale", str(options.scale),
            ),
            "generate", "assets-pkg generate", timeout_s=t,
        )  # fmt: skip
        say(f"ingesting ({common.fmt_s(generate.wall_s)} to generate)")
        ingest = base.run(
            common.assets_pkg_cmd("ingest"), "ingest", "assets-pkg ingest", timeout_s=t
        )
        snapshot = base.clone(root / "snapshot")
        snapshot_bytes = common.dir_size(snapshot.data_dir)
        say(
            f"snapshot taken ({common.fmt_bytes(snapshot_bytes)}; "
            f"ingest {common.fmt_s(ingest.wall_s)})"
        )

        # (a) one single-run backfill over every day
        single = snapshot.clone(root / "single")
        say(f"single-run backfill {start}..{end}")
        single_m = single.run(
            common.assets_pkg_cmd("backfill", "--start", start, "--end", end),
            "backfill", f"assets-pkg backfill --start {start} --end {end}", timeout_s=t,
        )  # fmt: skip
        say(f"  {common.fmt_s(single_m.wall_s)}, peak {common.fmt_bytes(single_m.peak_rss_bytes)}")

        # (b) per-partition runs, one process each
        per = snapshot.clone(root / "per_partition")
        per_runs: list[common.Measurement] = []
        for i, day in enumerate(sampled, 1):
            m = per.run(
                common.dagster_cmd(
                    "asset", "materialize", "-m", "assets_pkg.definitions",
                    "--select", selection, "--partition", day.isoformat(),
                ),
                f"partition_{day}", f"dagster asset materialize --partition {day}", timeout_s=t,
            )  # fmt: skip
            if "RUN_SUCCESS" not in Path(m.log).read_text(errors="replace"):
                raise common.BenchmarkError(f"{m.label}: exit 0 but no RUN_SUCCESS in {m.log}")
            per_runs.append(m)
            say(f"  per-partition run {i}/{len(sampled)} {day}: {common.fmt_s(m.wall_s)}")

        # (c) the same runs in one warm process
        inproc_m = inproc = None
        if options.in_process:
            ip = snapshot.clone(root / "in_process")
            say(f"{len(sampled)} in-process runs in one process")
            inproc_m, inproc = ip.call(
                f"{__name__}:in_process_runs",
                {"days": [d.isoformat() for d in sampled]},
                "in_process", "execute_in_process x N", timeout_s=t,
            )  # fmt: skip

        # correctness first: only then are times reported
        say("comparing marts and facts of the sampled days with the single run")
        compared = compare_warehouses(single.warehouse, per.warehouse, sampled)
        variants = ["per_partition"]
        if options.in_process:
            compare_warehouses(single.warehouse, ip.warehouse, sampled)
            variants.append("in_process")
        correctness = {
            "checked": True,
            "equal": True,
            "variants": variants,
            "days": len(sampled),
            "tables": compared,
            "rows_compared": sum(compared.values()),
        }
        fact_rows = count_rows(single.warehouse, FACT_TABLES, None)
        fact_rows_sampled = count_rows(single.warehouse, FACT_TABLES, sampled)
        order_items = count_rows(single.warehouse, ("warehouse.fct_order_items",), None)

        say("reading the runs' event logs")
        logs = {"single": (single, DAILY_PIPELINE), "per": (per, ASSET_JOB)}
        if options.in_process:
            logs["in_process"] = (ip, DAILY_PIPELINE)
        events = run_events(root, logs)

    result = summarize(
        options,
        machine=machine,
        selection=selection,
        sampled=sampled,
        generate=generate,
        ingest=ingest,
        snapshot_bytes=snapshot_bytes,
        single=single_m,
        per_runs=per_runs,
        inproc_m=inproc_m,
        inproc=inproc,
        correctness=correctness,
        fact_rows=fact_rows,
        fact_rows_sampled=fact_rows_sampled,
        order_items=order_items,
        events=events,
    )
    result["total_wall_s"] = time.perf_counter() - began
    result["machine"]["load_avg_end"] = common.load_avg()
    return result


def summarize(
    options: Options,
    *,
    machine: dict[str, Any],
    selection: str,
    sampled: list[dt.date],
    generate: common.Measurement,
    ingest: common.Measurement,
    snapshot_bytes: int,
    single: common.Measurement,
    per_runs: list[common.Measurement],
    inproc_m: common.Measurement | None,
    inproc: dict[str, Any] | None,
    correctness: dict[str, Any],
    fact_rows: int,
    fact_rows_sampled: int,
    order_items: int,
    events: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    days, n = options.days, len(sampled)
    extrapolated = n < days
    walls = [m.wall_s for m in per_runs]
    per_total = sum(walls)
    per_mean = per_total / n
    per_extra = per_mean * days
    single_per_day = single.wall_s / days
    result: dict[str, Any] = {
        "benchmark": NAME,
        "config": {
            "days": days,
            "runs": n,
            "scale": options.scale,
            "seed": options.seed,
            "start": options.start.isoformat(),
            "end": options.end.isoformat(),
            "selection": selection,
            "per_partition_command": (
                f"dagster asset materialize -m assets_pkg.definitions --select '{selection}' "
                "--partition D"
            ),
            "sampled_days": [d.isoformat() for d in sampled],
        },
        "setup": {
            "generate": generate.as_dict(),
            "ingest": ingest.as_dict(),
            "snapshot_bytes": snapshot_bytes,
        },
        "data": {
            "order_items": order_items,
            "fact_rows": fact_rows,
            "fact_rows_sampled_days": fact_rows_sampled,
        },
        "correctness": correctness,
        "single_run": {
            "days": days,
            "wall_s": single.wall_s,
            "wall_s_per_day": single_per_day,
            "peak_rss_bytes": single.peak_rss_bytes,
            "rows_per_s": fact_rows / single.wall_s,
            "events": (single_ev := _event_means(events["single"][-1:])),
            "steps": events["single"][-1]["steps"],
            "outside_run_s": single.wall_s - single_ev["before_start_s"] - single_ev["run_s"],
        },
        "per_partition": {
            "runs_measured": n,
            "wall_s_measured": per_total,
            "wall_s_mean": per_mean,
            "wall_s_min": min(walls),
            "wall_s_max": max(walls),
            "peak_rss_bytes": max(m.peak_rss_bytes for m in per_runs),
            "rows_per_s": fact_rows_sampled / per_total,
            "events_mean": (per_ev := _event_means(events["per"])),
            "outside_run_s_mean": per_mean - per_ev["before_start_s"] - per_ev["run_s"],
            "extrapolated": extrapolated,
            "wall_s_for_all_days": per_extra,
            "ratio_to_single": per_extra / single.wall_s,
            "runs": [
                m.as_dict() | {"day": d.isoformat()} for m, d in zip(per_runs, sampled, strict=True)
            ],
        },
        "in_process": None,
        "machine": machine,
    }
    if inproc_m is not None and inproc is not None:
        run_walls = [r["wall_s"] for r in inproc["runs"]]
        mean = sum(run_walls) / n
        fixed = inproc_m.wall_s - sum(run_walls)  # interpreter, imports, code load, exit
        total = fixed + mean * days
        result["in_process"] = {
            "runs_measured": n,
            "process_wall_s": inproc_m.wall_s,
            "startup_s": fixed,
            "load_s": inproc["load_s"],
            "wall_s_mean": mean,
            "wall_s_first": run_walls[0],
            "peak_rss_bytes": inproc_m.peak_rss_bytes,
            "rss_after_first_run_bytes": inproc["runs"][0]["maxrss_kib"] * 1024,
            "rss_after_last_run_bytes": inproc["runs"][-1]["maxrss_kib"] * 1024,
            "rows_per_s": fact_rows_sampled / inproc_m.wall_s,
            "events_mean": _event_means(events["in_process"]),
            "extrapolated": extrapolated,
            "wall_s_for_all_days": total,
            "ratio_to_single": total / single.wall_s,
        }
        result["per_run_breakdown"] = {
            "process_start_and_code_load_s": per_mean - mean,
            "run_orchestration_and_fixed_work_s": mean - single_per_day,
            "data_work_s": single_per_day,
        }
    return result


# --------------------------------------------------------------------------- reporting


def table_rows(r: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows shared by the console table and the README (markdown emphasis)."""
    c, s, p, ip = r["config"], r["single_run"], r["per_partition"], r["in_process"]
    days, n = c["days"], c["runs"]
    to_all = f"extrapolated to {days}" if p["extrapolated"] else f"all {days}"
    headers = ["variant", "runs", "wall time", "per day", "fact rows/s", "peak RSS", "vs single"]
    rows = [
        [
            f"single-run backfill, {days} days",
            "1",
            common.fmt_s(s["wall_s"]),
            common.fmt_s(s["wall_s_per_day"]),
            common.fmt_rate(s["rows_per_s"]),
            common.fmt_bytes(s["peak_rss_bytes"]),
            "1.00×",
        ],
        [
            "per-partition runs, measured",
            str(n),
            common.fmt_s(p["wall_s_measured"]),
            common.fmt_s(p["wall_s_mean"]),
            common.fmt_rate(p["rows_per_s"]),
            common.fmt_bytes(p["peak_rss_bytes"]),
            "",
        ],
        [
            f"**per-partition runs, {to_all}**",
            str(days),
            f"**{common.fmt_s(p['wall_s_for_all_days'])}**",
            common.fmt_s(p["wall_s_mean"]),
            common.fmt_rate(p["rows_per_s"]),
            common.fmt_bytes(p["peak_rss_bytes"]),
            f"**{common.fmt_ratio(p['ratio_to_single'])}**",
        ],
    ]
    if ip:
        rows += [
            [
                "in-process runs, measured",
                str(n),
                common.fmt_s(ip["process_wall_s"]),
                common.fmt_s(ip["wall_s_mean"]),
                common.fmt_rate(ip["rows_per_s"]),
                common.fmt_bytes(ip["peak_rss_bytes"]),
                "",
            ],
            [
                f"in-process runs, {to_all}",
                str(days),
                common.fmt_s(ip["wall_s_for_all_days"]),
                common.fmt_s(ip["wall_s_mean"]),
                common.fmt_rate(ip["rows_per_s"]),
                common.fmt_bytes(ip["peak_rss_bytes"]),
                common.fmt_ratio(ip["ratio_to_single"]),
            ],
        ]
    return headers, rows


RIGHT = {1, 2, 3, 4, 5, 6}


def notes(r: dict[str, Any]) -> list[str]:
    """The paragraphs under the table: how each row was measured, and the check."""
    c, p, ip, corr = r["config"], r["per_partition"], r["in_process"], r["correctness"]
    days, n = c["days"], c["runs"]
    out = [
        f"*Single run*: `assets-pkg backfill --start {c['start']} --end {c['end']}`, one "
        f"process, one run of `daily_pipeline` over the range. *Per-partition runs*: {n} "
        f"separate processes, each `{c['per_partition_command']}`, on days spread evenly over "
        f"the range (min {p['wall_s_min']:.2f} s, max {p['wall_s_max']:.2f} s per run), on "
        f"their own copy of the ingested snapshot."
    ]
    if p["extrapolated"]:
        out.append(
            f"**The per-partition figures for {days} days are extrapolated** from the {n} "
            f"measured runs (mean per run × {days}); they are not a measured {days}-run "
            "backfill. Peak RSS is the largest of the measured runs."
        )
    if ip:
        out.append(
            f"*In-process runs*: the same {n} one-partition runs as `execute_in_process` calls "
            f"in one Python process; its start-up (interpreter, imports, definitions, "
            f"instance, exit) took {ip['startup_s']:.2f} s once, and is counted once in the "
            f"extrapolation (start-up + mean × {days}). Its peak RSS after the first run was "
            f"{common.fmt_bytes(ip['rss_after_first_run_bytes'])}, after the last "
            f"{common.fmt_bytes(ip['rss_after_last_run_bytes'])}."
        )
    se, pe = r["single_run"]["events"], p["events_mean"]
    out.append(
        f"Where the single run's {common.fmt_s(r['single_run']['wall_s'])} go: "
        f"{common.fmt_s(se['before_start_s'])} before the run starts, while Dagster writes "
        f"{se['planned']:,.0f} planned-materialization events (one per asset and partition) "
        f"to the SQLite event log; {common.fmt_s(se['run_s'])} in the steps, which also "
        f"record {se['materialized']:,.0f} per-partition materializations; "
        f"{common.fmt_s(r['single_run']['outside_run_s'])} process start-up, code load and "
        "exit."
    )
    warm = ""
    if ip:
        ie = ip["events_mean"]
        warm = (
            f" In one warm process the same run costs {common.fmt_s(ip['wall_s_mean'])} "
            f"({common.fmt_s(ie['before_start_s'])} before the start, "
            f"{common.fmt_s(ie['run_s'])} of steps)."
        )
    out.append(
        f"Where a one-partition run's {common.fmt_s(p['wall_s_mean'])} go (means): "
        f"{common.fmt_s(p['outside_run_s_mean'])} outside the run (process start-up, imports, "
        f"code load, CLI, exit); {common.fmt_s(pe['before_start_s'])} before it starts "
        f"({pe['planned']:.0f} planned events); {common.fmt_s(pe['run_s'])} in its "
        f"{len(r['single_run']['steps'])} steps, the dimensions rebuilt included.{warm} The "
        f"day's share of the single run is {common.fmt_s(r['single_run']['wall_s_per_day'])}."
    )
    out.append(
        f"Checked before any time was reported: the marts and facts of the {corr['days']} "
        f"sampled days from the {' and '.join(v.replace('_', '-') for v in corr['variants'])} "
        f"runs equal the single run's row for row, and so do the dimensions in full "
        f"({corr['rows_compared']:,} rows in {len(corr['tables'])} tables)."
    )
    return out


def readme_block(r: dict[str, Any]) -> str:
    c, d, setup = r["config"], r["data"], r["setup"]
    headers, rows = table_rows(r)
    paragraphs = [
        common.machine_line(r["machine"]),
        f"Data: {c['days']} days from {c['start']}, `assets-pkg generate --scale {c['scale']} "
        f"--seed {c['seed']}`: {d['order_items']:,} order items, {d['fact_rows']:,} fact rows "
        f"in the warehouse (orders, order items, payments, sessions; the rows/s column counts "
        f"these). Setup, not compared: generate {common.fmt_s(setup['generate']['wall_s'])}, "
        f"ingest {common.fmt_s(setup['ingest']['wall_s'])}, lake snapshot "
        f"{common.fmt_bytes(setup['snapshot_bytes'])}; whole benchmark "
        f"{common.fmt_s(r.get('total_wall_s'))}.",
        common.markdown_table(headers, rows, right=RIGHT),
        *notes(r),
    ]
    return "\n\n".join(paragraphs)


def print_table(r: dict[str, Any]) -> None:
    headers, rows = table_rows(r)
    c = r["config"]
    common.print_results(
        f"backfill of {c['days']} daily partitions, --scale {c['scale']}",
        headers,
        rows,
        RIGHT,
        [common.machine_line(r["machine"]), *notes(r)],
    )


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = Options()
    parser.add_argument("--days", type=int, help=f"daily partitions to backfill (default {d.days})")
    parser.add_argument(
        "--runs",
        type=int,
        help=f"per-partition runs to measure and extrapolate from (default {d.runs})",
    )
    parser.add_argument(
        "--scale", type=float, help=f"`assets-pkg generate --scale` (default {d.scale})"
    )
    parser.add_argument(
        "--seed", type=int, default=d.seed, help=f"generator seed (default {d.seed})"
    )
    parser.add_argument(
        "--start",
        type=dt.date.fromisoformat,
        default=d.start,
        help=f"first day (default {d.start})",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="quick check of the harness: --days 20 --runs 3 --scale 0.05 unless given, "
        "README untouched unless --readme",
    )
    parser.add_argument(
        "--in-process",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the runs in one warm process via execute_in_process (default on)",
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
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, warehouses)")


def options_from(args: argparse.Namespace) -> Options:
    d = Options()
    preset = SMOKE if args.smoke else {}

    def pick(name: str):
        value = getattr(args, name)
        return value if value is not None else preset.get(name, getattr(d, name))

    return Options(
        days=pick("days"),
        runs=pick("runs"),
        scale=pick("scale"),
        seed=args.seed,
        start=args.start,
        in_process=args.in_process,
        workdir=args.workdir,
        keep=args.keep,
    )


def main(args: argparse.Namespace) -> int:
    return common.run_cli(NAME, args, options_from(args), run, print_table, readme_block)
