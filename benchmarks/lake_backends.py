"""The same ingest and backfill with the lake on local disk vs on an S3 server (moto, loopback).

Generates DAYS days of sample data at --scale in a temp dir, then, on two copies of the
landed platform, times `assets-pkg ingest` and `assets-pkg backfill --start --end` as child
processes:

  local  ASSETS_PKG_LAKE_URL unset: the lake is <data dir>/lake (temp file + rename);
  s3     ASSETS_PKG_LAKE_URL=s3://<bucket>/lake on moto's S3 server on 127.0.0.1, with
         AWS_ENDPOINT_URL pointing at it: every write is an upload plus a manifest switch,
         every read a manifest GET plus ranged GETs of Parquet objects.

The S3 server runs in the harness process (a thread), so its CPU time competes with the
child on the same cores, as a local S3-compatible server would; it is not in the child's
peak RSS. Loopback has no network latency: the S3 figures are the protocol's own cost
(requests, signing, (de)serialising, moto's in-memory store), a lower bound for a real
bucket. Before any time is reported, every warehouse and mart table of the two runs is
compared row for row.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks import common

NAME = "lake_backends"
DEFAULT_START = dt.date(2024, 1, 1)
TABLES = (
    "warehouse.dim_customer",
    "warehouse.dim_product",
    "warehouse.fct_orders",
    "warehouse.fct_order_items",
    "warehouse.fct_payments",
    "warehouse.fct_sessions",
    "marts.daily_sales",
    "marts.daily_sales_by_category",
    "marts.daily_payments",
    "marts.daily_funnel",
    "quarantine.rejects",
)
#: columns that differ between two runs by construction (when, which pass)
VOLATILE = {"quarantine.rejects": ("ingest_id", "rejected_at", "resolved_at")}
SMOKE = {"days": 3, "scale": 0.02}


@dataclasses.dataclass(frozen=True)
class Options:
    days: int = 14
    scale: float = 0.3
    seed: int = 7
    start: dt.date = DEFAULT_START
    workdir: Path | None = None
    keep: bool = False
    timeout_s: float | None = common.DEFAULT_TIMEOUT_S

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days - 1)


@dataclasses.dataclass(frozen=True)
class EnvPlatform(common.Platform):
    """A platform whose children also get ``extra`` environment variables."""

    extra: tuple[tuple[str, str], ...] = ()

    def env(self) -> dict[str, str]:
        return {**super().env(), **dict(self.extra)}


def _with_env(platform: common.Platform, extra: tuple[tuple[str, str], ...] = ()) -> EnvPlatform:
    return EnvPlatform(platform.root, platform.start, platform.end, platform.code, extra)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def s3_env(endpoint: str, lake_url: str) -> tuple[tuple[str, str], ...]:
    """The AWS_* a child needs for the loopback server, and nothing of the machine's own."""
    return (
        ("ASSETS_PKG_LAKE_URL", lake_url),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", "bench-key-id"),
        ("AWS_SECRET_ACCESS_KEY", "bench-secret"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_CONFIG_FILE", os.devnull),
        ("AWS_SHARED_CREDENTIALS_FILE", os.devnull),
    )


def compare(expected: Path, actual: Path) -> dict[str, int]:
    """Rows per table, equal in both warehouses; raises BenchmarkError naming a difference."""
    import duckdb

    counts: dict[str, int] = {}
    with (
        duckdb.connect(str(expected), read_only=True) as want,
        duckdb.connect(str(actual), read_only=True) as got,
    ):
        for table in TABLES:
            skip = VOLATILE.get(table, ())
            cols = [r[0] for r in want.execute(f"DESCRIBE {table}").fetchall() if r[0] not in skip]
            select = f"SELECT {', '.join(cols)} FROM {table} ORDER BY ALL"
            a, b = want.execute(select).fetchall(), got.execute(select).fetchall()
            if a != b:
                raise common.BenchmarkError(
                    f"{table} differs: {len(a)} rows with the local lake, {len(b)} with S3"
                )
            counts[table] = len(a)
    if not counts["marts.daily_sales"]:
        raise common.BenchmarkError("nothing to compare: marts.daily_sales is empty")
    return counts


def run(options: Options, say: common.Say = lambda _: None) -> dict[str, Any]:
    """Run the benchmark; returns the JSON-able result (times only if the check passed)."""
    if options.days < 1 or options.scale <= 0:
        raise common.BenchmarkError("need --days >= 1 and --scale > 0")
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    # the server logs every request on the console; the figures are what matters here
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    machine = common.machine_info()
    began = time.perf_counter()
    start, end = options.start.isoformat(), options.end.isoformat()
    t = options.timeout_s
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        with common.temp_root(options.workdir, options.keep, say) as root:
            code = common.freeze_code(root / "code")
            machine["code"]["digest"] = common.code_digest(code)
            base = common.Platform.create(root / "base", options.start, options.end, code)
            say(f"generating {options.days} days at --scale {options.scale} in {root}")
            generate = base.run(
                common.assets_pkg_cmd(
                    "generate", "--start", start, "--days", str(options.days),
                    "--seed", str(options.seed), "--scale", str(options.scale),
                ),
                "generate", "assets-pkg generate", timeout_s=t,
            )  # fmt: skip
            landed_bytes = common.dir_size(base.data_dir / "landing")

            endpoint = f"http://127.0.0.1:{port}"
            bucket = f"bench-{uuid.uuid4().hex[:12]}"
            boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="bench-key-id",
                aws_secret_access_key="bench-secret",
            ).create_bucket(Bucket=bucket)
            variants = {
                "local": _with_env(base.clone(root / "local", skip=())),
                "s3": _with_env(
                    base.clone(root / "s3", skip=()), s3_env(endpoint, f"s3://{bucket}/lake")
                ),
            }
            measured: dict[str, dict[str, common.Measurement]] = {}
            for name, platform in variants.items():
                say(f"{name}: ingest")
                ingest = platform.run(
                    common.assets_pkg_cmd("ingest"), f"{name}_ingest", "assets-pkg ingest",
                    timeout_s=t,
                )  # fmt: skip
                say(f"{name}: ingest {common.fmt_s(ingest.wall_s)}; backfill {start}..{end}")
                backfill = platform.run(
                    common.assets_pkg_cmd("backfill", "--start", start, "--end", end),
                    f"{name}_backfill", f"assets-pkg backfill --start {start} --end {end}",
                    timeout_s=t,
                )  # fmt: skip
                say(f"{name}: backfill {common.fmt_s(backfill.wall_s)}")
                measured[name] = {"ingest": ingest, "backfill": backfill}

            say("comparing every warehouse and mart table of the two runs")
            counts = compare(variants["local"].warehouse, variants["s3"].warehouse)
            local_lake_bytes = common.dir_size(variants["local"].data_dir / "lake")
    finally:
        server.stop()

    result: dict[str, Any] = {
        "benchmark": NAME,
        "config": {
            "days": options.days,
            "scale": options.scale,
            "seed": options.seed,
            "start": start,
            "end": end,
        },
        "machine": machine,
        "data": {
            "landed_bytes": landed_bytes,
            "local_lake_bytes": local_lake_bytes,
            "rows": counts,
        },
        "setup": {"generate": generate.as_dict()},
        "correctness": {"checked": True, "equal": True, "tables": len(counts)},
        "variants": {
            name: {step: m.as_dict() for step, m in steps.items()}
            for name, steps in measured.items()
        },
    }
    for step in ("ingest", "backfill"):
        local, s3 = measured["local"][step].wall_s, measured["s3"][step].wall_s
        result.setdefault("ratios", {})[step] = s3 / local if local else None
    local_total = sum(m.wall_s for m in measured["local"].values())
    s3_total = sum(m.wall_s for m in measured["s3"].values())
    result["ratios"]["total"] = s3_total / local_total if local_total else None
    result["total_wall_s"] = time.perf_counter() - began
    result["machine"]["load_avg_end"] = common.load_avg()
    return result


# --------------------------------------------------------------------------- reporting

RIGHT = {1, 2, 3, 4}


def table_rows(r: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    headers = [
        "step",
        "local lake",
        "S3 lake (moto, loopback)",
        "S3 / local",
        "peak RSS local / S3",
    ]
    rows = []
    for step in ("ingest", "backfill"):
        local, s3 = r["variants"]["local"][step], r["variants"]["s3"][step]
        rows.append(
            [
                f"`assets-pkg {step}`",
                common.fmt_s(local["wall_s"]),
                common.fmt_s(s3["wall_s"]),
                f"**{common.fmt_ratio(r['ratios'][step])}**",
                f"{common.fmt_bytes(local['peak_rss_bytes'])} / "
                f"{common.fmt_bytes(s3['peak_rss_bytes'])}",
            ]
        )
    total_local = sum(v["wall_s"] for v in r["variants"]["local"].values())
    total_s3 = sum(v["wall_s"] for v in r["variants"]["s3"].values())
    rows.append(
        [
            "both",
            common.fmt_s(total_local),
            common.fmt_s(total_s3),
            f"**{common.fmt_ratio(r['ratios']['total'])}**",
            "",
        ]
    )
    return headers, rows


def notes(r: dict[str, Any]) -> list[str]:
    c, d = r["config"], r["data"]
    return [
        f"Data: {c['days']} days from {c['start']}, `assets-pkg generate --scale {c['scale']} "
        f"--seed {c['seed']}` ({common.fmt_bytes(d['landed_bytes'])} landed, "
        f"{common.fmt_bytes(d['local_lake_bytes'])} of lake and staging Parquet on disk, "
        f"{d['rows']['warehouse.fct_order_items']:,} order items). Each step is a child "
        "process (interpreter start-up and code load included), run one after the other "
        "on its own copy of the landed platform.",
        f"Checked before any time was reported: all {r['correctness']['tables']} warehouse, "
        "mart and rejects tables of the S3 run equal the local run's row for row.",
        "The S3 server is moto on 127.0.0.1, in the harness process: no network latency, so "
        "the ratio is the cost of the S3 protocol and of the manifest switches, a lower bound "
        "for a real bucket; compare the ratios of one run, not absolute figures across runs.",
    ]


def readme_block(r: dict[str, Any]) -> str:
    headers, rows = table_rows(r)
    return "\n\n".join(
        [
            common.machine_line(r["machine"]),
            common.markdown_table(headers, rows, right=RIGHT),
            *notes(r),
            f"Whole benchmark {common.fmt_s(r.get('total_wall_s'))}.",
        ]
    )


def print_table(r: dict[str, Any]) -> None:
    headers, rows = table_rows(r)
    c = r["config"]
    common.print_results(
        f"local vs S3 lake, {c['days']} days at --scale {c['scale']}",
        headers,
        rows,
        RIGHT,
        [common.machine_line(r["machine"]), *notes(r)],
    )


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = Options()
    parser.add_argument(
        "--days", type=int, help=f"days to generate and backfill (default {d.days})"
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
        help="quick check of the harness: --days 3 --scale 0.02 unless given, README untouched "
        "unless --readme",
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
        days=pick("days"),
        scale=pick("scale"),
        seed=args.seed,
        start=args.start,
        workdir=args.workdir,
        keep=args.keep,
    )


def main(args: argparse.Namespace) -> int:
    return common.run_cli(NAME, args, options_from(args), run, print_table, readme_block)
