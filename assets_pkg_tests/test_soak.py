"""Soak: a real daemon (landing sensor and automation on) while a producer lands files
continuously — orders with their items, payments, events, redeliveries, some bad rows and
some unreadable files — and, in another process, backfills over overlapping ranges and
schedule ticks run one after another. At the end nothing is lost or doubled: every file is
kept once, the warehouse holds exactly the valid records the producer wrote, the rejects are
exactly the bad rows planted, and the daemon's memory stays flat.

How long files land is ``--soak-seconds`` / ``ASSETS_PKG_SOAK_SECONDS`` (45 s by default).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets_pkg.cli.main import do_backfill
from assets_pkg.config import Settings
from assets_pkg.lake.manifest import Manifest
from assets_pkg_tests.conftest import TABLE_KEYS, use_temp_platform
from assets_pkg_tests.streaming.test_daemon_crash import (
    WAIT_S,
    Daemon,
    cmdline,
    describe_runs,
    drain,
    is_run_worker,
    kept_files,
    rss_bytes,
    runs_with,
    start_daemon_home,
    stopped_runs,
    wait_until,
)

START, END = dt.date(2024, 3, 1), dt.date(2024, 3, 7)
DAYS = (END - START).days + 1
PRODUCTS = 12
CUSTOMERS = 30
MIB = 1024 * 1024


@dataclass
class Produced:
    """What the producer landed, counted independently of the platform."""

    files: list[str] = field(default_factory=list)
    bad_files: list[str] = field(default_factory=list)
    orders: set[str] = field(default_factory=set)
    items: set[tuple[str, int]] = field(default_factory=set)
    payments: set[str] = field(default_factory=set)
    events: set[str] = field(default_factory=set)
    bad_rows: list[tuple[str, str, int]] = field(default_factory=list)


class Producer:
    """Writes each file whole under a temporary name, then renames it into place."""

    def __init__(self, settings: Settings, seed: int) -> None:
        self.settings = settings
        self.rng = random.Random(seed)
        self.out = Produced()
        self.n = 0

    def _put(self, source: str, name: str, data: bytes, bad: bool = False) -> None:
        folder = self.settings.landing_dir / source
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f"{name}.partial"
        partial.write_bytes(data)
        os.replace(partial, folder / name)
        (self.out.bad_files if bad else self.out.files).append(f"{source}/{name}")

    def _ts(self) -> str:
        day = START + dt.timedelta(days=self.rng.randrange(DAYS))
        return f"{day}T{self.rng.randrange(24):02d}:{self.rng.randrange(60):02d}:00Z"

    def dimensions(self) -> None:
        products = "product_id,name,category,list_price,unit_cost,updated_at\n" + "".join(
            f"P{p},Product {p},cat{p % 3},{10 + p}.00,{5 + p}.00,2024-01-01T00:00:00Z\n"
            for p in range(PRODUCTS)
        )
        customers = "customer_id,email,status,country,signup_ts,updated_at\n" + "".join(
            f"C{c},c{c}@example.com,active,US,2023-12-01T00:00:00Z,2024-01-01T00:00:00Z\n"
            for c in range(CUSTOMERS)
        )
        self._put("products", "products_00000.csv", products.encode())
        self._put("customers", "customers_00000.csv", customers.encode())

    def orders_with_items(self) -> None:
        n, self.n = self.n, self.n + 1
        orders, items = ["order_id,customer_id,order_ts,status,channel"], []
        items.append("order_id,line_number,product_id,quantity,unit_price")
        bad_order = self.rng.random() < 0.3
        for j in range(self.rng.randint(2, 6)):
            oid = f"O{n}-{j}"
            status = self.rng.choice(["placed", "shipped", "delivered", "cancelled"])
            if bad_order and j == 0:
                # a bare date is not a timestamp; the order is rejected and has no items
                orders.append(f"{oid},C{j},{START},placed,web")
                self.out.bad_rows.append(("orders", f"orders_{n:05d}.csv", j + 1))
                continue
            orders.append(f"{oid},C{self.rng.randrange(CUSTOMERS)},{self._ts()},{status},web")
            self.out.orders.add(oid)
            for line in range(1, self.rng.randint(1, 3) + 1):
                product = self.rng.randrange(PRODUCTS)
                items.append(f"{oid},{line},P{product},{self.rng.randint(1, 4)},{10 + product}.50")
                self.out.items.add((oid, line))
        if self.rng.random() < 0.3:
            # a quantity of zero breaks the contract (> 0)
            items.append(f"O{n}-0,99,P1,0,1.00")
            self.out.bad_rows.append(("order_items", f"order_items_{n:05d}.csv", len(items) - 1))
        self._put("orders", f"orders_{n:05d}.csv", ("\n".join(orders) + "\n").encode())
        self._put("order_items", f"order_items_{n:05d}.csv", ("\n".join(items) + "\n").encode())

    def payments(self) -> None:
        n, self.n = self.n, self.n + 1
        name = f"payments_{n:05d}.jsonl"
        lines = []
        for j in range(self.rng.randint(2, 6)):
            row = {
                "payment_id": f"PAY{n}-{j}",
                "order_id": f"O{self.rng.randrange(max(n, 1))}-0",
                "amount": f"{self.rng.randint(1, 500)}.25",
                "method": self.rng.choice(["card", "paypal", "bank_transfer", "gift_card"]),
                "status": self.rng.choice(["settled", "failed", "refunded"]),
                "paid_ts": self._ts(),
            }
            if j == 1 and self.rng.random() < 0.3:
                row["currency"] = "EUR"  # only USD is in the domain
                self.out.bad_rows.append(("payments", name, j + 1))
            else:
                self.out.payments.add(row["payment_id"])
            lines.append(json.dumps(row))
        self._put("payments", name, ("\n".join(lines) + "\n").encode())

    def events(self) -> None:
        n, self.n = self.n, self.n + 1
        name = f"events_{n:05d}.jsonl"
        lines, bad = [], []
        for j in range(self.rng.randint(3, 10)):
            event = {
                "event_id": f"E{n}-{j}",
                "session_id": f"S{n}-{j}",  # one session per event: sessions count events
                "user_id": f"U{self.rng.randrange(50)}",
                "event_type": self.rng.choice(["page_view", "product_view", "add_to_cart"]),
                "event_ts": self._ts(),
            }
            if j == 2 and self.rng.random() < 0.3:
                event["event_type"] = "hover"
                bad.append(j + 1)
            else:
                self.out.events.add(event["event_id"])
            lines.append(json.dumps(event))
        data = ("\n".join(lines) + "\n").encode()
        names = [name]
        if self.rng.random() < 0.2:
            # at-least-once delivery: the same events again under another name; its good
            # events are dropped as repeats, its bad row is a bad row of that file too
            names.append(f"events_{n:05d}_again.jsonl")
        for each in names:
            self._put("events", each, data)
            self.out.bad_rows.extend(("events", each, row) for row in bad)

    def bad_file(self) -> None:
        n, self.n = self.n, self.n + 1
        if self.rng.random() < 0.5:
            # a required column missing from the header: the whole file is quarantined
            self._put("orders", f"orders_{n:05d}.csv", b"order_id,customer_id\nX1,C1\n", True)
        else:
            self._put("events", f"events_{n:05d}.jsonl", b'{"event_id": "\xff\xfe"}\n', True)

    def step(self) -> None:
        pick = self.rng.random()
        if pick < 0.35:
            self.orders_with_items()
        elif pick < 0.55:
            self.payments()
        elif pick < 0.95:
            self.events()
        else:
            self.bad_file()


def _started(pid: int) -> int:
    """Start time of a process, in clock ticks since boot (0 when it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(raw[raw.rindex(")") + 2 :].split()[19])


class Sampler:
    """Every second: RSS of the daemon plus its current code server (the daemon replaces
    its code server from time to time, and the old one lingers until its heartbeat times
    out, so only the youngest counts), and of the whole tree with run workers."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.samples: list[tuple[float, int, int]] = []
        self.servers: set[int] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(1.0):
            pids = self.daemon.pids()
            if not self.daemon.proc or not pids:
                continue
            servers = [p for p in pids if p != self.daemon.proc.pid and not is_run_worker(p)]
            servers = [p for p in servers if "api grpc" in cmdline(p)]
            self.servers.update(servers)
            current = max(servers, key=_started, default=None)
            resident = rss_bytes(self.daemon.proc.pid) + (rss_bytes(current) if current else 0)
            total = sum(rss_bytes(p) for p in pids)
            self.samples.append((time.monotonic(), resident, total))


def _activity(deadline: float, seed: int, log: Path, commands: list[str]) -> list[str]:
    """Backfills over overlapping ranges and schedule ticks, in turn, one process at a time,
    until the deadline; returns a line per command that failed."""
    rng = random.Random(seed)
    failures = []
    n = 0
    # at least one of each, however slow the machine
    while time.monotonic() < deadline or n < 2:
        if n % 2 == 1:
            day = START + dt.timedelta(days=rng.randrange(1, DAYS))
            args = [
                "-m",
                "assets_pkg_tests.launcher",
                "schedule",
                "daily_pipeline_schedule",
                f"{day}T02:00",
            ]
        else:
            first = rng.randrange(DAYS)
            last = min(DAYS - 1, first + rng.randrange(4))
            args = [
                "-m",
                "assets_pkg.cli.main",
                "backfill",
                "--start",
                str(START + dt.timedelta(days=first)),
                "--end",
                str(START + dt.timedelta(days=last)),
            ]
        n += 1
        commands.append(" ".join(args[1:]))
        with open(log, "ab") as out:
            out.write(f"\n=== {' '.join(args[1:])} ===\n".encode())
            out.flush()
            code = subprocess.run(
                [sys.executable, *args],
                env=dict(os.environ),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=WAIT_S * 2,
            ).returncode
        if code != 0:
            failures.append(f"{' '.join(args[1:])} exited {code}")
    return failures


def _count(conn: duckdb.DuckDBPyConnection, sql: str) -> int:
    return conn.execute(sql).fetchone()[0]


def test_soak_nothing_lost_nothing_doubled_memory_flat(
    soak_seconds: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = use_temp_platform(tmp_path, monkeypatch, start=START, end=END)
    monkeypatch.setenv("ASSETS_PKG_SENSOR_INTERVAL_S", "1")
    monkeypatch.setenv("ASSETS_PKG_SENSOR_BATCH_FILES", "20")
    # the producer plants a bad row in about a third of its files, far above any sane reject
    # threshold: this test is about durability, so no day is held back for its reject rate
    quality_file = tmp_path / "quality.json"
    quality_file.write_text('{"reject_rate_max": 1.0}', encoding="utf-8")
    monkeypatch.setenv("ASSETS_PKG_QUALITY_FILE", str(quality_file))
    instance = start_daemon_home(settings, tmp_path / "dagster_home")
    daemon = Daemon(tmp_path, tmp_path / "daemon.log")
    producer = Producer(settings, seed=int(soak_seconds))
    sampler = Sampler(daemon)
    began = time.monotonic()
    try:
        daemon.start()
        producer.dimensions()
        # memory is sampled from the first run on: start-up and code loading are not a leak
        wait_until(
            lambda: runs_with(instance, [dg.DagsterRunStatus.SUCCESS]),
            WAIT_S,
            lambda: f"a first run to succeed\n{describe_runs(instance)}\n{daemon.tail()}",
        )
        sampling = threading.Thread(target=sampler.run, daemon=True)
        sampling.start()
        deadline = time.monotonic() + soak_seconds
        failures: list[str] = []
        commands: list[str] = []
        activity = threading.Thread(
            target=lambda: failures.extend(
                _activity(deadline, 1, tmp_path / "activity.log", commands)
            ),
            daemon=True,
        )
        activity.start()
        while time.monotonic() < deadline:
            daemon.check_alive()
            producer.step()
            time.sleep(producer.rng.uniform(0.05, 0.5))
        activity.join(WAIT_S * 2)
        assert not activity.is_alive(), "a backfill or schedule tick never ended"
        assert not failures, (
            f"{failures}\n{(tmp_path / 'activity.log').read_text(errors='replace')[-3000:]}"
        )
        drain(settings, instance, daemon)
        drained = dt.datetime.now(dt.UTC)
        sampler.stop.set()
        sampling.join(10)
    finally:
        sampler.stop.set()
        daemon.stop()
    landed_s = time.monotonic() - began
    stopped_runs(instance)
    runs = instance.get_run_records()
    by_job: dict[str, int] = {}
    for r in runs:
        by_job[r.dagster_run.job_name] = by_job.get(r.dagster_run.job_name, 0) + 1
    # a run asked for between the drain and the stop may be cut short by the stop
    failed = [
        r
        for r in runs
        if r.dagster_run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
        and r.create_timestamp < drained
    ]
    assert not failed, f"runs failed during the soak: {describe_runs(instance)}"

    out = producer.out
    # every landed file kept exactly once; the unreadable ones in quarantine
    kept = kept_files(settings)
    assert set(kept) == set(out.files) | set(out.bad_files)
    quarantined = {
        f"{p.parent.name}/{p.name}"
        for p in settings.quarantine_dir.glob("*/*")
        if not p.name.endswith(".error.json")
    }
    assert quarantined == set(out.bad_files)
    assert Manifest(settings.manifest_path).counts() == {
        "loaded": len(out.files),
        **({"quarantined": len(out.bad_files)} if out.bad_files else {}),
    }

    # whatever the automation and the backfills left behind, one last pass brings every
    # day current; the counts then are the producer's
    do_backfill(settings, START, END)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        counts = {
            "orders": _count(conn, "SELECT count(*) FROM warehouse.fct_orders"),
            "items": _count(conn, "SELECT count(*) FROM warehouse.fct_order_items"),
            "payments": _count(conn, "SELECT count(*) FROM warehouse.fct_payments"),
            "events": _count(conn, "SELECT sum(event_count) FROM warehouse.fct_sessions"),
        }
        for table, key in TABLE_KEYS.items():
            doubled = _count(
                conn,
                f"SELECT count(*) FROM (SELECT {', '.join(key)} FROM {table} "
                f"GROUP BY ALL HAVING count(*) > 1)",
            )
            assert doubled == 0, f"{table} repeats a key {key}"
        open_rejects = sorted(
            conn.execute(
                "SELECT source, file_name, row_number FROM quarantine.rejects "
                "WHERE resolved_at IS NULL ORDER BY ALL"
            ).fetchall()
        )
        resolved = conn.execute(
            "SELECT DISTINCT reason FROM quarantine.rejects WHERE resolved_at IS NOT NULL"
        ).fetchall()
        doubled_rejects = _count(
            conn,
            "SELECT count(*) FROM (SELECT source, file_name, row_number FROM quarantine.rejects "
            "GROUP BY ALL HAVING count(*) > 1)",
        )
    assert counts == {
        "orders": len(out.orders),
        "items": len(out.items),
        "payments": len(out.payments),
        "events": len(out.events),
    }
    assert open_rejects == sorted(out.bad_rows)
    assert doubled_rejects == 0
    assert set(resolved) <= {("orphan_order_item",)}

    # memory flat: the last third of the soak against the first third
    samples = sampler.samples
    assert len(samples) >= 9, f"too few memory samples: {len(samples)}"
    third = len(samples) // 3
    first = statistics.median(s[1] for s in samples[:third])
    last = statistics.median(s[1] for s in samples[-third:])
    first_all = statistics.median(s[2] for s in samples[:third])
    last_all = statistics.median(s[2] for s in samples[-third:])
    print(
        f"\nsoak: {soak_seconds:.0f}s landing, {landed_s:.0f}s until drained; files "
        f"{len(out.files)} (+{len(out.bad_files)} bad); orders {len(out.orders)}, items "
        f"{len(out.items)}, payments {len(out.payments)}, events {len(out.events)}, bad rows "
        f"{len(out.bad_rows)}; {len(commands)} backfills and schedule ticks alongside; "
        f"runs {by_job}; daemon+code server RSS median "
        f"{first / MIB:.0f} -> {last / MIB:.0f} MiB (x{last / first:.2f}), with run workers "
        f"{first_all / MIB:.0f} -> {last_all / MIB:.0f} MiB (x{last_all / first_all:.2f}); "
        f"{len(samples)} samples, {len(sampler.servers)} code server(s) seen"
    )
    assert last <= 1.5 * first + 50 * MIB, (
        f"daemon memory grew: median {first / MIB:.0f} MiB in the first third, "
        f"{last / MIB:.0f} MiB in the last (x{last / first:.2f})"
    )
