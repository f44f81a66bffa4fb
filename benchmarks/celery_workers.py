"""The same backfill on the celery executor with 1 vs 2 default-queue workers (wall time).

1. Generate ``--days`` days at ``--scale`` and ingest them once; snapshot the platform.
2. Start a redis-server of its own on a free loopback port (Debian's ``redis-server``;
   without it the benchmark stops with a note).
3. For 1 and then 2 default-queue workers (plus the one ``warehouse`` worker every setup
   has), on a fresh copy of the snapshot: start the workers with the documented command
   (``dagster-celery worker start -A dagster_celery.app -y deploy/celery.yaml -q dagster``,
   one process each), wait until they answer, then time ``assets-pkg backfill`` over all
   days with ``ASSETS_PKG_EXECUTOR=celery``, from spawn to exit.
4. Correctness first: the warehouse tables of both runs must be identical.

Only staging steps can use a second default worker (warehouse and mart steps are serialized
on the warehouse worker), so the gain is bounded by the staging share of the run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks import common

NAME = "celery_workers"
TABLES = (
    "warehouse.dim_customer", "warehouse.dim_product", "warehouse.fct_orders",
    "warehouse.fct_order_items", "warehouse.fct_payments", "warehouse.fct_sessions",
    "marts.daily_sales", "marts.daily_sales_by_category", "marts.daily_payments",
    "marts.daily_funnel",
)  # fmt: skip
#: a guard against a worker that never comes up, not a time limit on what is measured
WORKER_START_GUARD_S = 120.0


@dataclasses.dataclass(frozen=True)
class Options:
    days: int = 30
    scale: float = 0.3
    seed: int = 7
    start: dt.date = dt.date(2024, 1, 1)
    workers: tuple[int, ...] = (1, 2)
    smoke: bool = False
    workdir: Path | None = None
    keep: bool = False


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _redis(root: Path, say: common.Say):
    binary = shutil.which("redis-server")
    if binary is None:
        raise common.BenchmarkError(
            "redis-server is not installed (apt-get install redis-server): nothing measured"
        )
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        say(f"redis-server on 127.0.0.1:{port}")
        yield port
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _start_workers(
    platform: common.Platform, env: dict[str, str], default_workers: int
) -> list[subprocess.Popen]:
    queues = {f"default{i + 1}": "dagster" for i in range(default_workers)}
    queues["warehouse"] = "warehouse"
    procs = []
    for name, queue in queues.items():
        log = open(platform.logs / f"worker-{name}.log", "wb")  # noqa: SIM115 (closed by exit)
        procs.append(
            subprocess.Popen(
                ["dagster-celery", "worker", "start", "-A", "dagster_celery.app",
                 "-y", str(common.CODE_ROOT / "deploy" / "celery.yaml"), "-q", queue,
                 "-n", name, "-l", "WARNING", "--", "--concurrency=1"],
                env=env, cwd=platform.root, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )  # fmt: skip
    from celery import Celery

    app = Celery(broker=env["ASSETS_PKG_CELERY_BROKER"])
    deadline = time.monotonic() + WORKER_START_GUARD_S
    try:
        while True:
            answered = {n.split("@")[0] for r in app.control.ping(timeout=1) for n in r}
            if set(queues) <= answered:
                return procs
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                for proc in procs:
                    _stop(proc)
                raise common.BenchmarkError(f"celery workers did not start: see {platform.logs}")
    finally:
        app.close()


def _table_digest(warehouse: Path) -> dict[str, str]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return {
            t: conn.execute(
                f"SELECT count(*) || ':' || coalesce(md5(string_agg(x::VARCHAR, '|' "
                f"ORDER BY x::VARCHAR)), '') FROM {t} x"
            ).fetchall()[0][0]
            for t in TABLES
        }


def run(options: Options, say: common.Say) -> dict[str, Any]:
    machine = common.machine_info()
    end = options.start + dt.timedelta(days=options.days - 1)
    with common.temp_root(options.workdir, options.keep, say) as root:
        code = common.freeze_code(root / "code")
        digest = common.code_digest(code)
        base = common.Platform.create(root / "base", options.start, end, code)
        say(f"generating {options.days} days at scale {options.scale}")
        base.run(
            common.assets_pkg_cmd(
                "generate", "--start", options.start.isoformat(), "--days", str(options.days),
                "--scale", str(options.scale), "--seed", str(options.seed),
            ),
            "generate",
        )  # fmt: skip
        say("ingesting")
        base.run(common.assets_pkg_cmd("ingest"), "ingest")
        results = []
        digests = {}
        with _redis(root, say) as port:
            for db, n in enumerate(options.workers, start=1):
                platform = base.clone(root / f"workers{n}")
                platform.logs.mkdir(parents=True, exist_ok=True)
                env = platform.env() | {
                    "ASSETS_PKG_EXECUTOR": "celery",
                    "ASSETS_PKG_CELERY_BROKER": f"redis://127.0.0.1:{port}/{db}",
                }
                procs = _start_workers(platform, env, n)
                try:
                    say(f"backfill with {n} default worker(s) + the warehouse worker")
                    m = common.run_measured(
                        common.assets_pkg_cmd(
                            "backfill", "--start", options.start.isoformat(),
                            "--end", end.isoformat(),
                        ),
                        env=env, cwd=platform.root, log=platform.logs / "backfill.log",
                        label=f"{n} default worker(s)",
                    )  # fmt: skip
                finally:
                    for proc in procs:
                        _stop(proc)
                say(f"  {m.wall_s:.1f}s")
                results.append({"default_workers": n, **m.as_dict()})
                digests[n] = _table_digest(platform.warehouse)
        first, *rest = digests.values()
        if any(d != first for d in rest):
            raise common.BenchmarkError("the runs built different warehouses: no figures")
    by_n = {r["default_workers"]: r["wall_s"] for r in results}
    ratio = by_n[1] / by_n[2] if 1 in by_n and 2 in by_n else None
    return {
        "options": {k: str(v) for k, v in dataclasses.asdict(options).items()},
        "machine": machine,
        "code": digest,
        "runs": results,
        "speedup_2_vs_1": ratio,
    }


def print_table(r: dict[str, Any]) -> None:
    from rich.console import Console

    Console().print(readme_block(r))


def readme_block(r: dict[str, Any]) -> str:
    rows = [
        [f"{x['default_workers']} default + 1 warehouse", common.fmt_s(x["wall_s"])]
        for x in r["runs"]
    ]
    table = common.markdown_table(["celery workers", "backfill wall time"], rows, right={1})
    o = r["options"]
    return (
        f"{o['days']} days at scale {o['scale']}, one `assets-pkg backfill` run "
        f"(ASSETS_PKG_EXECUTOR=celery, redis on loopback, one process per worker); "
        f"{common.machine_line(r['machine'])}\n\n{table}\n\n"
        f"Speed-up of 2 over 1 default workers (1-worker time / 2-worker time): "
        f"{common.fmt_ratio(r['speedup_2_vs_1'])}; below 1 means the second worker cost more "
        "than it saved, as on a 2-core machine where the workers, redis and the orchestrating "
        "process share the cores "
        "(only the 6 staging steps can use the second worker; the 10 warehouse and mart "
        "steps run one at a time on the warehouse worker)."
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = Options()
    parser.add_argument("--days", type=int, help=f"days to backfill (default {d.days})")
    parser.add_argument("--scale", type=float, help=f"generator scale (default {d.scale})")
    parser.add_argument("--seed", type=int, default=d.seed, help=f"seed (default {d.seed})")
    parser.add_argument(
        "--start", type=dt.date.fromisoformat, default=d.start, help=f"first day ({d.start})"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="--days 4 --scale 0.05, README untouched"
    )
    parser.add_argument(
        "--readme",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="regenerate the results block in benchmarks/README.md (default on, off with --smoke)",
    )
    parser.add_argument("--json", type=Path, help="also write the full result as JSON here")
    parser.add_argument("--workdir", type=Path, help="parent of the temp dir")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and its logs")


def options_from(args: argparse.Namespace) -> Options:
    d = Options()
    smoke_days, smoke_scale = (4, 0.05) if args.smoke else (d.days, d.scale)
    return Options(
        days=args.days or smoke_days,
        scale=args.scale or smoke_scale,
        seed=args.seed,
        start=args.start,
        smoke=args.smoke,
        workdir=args.workdir,
        keep=args.keep,
    )


def main(args: argparse.Namespace) -> int:
    return common.run_cli(NAME, args, options_from(args), run, print_table, readme_block)
