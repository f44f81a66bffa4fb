"""End to end at 0.5M, 1M and 10M order items: this project vs pandas vs the DuckDB floor.

For each size (`--sizes`, millions of order items over `--days` daily partitions), one
platform in a temp dir gets `assets-pkg generate --clean` at the scale that gives that
many order items (the other sources in the generator's proportions; `--clean` leaves the
invalid rows out, so the hand-written variants can be checked against the marts row for
row). Then, side by side in one run, each in its own measured child process:

  floor     the four marts as one plain DuckDB SQL script over the landing files: no
            orchestration, no lake, no checks (`benchmarks.classic.duckdb_floor`);
  pandas    the same marts the way a typical Airflow + pandas task does them: pandas reads
            of every landing file, `merge`, `groupby`, `to_sql` into SQLite
            (`benchmarks.classic.pandas_pipeline`); above `--pandas-max` million items
            (0.5 by default: at 1M it alone took a quarter of the harness's time budget)
            it is not run, and its figure is extrapolated linearly from the largest size
            it ran (the table says so);
  spark     `daily_sales_by_category` alone as a local-mode PySpark job, when `pyspark`
            and Java are there (a note says why not otherwise), up to `--spark-max`;
  project   `assets-pkg ingest` then one `assets-pkg backfill --start --end` over every
            partition: Dagster runs, lake, staging, warehouse, marts and every check;
            from `--project-min` to `--project-max` (1M to 10M by default); above, its
            figure is extrapolated linearly; below, it is not shown.

Every variant's marts are compared with the project's before any time is reported, or,
at a size the project does not run at, with the floor's (itself compared with the
project's at the other sizes); a difference fails the benchmark. Wall time, input rows
per second and peak RSS per variant, with the ratio to the floor and to the pandas
baseline.

Overheads, on the platform of the smallest size the project ran at:

  history   a one-partition daily run (`assets-pkg backfill --start D --end D`) with
            `--days` of history present vs with 30 days (a second platform at the same
            daily volume): about equal when work follows the partitions touched;
  runs      `--runs` one-partition runs (`dagster asset materialize --partition D`, a
            process each, as a per-partition backfill launches them) extrapolated to all
            partitions, vs the single-run backfill measured above;
  executor  one partition of the staging group (`dagster asset materialize --select
            group:staging --partition D`) with ASSETS_PKG_EXECUTOR=in_process, multiprocess
            (forkserver) and multiprocess_spawn (Dagster's default), on the 30-day
            platform; the cost per step is the difference to in-process over the steps run.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import time
from pathlib import Path
from typing import Any

from benchmarks import common

NAME = "end_to_end"
DEFAULT_START = dt.date(2024, 1, 1)
#: order items a day at ``--scale 1`` (365 days at 3.4 gave 1,008,886)
ITEMS_PER_DAY_AT_SCALE_1 = 813.0
SOURCES = ("customers", "products", "orders", "order_items", "payments", "events")
SHORT_HISTORY_DAYS = 30
EXECUTORS = ("in_process", "multiprocess", "multiprocess_spawn")
#: the selection of ``daily_pipeline``, the job ``assets-pkg backfill`` runs
PIPELINE_SELECTION = "group:staging or group:warehouse or group:marts"
#: the executors' per-step cost is measured on the staging steps alone: every extra step of
#: a spawn run costs seconds of harness time and tells nothing more about the cost per step
EXECUTOR_SELECTION = "group:staging"
#: the job ``dagster asset materialize`` runs: the implicit job of every asset
ASSET_JOB = "__ASSET_JOB"
SMOKE = {
    "sizes": (0.005, 0.01),
    "days": 10,
    "runs": 2,
    "pandas_max": 0.01,
    "project_min": 0.005,
    "project_max": 0.01,
    "spark_max": 0.01,
}


@dataclasses.dataclass(frozen=True)
class Options:
    sizes: tuple[float, ...] = (0.5, 1.0, 10.0)
    days: int = 365
    start: dt.date = DEFAULT_START
    seed: int = 7
    runs: int = 10
    pandas_max: float = 0.5
    project_min: float = 1.0
    project_max: float = 10.0
    spark_max: float = 1.0
    spark: bool = True
    overheads: bool = True
    workdir: Path | None = None
    keep: bool = False
    timeout_s: float | None = common.DEFAULT_TIMEOUT_S

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days - 1)

    def scale(self, millions: float) -> float:
        return millions * 1e6 / (ITEMS_PER_DAY_AT_SCALE_1 * self.days)


# --------------------------------------------------------------------------- child side


def floor_call(payload: dict[str, Any]) -> dict[str, Any]:
    from benchmarks import classic

    return classic.duckdb_floor(
        Path(payload["landing"]),
        Path(payload["db"]),
        start=dt.date.fromisoformat(payload["start"]),
        end=dt.date.fromisoformat(payload["end"]),
    )


def pandas_call(payload: dict[str, Any]) -> dict[str, Any]:
    from benchmarks import classic

    return classic.pandas_pipeline(
        Path(payload["landing"]),
        Path(payload["db"]),
        start=dt.date.fromisoformat(payload["start"]),
        end=dt.date.fromisoformat(payload["end"]),
    )


def spark_call(payload: dict[str, Any]) -> dict[str, Any]:
    from benchmarks import classic

    frame = classic.spark_daily_sales_by_category(
        Path(payload["landing"]),
        start=dt.date.fromisoformat(payload["start"]),
        end=dt.date.fromisoformat(payload["end"]),
    )
    if frame is None:
        return {"skipped": "pyspark is not installed, or Java is missing"}
    frame.write_parquet(payload["out"])
    return {"rows": frame.height}


def compare_call(payload: dict[str, Any]) -> dict[str, Any]:
    """Each variant's marts against the reference's (the project's, or the floor's where the
    project did not run); the differences, per variant."""
    import polars as pl

    from benchmarks import classic

    project = classic.read_marts(Path(payload["reference"]), "duckdb")
    found: dict[str, Any] = {}
    for variant, (path, kind) in payload["variants"].items():
        if kind == "spark":
            mart = "daily_sales_by_category"
            actual = {mart: classic.canonical(mart, pl.read_parquet(path))}
            found[variant] = classic.compare_marts({mart: project[mart]}, actual)
        else:
            found[variant] = classic.compare_marts(project, classic.read_marts(Path(path), kind))
    return {"differences": found, "rows": {k: v.height for k, v in project.items()}}


def count_inputs(landing: Path) -> dict[str, dict[str, int]]:
    """Records and bytes per source in the landing zone (non-blank lines, CSV headers not)."""
    counts: dict[str, dict[str, int]] = {}
    for source in SOURCES:
        rows = size = 0
        for path in sorted((landing / source).glob("*")):
            if path.name.startswith(".") or not path.is_file():
                continue
            data = path.read_bytes()
            size += len(data)
            lines = sum(1 for line in data.splitlines() if line.strip())
            rows += lines - (1 if path.suffix == ".csv" and lines else 0)
        counts[source] = {"rows": rows, "bytes": size}
    return counts


# --------------------------------------------------------------------------- harness side


def _measured(m: common.Measurement) -> dict[str, Any]:
    return {"wall_s": m.wall_s, "peak_rss_bytes": m.peak_rss_bytes}


def _combined(*ms: common.Measurement) -> dict[str, Any]:
    return {
        "wall_s": sum(m.wall_s for m in ms),
        "peak_rss_bytes": max(m.peak_rss_bytes for m in ms),
        "parts": {m.label: _measured(m) for m in ms},
    }


def _one_day_run(
    pf: common.Platform, day: dt.date, name: str, t: float | None
) -> common.Measurement:
    cmd = common.assets_pkg_cmd("backfill", "--start", day.isoformat(), "--end", day.isoformat())
    return pf.run(cmd, name, f"one-day run {day}", timeout_s=t)


def _materialize_cmd(selection: str, day: dt.date) -> list[str]:
    """One partition of ``selection`` as its own run, in a new process, as a backfill does."""
    return common.dagster_cmd(
        "asset", "materialize", "-m", "assets_pkg.definitions",
        "--select", selection, "--partition", day.isoformat(),
    )  # fmt: skip


def build_platform(
    pf: common.Platform, days: int, scale: float, seed: int, t: float | None, say: common.Say
) -> dict[str, Any]:
    gen = pf.run(
        common.assets_pkg_cmd(
            "generate", "--clean", "--start", pf.start.isoformat(), "--days", str(days),
            "--seed", str(seed), "--scale", f"{scale:.6f}",
        ),
        "generate", "assets-pkg generate --clean", timeout_s=t,
    )  # fmt: skip
    say(f"  generated in {common.fmt_s(gen.wall_s)}")
    return {"generate": _measured(gen), "inputs": count_inputs(pf.data_dir / "landing")}


def run_project(pf: common.Platform, t: float | None, say: common.Say) -> dict[str, Any]:
    ingest = pf.run(common.assets_pkg_cmd("ingest"), "ingest", "assets-pkg ingest", timeout_s=t)
    say(f"  project: ingest {common.fmt_s(ingest.wall_s)}")
    start, end = pf.start.isoformat(), pf.end.isoformat()
    backfill = pf.run(
        common.assets_pkg_cmd("backfill", "--start", start, "--end", end),
        "backfill",
        "assets-pkg backfill",
        timeout_s=t,
    )
    say(f"  project: backfill {common.fmt_s(backfill.wall_s)}")
    return _combined(ingest, backfill)


def run_size(
    options: Options, root: Path, code: Path, millions: float, say: common.Say
) -> dict[str, Any]:
    t = options.timeout_s
    scale = options.scale(millions)
    pf = common.Platform.create(root / f"size-{millions:g}M", options.start, options.end, code)
    say(f"{millions:g}M order items: {options.days} days at --scale {scale:.3f}")
    out: dict[str, Any] = {"millions": millions, "scale": scale, **build_platform(
        pf, options.days, scale, options.seed, t, say
    )}  # fmt: skip
    landing = pf.data_dir / "landing"
    bounds = {"landing": str(landing), "start": pf.start.isoformat(), "end": pf.end.isoformat()}
    variants: dict[str, Any] = {}
    to_compare: dict[str, tuple[str, str]] = {}

    floor_db = pf.root / "floor.duckdb"
    m, _ = pf.call(f"{__name__}:floor_call", {**bounds, "db": str(floor_db)}, "floor", "floor")
    variants["floor"] = _measured(m)
    to_compare["floor"] = (str(floor_db), "duckdb")
    say(f"  floor: {common.fmt_s(m.wall_s)}")

    if millions <= options.pandas_max:
        pandas_db = pf.root / "pandas.sqlite"
        m, _ = pf.call(
            f"{__name__}:pandas_call", {**bounds, "db": str(pandas_db)}, "pandas", "pandas"
        )
        variants["pandas"] = _measured(m)
        to_compare["pandas"] = (str(pandas_db), "sqlite")
        say(f"  pandas: {common.fmt_s(m.wall_s)}")

    if options.spark and millions <= options.spark_max:
        spark_out = pf.root / "spark.parquet"
        m, answer = pf.call(
            f"{__name__}:spark_call",
            {**bounds, "out": str(spark_out)},
            "spark",
            "spark",
            timeout_s=t,
        )
        if "skipped" in answer:
            out["spark_skipped"] = answer["skipped"]
            say(f"  spark: skipped ({answer['skipped']})")
        else:
            variants["spark"] = _measured(m)
            to_compare["spark"] = (str(spark_out), "spark")
            say(f"  spark (daily_sales_by_category only): {common.fmt_s(m.wall_s)}")

    out.update(variants=variants, compared=[], mart_rows={}, platform=pf)
    if options.project_min <= millions <= options.project_max:
        variants["project"] = run_project(pf, t, say)
        reference, reference_db = "project", pf.warehouse
    else:
        # the project's figure is scaled from a size it ran at (the table says so); the
        # others are checked against the floor, itself checked against the project elsewhere
        say(f"  project: runs from {options.project_min:g}M to {options.project_max:g}M only")
        reference, reference_db = "floor", to_compare.pop("floor")[0]
    out["reference"] = reference
    if not to_compare:
        say("  marts: nothing to compare at this size")
        return out
    _, compared = pf.call(
        f"{__name__}:compare_call",
        {"reference": str(reference_db), "variants": to_compare},
        "compare",
        "compare marts",
        timeout_s=t,
    )
    wrong = {v: d for v, d in compared["differences"].items() if d}
    if wrong:
        lines = [f"{v}: {'; '.join(d[:5])}" for v, d in wrong.items()]
        raise common.BenchmarkError(
            f"{millions:g}M: marts differ from the {reference}'s, no time reported:\n"
            + "\n".join(lines)
        )
    out["mart_rows"] = compared["rows"]
    out["compared"] = sorted(to_compare)
    say(f"  marts equal: {', '.join(sorted(to_compare))} vs {reference}")
    return out


def run_overheads(
    options: Options, root: Path, code: Path, big: dict[str, Any], say: common.Say
) -> dict[str, Any]:
    t = options.timeout_s
    pf: common.Platform = big["platform"]
    day = options.end
    out: dict[str, Any] = {}

    say(f"history: one-day runs of {day} with {options.days} vs {SHORT_HISTORY_DAYS} days present")
    short_start = day - dt.timedelta(days=SHORT_HISTORY_DAYS - 1)
    short = common.Platform.create(root / "short-history", short_start, day, code)
    build_platform(short, SHORT_HISTORY_DAYS, big["scale"], options.seed, t, say)
    run_project(short, t, say)
    long_runs, short_runs = [], []
    for i in range(2):  # alternating, the first pair warms the page cache
        long_runs.append(_one_day_run(pf, day, f"one_day_long_{i}", t).wall_s)
        short_runs.append(_one_day_run(short, day, f"one_day_short_{i}", t).wall_s)
    out["history"] = {
        "long_days": options.days,
        "short_days": SHORT_HISTORY_DAYS,
        "long_s": min(long_runs),
        "short_s": min(short_runs),
        "ratio": min(long_runs) / min(short_runs),
    }
    say(f"  {common.fmt_s(min(long_runs))} vs {common.fmt_s(min(short_runs))}")

    say(f"executors: a one-day run of {EXECUTOR_SELECTION} on the 30-day platform")
    walls: dict[str, float] = {}
    for executor in EXECUTORS:
        walls[executor] = short.run(
            _materialize_cmd(EXECUTOR_SELECTION, day),
            f"executor_{executor}",
            f"{EXECUTOR_SELECTION} {day} ({executor})",
            extra_env={"ASSETS_PKG_EXECUTOR": executor},
            timeout_s=t,
        ).wall_s
        say(f"  {executor}: {common.fmt_s(walls[executor])}")
    _, events = short.call(
        "benchmarks.common:run_event_summary",
        {"instances": {"short": [str(short.dagster_home), ASSET_JOB]}},
        "executor_events",
        "run events",
        timeout_s=t,
    )
    steps = len(events["short"][-1]["steps"]) or 1
    out["executors"] = {
        "selection": EXECUTOR_SELECTION,
        "steps": steps,
        "wall_s": walls,
        "per_step_s": {e: (w - walls["in_process"]) / steps for e, w in walls.items()},
    }

    say(f"runs: {options.runs} one-partition runs, extrapolated to {options.days}")
    picked = [
        options.start + dt.timedelta(days=round(i * (options.days - 1) / max(1, options.runs - 1)))
        for i in range(options.runs)
    ]
    walls_runs = []
    for i, d in enumerate(picked):
        m = pf.run(
            _materialize_cmd(PIPELINE_SELECTION, d),
            f"per_partition_{i}",
            f"dagster asset materialize --partition {d}",
            timeout_s=t,
        )
        walls_runs.append(m.wall_s)
    mean = sum(walls_runs) / len(walls_runs)
    single = big["variants"]["project"]["parts"]["assets-pkg backfill"]["wall_s"]
    out["runs"] = {
        "measured": len(walls_runs),
        "mean_s": mean,
        "extrapolated_s": mean * options.days,
        "single_run_s": single,
        "ratio": mean * options.days / single,
    }
    say(f"  mean {common.fmt_s(mean)} per run")
    return out


def run(options: Options, say: common.Say = lambda _: None) -> dict[str, Any]:
    """Run the benchmark; returns the JSON-able result."""
    if not options.sizes or min(options.sizes) <= 0 or options.days < 2 or options.runs < 1:
        raise common.BenchmarkError("need sizes > 0, --days >= 2 and --runs >= 1")
    machine = common.machine_info()
    began = time.perf_counter()
    sizes: list[dict[str, Any]] = []
    overheads: dict[str, Any] = {}
    with common.temp_root(options.workdir, options.keep, say) as root:
        code = common.freeze_code(root / "code")
        machine["code"]["digest"] = common.code_digest(code)
        for millions in sorted(options.sizes):
            sizes.append(run_size(options, root, code, millions, say))
        if options.overheads:
            ran = [s for s in sizes if "project" in s["variants"]]
            if ran:
                overheads = run_overheads(options, root, code, ran[0], say)
    for size in sizes:
        size.pop("platform")
    result = summarize(options, machine, sizes, overheads)
    result["total_wall_s"] = time.perf_counter() - began
    result["machine"]["load_avg_end"] = common.load_avg()
    return result


def summarize(
    options: Options, machine: dict[str, Any], sizes: list[dict[str, Any]], overheads: dict
) -> dict[str, Any]:
    """Rates and ratios; pandas (and the project) extrapolated linearly to sizes above the
    largest they ran at."""
    for size in sizes:
        size["input_rows"] = sum(v["rows"] for v in size["inputs"].values())
        size["input_bytes"] = sum(v["bytes"] for v in size["inputs"].values())
    for name in ("pandas", "project"):
        ran = [s for s in sizes if name in s["variants"]]
        for size in sizes:
            below = [s for s in ran if s["millions"] < size["millions"]]
            if name in size["variants"] or not below:
                continue
            base = below[-1]
            size["variants"][name] = {
                "wall_s": base["variants"][name]["wall_s"]
                * size["input_rows"]
                / base["input_rows"],
                "peak_rss_bytes": None,
                "extrapolated_from": base["millions"],
            }
    for size in sizes:
        rows = size["input_rows"]
        floor = size["variants"]["floor"]["wall_s"]
        pandas = size["variants"].get("pandas", {}).get("wall_s")
        for v in size["variants"].values():
            v["rows_per_s"] = rows / v["wall_s"] if v["wall_s"] else None
            v["vs_floor"] = v["wall_s"] / floor
            v["vs_pandas"] = v["wall_s"] / pandas if pandas else None
    return {
        "options": {
            "sizes": list(options.sizes),
            "days": options.days,
            "start": options.start.isoformat(),
            "seed": options.seed,
            "runs": options.runs,
            "pandas_max": options.pandas_max,
            "project_min": options.project_min,
            "project_max": options.project_max,
            "spark_max": options.spark_max,
        },
        "machine": machine,
        "sizes": sizes,
        "overheads": overheads,
    }


# --------------------------------------------------------------------------- presentation

LABELS = {
    "project": "this project (ingest + backfill)",
    "floor": "DuckDB SQL floor",
    "pandas": "pandas + to_sql baseline",
    "spark": "PySpark local (one mart)",
}
ORDER = ("project", "floor", "pandas", "spark")
RIGHT = {2, 3, 4, 5, 6}


def table_rows(r: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    headers = ["size", "variant", "wall", "input rows/s", "peak RSS", "÷ floor", "÷ pandas"]
    rows = []
    for size in r["sizes"]:
        label = f"{size['millions']:g}M items ({size['input_rows']:,} rows)"
        for name in ORDER:
            v = size["variants"].get(name)
            if v is None:
                continue
            wall = common.fmt_s(v["wall_s"])
            if v.get("extrapolated_from") is not None:
                wall += f" (extrapolated from {v['extrapolated_from']:g}M)"
            rows.append(
                [
                    label,
                    LABELS[name],
                    wall,
                    common.fmt_rate(v["rows_per_s"]),
                    common.fmt_bytes(v["peak_rss_bytes"]),
                    common.fmt_ratio(v["vs_floor"]),
                    common.fmt_ratio(v["vs_pandas"]),
                ]
            )
            label = ""
    return headers, rows


def notes(r: dict[str, Any]) -> list[str]:
    out = []
    for size in r["sizes"]:
        parts = size["variants"].get("project", {}).get("parts", {})
        split = ", ".join(f"{k} {common.fmt_s(v['wall_s'])}" for k, v in parts.items())
        inputs = ", ".join(f"{k} {v['rows']:,}" for k, v in size["inputs"].items())
        reference = size.get("reference", "project")
        checked = (
            f"marts of {', '.join(size['compared'])} equal to the {reference}'s "
            f"({', '.join(f'{k} {n:,} rows' for k, n in size['mart_rows'].items())})"
            if size["compared"]
            else "nothing compared at this size"
        )
        if reference != "project":
            checked = "the project did not run at this size (`--project-min/-max`); " + checked
        out.append(
            f"**{size['millions']:g}M**: `--scale {size['scale']:.3f}`, "
            f"{common.fmt_bytes(size['input_bytes'])} landed ({inputs})"
            + (f"; project: {split}" if split else "")
            + f"; {checked}."
        )
        if size.get("spark_skipped"):
            out.append(f"PySpark: skipped ({size['spark_skipped']}).")
    o = r.get("overheads") or {}
    if h := o.get("history"):
        out.append(
            f"**History**: a one-partition daily run with {h['long_days']} days present "
            f"{common.fmt_s(h['long_s'])} vs {h['short_days']} days "
            f"{common.fmt_s(h['short_s'])}: **{common.fmt_ratio(h['ratio'])}**."
        )
    if e := o.get("executors"):
        per = ", ".join(
            f"{k} {common.fmt_s(e['wall_s'][k])} ({e['per_step_s'][k]:+.2f} s a step)"
            for k in EXECUTORS
        )
        out.append(
            f"**Executors** (one partition of `{e.get('selection', PIPELINE_SELECTION)}`, "
            f"{e['steps']} steps, vs in-process): {per}."
        )
    if n := o.get("runs"):
        out.append(
            f"**Runs**: {n['measured']} one-partition runs measured, mean "
            f"{common.fmt_s(n['mean_s'])}, extrapolated ×{r['options']['days']} = "
            f"{common.fmt_s(n['extrapolated_s'])} vs one single-run backfill "
            f"{common.fmt_s(n['single_run_s'])}: **{common.fmt_ratio(n['ratio'])}**."
        )
    out.append(f"Harness wall time {common.fmt_s(r.get('total_wall_s'))}.")
    out.append(common.machine_line(r["machine"]))
    return out


def readme_block(r: dict[str, Any]) -> str:
    headers, rows = table_rows(r)
    return "\n\n".join([common.markdown_table(headers, rows, RIGHT), *notes(r)])


def print_table(r: dict[str, Any]) -> None:
    headers, rows = table_rows(r)
    common.print_results("end to end", headers, rows, RIGHT, notes(r))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = Options()
    parser.add_argument(
        "--sizes",
        type=lambda s: tuple(float(x) for x in s.split(",")),
        help="millions of order items, comma-separated (default 0.5,1,10)",
    )
    parser.add_argument("--days", type=int, help=f"daily partitions (default {d.days})")
    parser.add_argument("--runs", type=int, help=f"per-partition runs timed (default {d.runs})")
    parser.add_argument(
        "--pandas-max",
        type=float,
        help=f"largest size the pandas baseline runs, in millions (default {d.pandas_max:g})",
    )
    parser.add_argument(
        "--project-min",
        type=float,
        help="smallest size the project runs, in millions; below it, the other variants are "
        f"checked against the floor (default {d.project_min:g})",
    )
    parser.add_argument(
        "--project-max",
        type=float,
        help="largest size the project runs, in millions; above it, its figure is "
        f"extrapolated (default {d.project_max:g})",
    )
    parser.add_argument(
        "--spark-max",
        type=float,
        help=f"largest size the PySpark job runs, in millions (default {d.spark_max:g})",
    )
    parser.add_argument("--seed", type=int, default=d.seed, help=f"generator seed ({d.seed})")
    parser.add_argument("--no-spark", action="store_true", help="leave out the PySpark job")
    parser.add_argument(
        "--no-overheads", action="store_true", help="leave out history, runs and executors"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="quick check: sizes 0.005,0.01, 10 days, 2 runs; README untouched unless --readme",
    )
    parser.add_argument(
        "--readme",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="regenerate the results block in benchmarks/README.md (default on, off with --smoke)",
    )
    parser.add_argument("--json", type=Path, help="also write the full result as JSON here")
    parser.add_argument("--workdir", type=Path, help="parent of the temp dir")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")


def options_from(args: argparse.Namespace) -> Options:
    d = Options()
    preset = SMOKE if args.smoke else {}

    def pick(name: str):
        value = getattr(args, name)
        return value if value is not None else preset.get(name, getattr(d, name))

    return Options(
        sizes=pick("sizes"),
        days=pick("days"),
        runs=pick("runs"),
        pandas_max=pick("pandas_max"),
        project_min=pick("project_min"),
        project_max=pick("project_max"),
        spark_max=pick("spark_max"),
        seed=args.seed,
        spark=not args.no_spark,
        overheads=not args.no_overheads,
        workdir=args.workdir,
        keep=args.keep,
    )


def main(args: argparse.Namespace) -> int:
    return common.run_cli(NAME, args, options_from(args), run, print_table, readme_block)
