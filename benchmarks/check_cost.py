"""Quality checks read only their partition: one day's checks on a 30-day vs a 365-day table.

Builds two platforms in a temp dir, SHORT (default 30) and LONG (default 365) days of
sample data at --scale, both ending on the same day END: `assets-pkg generate`, `assets-pkg
ingest` and one `assets-pkg backfill --start --end` over the whole history each. Then, for
the day END of each history (the same calendar day, so the partitions are alike):

  checks        in one child process that opens both warehouses, for every warehouse fact
                and mart table, exactly what the asset's step does for a one-day chunk:
                register the day's staged relations (`register_staged`), build `_candidate`
                from `spec.select_sql` (with the day's bounds when the SELECT takes them),
                then time `evaluate_candidate(conn, spec, [END], quality, references)`
                (completeness, validity, referential integrity, reconciliation, drift over
                the trailing `drift_window` days); a warm-up round, then REPEATS rounds,
                alternating the two histories table by table; the median is reported;
  control       the drift profile query run over EVERY published day of the largest fact
                table instead of the trailing window: what a check that scanned the whole
                table would cost, to show the measurement sees history when it is read;
  one-day run   `assets-pkg backfill --start END --end END` (a whole one-partition run of
                `daily_pipeline`, dimensions rebuilt included) RUN_REPEATS times per
                history, alternating, as child processes.

The figure is the ratio LONG/SHORT of each median, measured in the same run: about 1 when
the work follows the partition (the drift window is the same 28 days in both histories).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import re
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks import common

NAME = "check_cost"
DEFAULT_END = dt.date(2024, 12, 30)
#: the table whose whole-history profile is the control row
CONTROL_TABLE = "warehouse.fct_order_items"
SMOKE = {"short_days": 10, "long_days": 20, "scale": 0.1, "repeats": 2, "run_repeats": 1}


@dataclasses.dataclass(frozen=True)
class Options:
    short_days: int = 30
    long_days: int = 365
    scale: float = 0.2
    seed: int = 7
    end: dt.date = DEFAULT_END
    repeats: int = 5
    run_repeats: int = 3
    workdir: Path | None = None
    keep: bool = False
    timeout_s: float | None = common.DEFAULT_TIMEOUT_S

    def start(self, days: int) -> dt.date:
        return self.end - dt.timedelta(days=days - 1)

    @property
    def histories(self) -> dict[str, int]:
        return {"short": self.short_days, "long": self.long_days}


# --------------------------------------------------------------------------- child side


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _scalar(conn: Any, sql: str) -> Any:
    return conn.execute(sql).fetchall()[0][0]  # fetchall: DuckDB wants results finished


def time_checks(payload: dict[str, Any]) -> dict[str, Any]:
    """Child: time each table's per-day checks of one day in every history's warehouse.

    ``payload``: ``histories`` maps a name to ``{"data_dir", "day", "first_day"}``;
    ``repeats`` timed rounds after one warm-up round. Returns per table and history the
    timings (seconds) of staging registration, candidate build and ``evaluate_candidate``,
    the candidate's rows, the published table's rows and the check results' verdicts.
    """
    import warnings

    import dagster as dg
    import duckdb

    warnings.simplefilter("ignore", dg.BetaWarning)
    from assets_pkg.marts.assets import MART_TABLES
    from assets_pkg.quality.checks import day_profiles
    from assets_pkg.quality.config import QualityResource
    from assets_pkg.resources.lake import LakeResource
    from assets_pkg.warehouse.assets import WAREHOUSE_TABLES
    from assets_pkg.warehouse.tables import (
        evaluate_candidate,
        references_checked_at,
        register_staged,
    )

    quality = QualityResource()
    groups = [WAREHOUSE_TABLES, MART_TABLES]
    specs = [
        (spec, references_checked_at(spec, group))
        for group in groups
        for spec in group
        if spec.date_column is not None
    ]
    histories = payload["histories"]
    conns, lakes, days, firsts = {}, {}, {}, {}
    for name, h in histories.items():
        data_dir = Path(h["data_dir"])
        conns[name] = duckdb.connect(str(data_dir / "analytics.duckdb"))
        lakes[name] = LakeResource(root=str(data_dir / "lake"))
        days[name] = dt.date.fromisoformat(h["day"])
        firsts[name] = dt.date.fromisoformat(h["first_day"])

    timings: dict[str, dict[str, dict[str, list[float]]]] = {
        spec.table: {name: {"stage": [], "build": [], "check": []} for name in histories}
        for spec, _ in specs
    }
    info: dict[str, dict[str, dict[str, Any]]] = {spec.table: {} for spec, _ in specs}
    control: dict[str, dict[str, list[float]]] = {
        name: {"window": [], "all": []} for name in histories
    }
    control_spec = next(s for s, _ in specs if s.table == CONTROL_TABLE)
    for round_no in range(payload["repeats"] + 1):  # round 0 warms the caches, not reported
        for spec, references in specs:
            for name in histories:
                conn, day = conns[name], days[name]
                for statement in spec.setup_sql:
                    conn.execute(statement)
                t0 = time.perf_counter()
                register_staged(conn, lakes[name], spec.staged, [day])
                t1 = time.perf_counter()
                conn.execute(
                    f"CREATE OR REPLACE TEMP TABLE _candidate AS {spec.select_sql}",
                    [day, day] if spec.select_takes_range else [],
                )
                t2 = time.perf_counter()
                results = evaluate_candidate(conn, spec, [day], quality, references)
                t3 = time.perf_counter()
                for relation in spec.staged:
                    conn.unregister(relation)
                if round_no == 0:
                    date = spec.date_column
                    info[spec.table][name] = {
                        "candidate_rows": _scalar(conn, "SELECT count(*) FROM _candidate"),
                        "table_rows": _scalar(conn, f"SELECT count(*) FROM {spec.table}"),
                        "table_days": _scalar(
                            conn, f"SELECT count(DISTINCT {date}) FROM {spec.table}"
                        ),
                        "results": len(results),
                        "rules": sorted({r.rule for r in results}),
                        "failed": sorted(
                            f"{r.rule} ({r.severity}): {r.message}" for r in results if not r.passed
                        ),
                        "references": [r.label for r in references],
                    }
                    continue
                timing = timings[spec.table][name]
                timing["stage"].append(t1 - t0)
                timing["build"].append(t2 - t1)
                timing["check"].append(t3 - t2)
        for name in histories:
            conn, day = conns[name], days[name]
            window = dt.timedelta(days=quality.drift_window)
            t0 = time.perf_counter()
            day_profiles(conn, CONTROL_TABLE, control_spec.contract, day - window, day)
            t1 = time.perf_counter()
            day_profiles(conn, CONTROL_TABLE, control_spec.contract, firsts[name], day)
            t2 = time.perf_counter()
            if round_no:
                control[name]["window"].append(t1 - t0)
                control[name]["all"].append(t2 - t1)
    for conn in conns.values():
        conn.close()
    return {
        "tables": {table: {"info": info[table], "timings": timings[table]} for table in timings},
        "control": control,
        "drift_window": quality.drift_window,
    }


# --------------------------------------------------------------------------- the benchmark


def _ratio(long: float, short: float) -> float | None:
    return long / short if short > 0 else None


HELD_BACK = re.compile(r"([a-z_]+\.[a-z_]+): held back (\d+) day")


def run_pipeline(
    pf: common.Platform, cmd: list[str], name: str, label: str, timeout_s: float | None
) -> tuple[common.Measurement, dict[str, int]]:
    """A backfill child; days held back by an ERROR check are reported, not fatal.

    The step still wrote and checked every day (a held-back day keeps its previous rows),
    so the timing stands; any other failure is a :class:`common.BenchmarkError`.
    """
    m = pf.run(cmd, name, label, timeout_s=timeout_s, check=False)
    held = {t: int(n) for t, n in HELD_BACK.findall(Path(m.log).read_text(errors="replace"))}
    if m.returncode != 0 and not held:
        raise common.BenchmarkError(
            f"{label}: exit {m.returncode} (log {m.log}):\n{common.tail(Path(m.log))}"
        )
    return m, held


def run(options: Options, say: common.Say = lambda _: None) -> dict[str, Any]:
    """Run the benchmark; returns the JSON-able result."""
    if not 2 <= options.short_days < options.long_days:
        raise common.BenchmarkError("need 2 <= --short-days < --long-days")
    if options.scale <= 0 or options.repeats < 1 or options.run_repeats < 1:
        raise common.BenchmarkError("need --scale > 0, --repeats >= 1 and --run-repeats >= 1")
    machine = common.machine_info()
    began = time.perf_counter()
    end = options.end.isoformat()
    t = options.timeout_s
    setup: dict[str, dict[str, Any]] = {}
    with common.temp_root(options.workdir, options.keep, say) as root:
        code = common.freeze_code(root / "code")
        machine["code"]["digest"] = common.code_digest(code)
        platforms: dict[str, common.Platform] = {}
        for name, days in options.histories.items():
            start = options.start(days)
            pf = common.Platform.create(root / name, start, options.end, code)
            platforms[name] = pf
            say(f"{name} history: generating {days} days {start}..{end} at --scale {options.scale}")
            gen = pf.run(
                common.assets_pkg_cmd(
                    "generate", "--start", start.isoformat(), "--days", str(days),
                    "--seed", str(options.seed), "--scale", str(options.scale),
                ),
                "generate", "assets-pkg generate", timeout_s=t,
            )  # fmt: skip
            say(f"  ingesting ({common.fmt_s(gen.wall_s)} to generate)")
            ing = pf.run(
                common.assets_pkg_cmd("ingest"), "ingest", "assets-pkg ingest", timeout_s=t
            )
            say(f"  backfilling {start}..{end} ({common.fmt_s(ing.wall_s)} to ingest)")
            back, held = run_pipeline(
                pf,
                common.assets_pkg_cmd("backfill", "--start", start.isoformat(), "--end", end),
                "backfill", f"assets-pkg backfill --start {start} --end {end}", t,
            )  # fmt: skip
            say(f"  {common.fmt_s(back.wall_s)} to backfill")
            setup[name] = {
                "days": days,
                "start": start.isoformat(),
                "generate": gen.as_dict(),
                "ingest": ing.as_dict(),
                "backfill": back.as_dict(),
                "held_back": held,
            }

        say(f"timing the checks of {end} ({options.repeats} rounds after a warm-up)")
        payload = {
            "histories": {
                name: {
                    "data_dir": str(pf.data_dir),
                    "day": end,
                    "first_day": pf.start.isoformat(),
                }
                for name, pf in platforms.items()
            },
            "repeats": options.repeats,
        }
        checks_m, checks = platforms["long"].call(
            f"{__name__}:time_checks", payload, "checks", "time_checks", timeout_s=t
        )
        say(f"  {common.fmt_s(checks_m.wall_s)}")

        runs: dict[str, list[common.Measurement]] = {name: [] for name in platforms}
        for i in range(options.run_repeats):
            for name, pf in platforms.items():
                m, held = run_pipeline(
                    pf,
                    common.assets_pkg_cmd("backfill", "--start", end, "--end", end),
                    f"one_day_{i}", f"assets-pkg backfill --start {end} --end {end}", t,
                )  # fmt: skip
                runs[name].append(m)
                if held:
                    setup[name].setdefault("one_day_held_back", held)
                say(
                    f"  one-day run {i + 1}/{options.run_repeats}, {name}: {common.fmt_s(m.wall_s)}"
                )

    result = summarize(options, machine, setup, checks, runs)
    result["total_wall_s"] = time.perf_counter() - began
    result["machine"]["load_avg_end"] = common.load_avg()
    return result


def summarize(
    options: Options,
    machine: dict[str, Any],
    setup: dict[str, dict[str, Any]],
    checks: dict[str, Any],
    runs: dict[str, list[common.Measurement]],
) -> dict[str, Any]:
    tables = {}
    for table, found in checks["tables"].items():
        timing, info = found["timings"], found["info"]
        row: dict[str, Any] = {"info": info}
        for part in ("stage", "build", "check"):
            short = _median(timing["short"][part])
            long = _median(timing["long"][part])
            row[part] = {
                "short_s": short,
                "long_s": long,
                "short_min_s": min(timing["short"][part]),
                "long_min_s": min(timing["long"][part]),
                "ratio": _ratio(long, short),
            }
        tables[table] = row
    control = {}
    for part in ("window", "all"):
        short = _median(checks["control"]["short"][part])
        long = _median(checks["control"]["long"][part])
        control[part] = {"short_s": short, "long_s": long, "ratio": _ratio(long, short)}
    walls = {name: [m.wall_s for m in ms] for name, ms in runs.items()}
    run_short, run_long = _median(walls["short"]), _median(walls["long"])
    total_short = sum(t["check"]["short_s"] for t in tables.values())
    total_long = sum(t["check"]["long_s"] for t in tables.values())
    return {
        "benchmark": NAME,
        "config": {
            "short_days": options.short_days,
            "long_days": options.long_days,
            "scale": options.scale,
            "seed": options.seed,
            "day": options.end.isoformat(),
            "repeats": options.repeats,
            "run_repeats": options.run_repeats,
            "drift_window": checks["drift_window"],
        },
        "machine": machine,
        "setup": setup,
        "tables": tables,
        "all_checks": {
            "short_s": total_short,
            "long_s": total_long,
            "ratio": _ratio(total_long, total_short),
        },
        "control": control,
        "one_day_run": {
            "short_s": run_short,
            "long_s": run_long,
            "short_walls_s": walls["short"],
            "long_walls_s": walls["long"],
            "peak_rss_short_bytes": max(m.peak_rss_bytes for m in runs["short"]),
            "peak_rss_long_bytes": max(m.peak_rss_bytes for m in runs["long"]),
            "ratio": _ratio(run_long, run_short),
        },
    }


# --------------------------------------------------------------------------- reporting


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else common.fmt_s(seconds)


def table_rows(r: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    c = r["config"]
    s, lg = c["short_days"], c["long_days"]
    headers = [
        "one day's checks of",
        f"rows that day, {s} d / {lg} d",
        f"table rows, {s} d / {lg} d",
        f"checks, {s} d",
        f"checks, {lg} d",
        f"checks {lg}/{s}",
        f"candidate build {lg}/{s}",
    ]
    rows = []
    for table, t in r["tables"].items():
        info = t["info"]
        rows.append(
            [
                f"`{table}`",
                f"{info['short']['candidate_rows']:,} / {info['long']['candidate_rows']:,}",
                f"{info['short']['table_rows']:,} / {info['long']['table_rows']:,}",
                _ms(t["check"]["short_s"]),
                _ms(t["check"]["long_s"]),
                f"**{common.fmt_ratio(t['check']['ratio'])}**",
                common.fmt_ratio(t["build"]["ratio"]),
            ]
        )
    a = r["all_checks"]
    rows.append(
        [
            "all of them",
            "",
            "",
            _ms(a["short_s"]),
            _ms(a["long_s"]),
            f"**{common.fmt_ratio(a['ratio'])}**",
            "",
        ]
    )
    ctl = r["control"]["all"]
    rows.append(
        [
            f"control: drift profile over every day of `{CONTROL_TABLE}`",
            "",
            "",
            _ms(ctl["short_s"]),
            _ms(ctl["long_s"]),
            common.fmt_ratio(ctl["ratio"]),
            "",
        ]
    )
    o = r["one_day_run"]
    rows.append(
        [
            f"one-day run: `assets-pkg backfill --start {c['day']} --end {c['day']}`",
            "",
            "",
            common.fmt_s(o["short_s"]),
            common.fmt_s(o["long_s"]),
            f"**{common.fmt_ratio(o['ratio'])}**",
            "",
        ]
    )
    return headers, rows


RIGHT = {1, 2, 3, 4, 5, 6}


def notes(r: dict[str, Any]) -> list[str]:
    c, o, ctl = r["config"], r["one_day_run"], r["control"]
    s, lg = c["short_days"], c["long_days"]
    failed = {
        f"{table} ({name})": info["failed"]
        for table, t in r["tables"].items()
        for name, info in t["info"].items()
        if info["failed"]
    }
    verdict = (
        "every rule passed on that day in both histories"
        if not failed
        else "some rules failed (timed all the same): "
        + "; ".join(f"{k}: {', '.join(v)}" for k, v in failed.items())
    )
    held = {
        f"{name} history{'' if key == 'held_back' else ', one-day run'}": found
        for name, h in r["setup"].items()
        for key in ("held_back", "one_day_held_back")
        if (found := h.get(key))
    }
    held_note = (
        []
        if not held
        else [
            "Days held back by an ERROR check (written, checked and timed all the same; "
            "the run exits non-zero): "
            + "; ".join(
                f"{where}: " + ", ".join(f"`{t}` {n}" for t, n in found.items())
                for where, found in held.items()
            )
            + "."
        ]
    )
    out = [
        f"*Checks*: `evaluate_candidate` for the day {c['day']}, the last day of both "
        f"histories, on `_candidate` built as the asset's step builds it, in one process "
        f"holding both warehouses; medians of {c['repeats']} rounds after a warm-up, the two "
        f"histories alternating table by table. The rules are completeness, validity, "
        f"referential integrity, reconciliation and (warehouse facts) drift against the "
        f"trailing {c['drift_window']} published days; {verdict}. *Candidate build*: the "
        f"day's `CREATE TEMP TABLE _candidate AS <select>` (staged Parquet registration not "
        f"included).",
        f"*Control*: the drift profile query run over every published day of "
        f"`{CONTROL_TABLE}` instead of the trailing window takes "
        f"{common.fmt_ratio(ctl['all']['ratio'])} as long on the {lg}-day table as on the "
        f"{s}-day one (over the window alone: {common.fmt_ratio(ctl['window']['ratio'])}): "
        "a check that read the whole history would show here.",
        f"*One-day run*: a whole one-partition run of `daily_pipeline` as a child process "
        f"(process start-up, staging, the dimensions rebuilt whole, facts, marts and every "
        f"check), median of {c['run_repeats']} per history, alternating; "
        f"{', '.join(common.fmt_s(x) for x in o['short_walls_s'])} on {s} days, "
        f"{', '.join(common.fmt_s(x) for x in o['long_walls_s'])} on {lg} days.",
        *held_note,
    ]
    return out


def data_line(r: dict[str, Any]) -> str:
    c, setup = r["config"], r["setup"]
    parts = []
    for name in ("short", "long"):
        h = setup[name]
        parts.append(
            f"{h['days']} days from {h['start']} (generate "
            f"{common.fmt_s(h['generate']['wall_s'])}, ingest "
            f"{common.fmt_s(h['ingest']['wall_s'])}, backfill "
            f"{common.fmt_s(h['backfill']['wall_s'])})"
        )
    return (
        f"Data: two histories ending {c['day']}, `assets-pkg generate --scale {c['scale']} "
        f"--seed {c['seed']}`: {parts[0]} and {parts[1]}; whole benchmark "
        f"{common.fmt_s(r.get('total_wall_s'))}."
    )


def readme_block(r: dict[str, Any]) -> str:
    headers, rows = table_rows(r)
    return "\n\n".join(
        [
            common.machine_line(r["machine"]),
            data_line(r),
            common.markdown_table(headers, rows, right=RIGHT),
            *notes(r),
        ]
    )


def print_table(r: dict[str, Any]) -> None:
    headers, rows = table_rows(r)
    c = r["config"]
    common.print_results(
        f"one day's checks on {c['short_days']} vs {c['long_days']} days, --scale {c['scale']}",
        headers,
        rows,
        RIGHT,
        [common.machine_line(r["machine"]), data_line(r), *notes(r)],
    )


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = Options()
    parser.add_argument(
        "--short-days", type=int, help=f"days of the short history (default {d.short_days})"
    )
    parser.add_argument(
        "--long-days", type=int, help=f"days of the long history (default {d.long_days})"
    )
    parser.add_argument(
        "--scale", type=float, help=f"`assets-pkg generate --scale` (default {d.scale})"
    )
    parser.add_argument(
        "--seed", type=int, default=d.seed, help=f"generator seed (default {d.seed})"
    )
    parser.add_argument(
        "--end",
        type=dt.date.fromisoformat,
        default=d.end,
        help=f"last day of both histories, the day checked (default {d.end})",
    )
    parser.add_argument(
        "--repeats", type=int, help=f"timed rounds of the checks (default {d.repeats})"
    )
    parser.add_argument(
        "--run-repeats",
        type=int,
        help=f"one-day runs per history (default {d.run_repeats})",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="quick check of the harness: --short-days 10 --long-days 20 --scale 0.1 "
        "--repeats 2 --run-repeats 1 unless given, README untouched unless --readme",
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

    def pick(name: str) -> Any:
        value = getattr(args, name)
        return value if value is not None else preset.get(name, getattr(d, name))

    return Options(
        short_days=pick("short_days"),
        long_days=pick("long_days"),
        scale=pick("scale"),
        seed=args.seed,
        end=args.end,
        repeats=pick("repeats"),
        run_repeats=pick("run_repeats"),
        workdir=args.workdir,
        keep=args.keep,
    )


def main(args: argparse.Namespace) -> int:
    return common.run_cli(NAME, args, options_from(args), run, print_table, readme_block)
