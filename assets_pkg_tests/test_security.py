"""Security: no SQL from values, and secrets never reach what a user can see.

Hostile values come in where a user or a deployment can put them (a partition key on
either command line, an ``ASSETS_PKG_*`` variable) and each is refused with a one-line
reason or used as plain data, the warehouse untouched. Secrets planted in the
environment are then looked for in everything the runs leave behind.
"""

from __future__ import annotations

import http.server
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets_pkg.config import Settings
from assets_pkg.instance import ensure_instance
from assets_pkg.resources import build_resources
from assets_pkg.sensors import run_failure_alert_sensor
from assets_pkg.sensors.alerts import post_webhook
from assets_pkg_tests.conftest import land, use_temp_platform

DAY = "2024-03-02"
ORDERS = (
    "order_id,customer_id,order_ts,status,channel\n"
    "O1,C1,2024-03-02T10:00:00Z,placed,web\n"
    "O2,C2,2024-03-02T11:00:00Z,shipped,web\n"
    "O3,C2,not-a-time,placed,web\n"
)
ITEMS = "order_id,line_number,product_id,quantity,unit_price\nO1,1,P1,2,10.00\nO2,1,P1,1,10.00\n"
PRODUCTS = (
    "product_id,name,category,list_price,unit_cost,updated_at\n"
    "P1,Widget,Tools,10.00,4.00,2024-01-01T00:00:00Z\n"
)
HOSTILE = "2024-03-02'; DROP TABLE warehouse.fct_orders; --"


def _cli(*args: str, env: dict[str, str] | None = None, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "assets_pkg.cli.main", *args],
        env=env or dict(os.environ),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    return lines[0]


def _warehouse(settings: Settings) -> dict[str, list]:
    """Every table of the warehouse with its rows: what a DROP or DELETE would change."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        tables = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables ORDER BY ALL"
        ).fetchall()
        return {t: sorted(conn.execute(f"FROM {t}").fetchall(), key=repr) for (t,) in tables}


def _build(settings: Settings, cwd: Path) -> None:
    land(settings, "products", "products_1.csv", PRODUCTS)
    land(settings, "orders", "orders_1.csv", ORDERS)
    land(settings, "order_items", "order_items_1.csv", ITEMS)
    assert _cli("ingest", cwd=cwd).returncode == 0
    done = _cli("backfill", "--start", DAY, "--end", DAY, cwd=cwd)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def built_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One platform, ingested and built, shared by the tests that only try to break it."""
    root = tmp_path_factory.mktemp("built")
    with pytest.MonkeyPatch.context() as mp:
        _build(use_temp_platform(root, mp), root)
    return root


@pytest.fixture
def built(built_root: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = use_temp_platform(built_root, monkeypatch)
    assert _warehouse(settings)["warehouse.fct_orders"], "there is something to destroy"
    return settings


# --- injection --------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--start", "--end"])
def test_sql_in_a_backfill_date_is_refused_in_one_line(built, tmp_path, option):
    before = _warehouse(built)
    args = {"--start": DAY, "--end": DAY} | {option: HOSTILE}
    line = _one_line(_cli("backfill", *[x for kv in args.items() for x in kv], cwd=tmp_path))
    assert f"{option} must be a date as YYYY-MM-DD" in line
    assert _warehouse(built) == before


def test_sql_in_a_dagster_partition_key_is_refused(built, tmp_path):
    before = _warehouse(built)
    result = subprocess.run(
        [
            "dagster",
            "asset",
            "materialize",
            "-m",
            "assets_pkg.definitions",
            "--select",
            "staging/stg_orders",
            "--partition",
            HOSTILE,
        ],
        env=dict(os.environ),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    # Dagster's own message, on the last line, names the key as not a partition
    assert HOSTILE in last and "partition" in last.lower(), result.stderr[-2000:]
    assert _warehouse(built) == before


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ASSETS_PKG_START_DATE", HOSTILE, "ASSETS_PKG_START_DATE must be a date"),
        ("ASSETS_PKG_END_DATE", HOSTILE, "ASSETS_PKG_END_DATE must be a date"),
        ("ASSETS_PKG_SENSOR_SOURCES", "orders; DROP TABLE x", "unknown source(s)"),
        ("ASSETS_PKG_REALTIME_DAYS", "2; DROP TABLE x", "must be a whole number"),
        ("ASSETS_PKG_DAILY_CRON", "0 2 * * *'; DROP TABLE x", "must be a cron expression"),
        ("ASSETS_PKG_ALERT_WEBHOOK", "'; DROP TABLE x; --", "must be an http:// or https://"),
    ],
)
def test_hostile_settings_are_refused_in_one_line(built, tmp_path, variable, value, message):
    before = _warehouse(built)
    line = _one_line(_cli("backfill", "--start", DAY, "--end", DAY, cwd=tmp_path,
                          env=dict(os.environ) | {variable: value}))  # fmt: skip
    assert message in line
    assert _warehouse(built) == before


def test_a_warehouse_path_with_quotes_is_only_a_path(built, tmp_path):
    before = _warehouse(built)
    hostile = tmp_path / "it's'; DROP TABLE warehouse.fct_orders; --.duckdb"
    env = dict(os.environ) | {"ASSETS_PKG_WAREHOUSE_PATH": str(hostile)}
    result = _cli("backfill", "--start", DAY, "--end", DAY, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert hostile.is_file(), "the value named a file, nothing else"
    with duckdb.connect(str(hostile), read_only=True) as conn:
        orders = sorted(conn.execute("FROM warehouse.fct_orders").fetchall(), key=repr)
    assert orders == before["warehouse.fct_orders"], "the same rows, in the file it names"
    assert _warehouse(built) == before


# --- secrets ----------------------------------------------------------------------------

SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAPLANTED7Q3XK9ZD",
    "AWS_SECRET_ACCESS_KEY": "planted/wJalrXUtnFEMI+K7MDENG9bPxRfiCY",
    "DAGSTER_PG_PASSWORD": "pg-planted-pa55word-77",
}
WEBHOOK_TOKEN = "T0KEN-planted-5150"
WEBHOOK_QUERY = "sig-planted-8086"


class _Webhook(http.server.ThreadingHTTPServer):
    """A webhook that answers 500 and keeps what it received."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[bytes] = []

    @property
    def url(self) -> str:
        return (
            f"http://127.0.0.1:{self.server_address[1]}/hooks/{WEBHOOK_TOKEN}?token={WEBHOOK_QUERY}"
        )


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Webhook

    def do_POST(self) -> None:
        self.server.received.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(500)
        self.end_headers()
        self.wfile.write(b"internal error")

    def log_message(self, format: str, *args) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[_Webhook]:
    server = _Webhook()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _planted(webhook: _Webhook) -> list[str]:
    return [*SECRETS.values(), WEBHOOK_TOKEN, WEBHOOK_QUERY]


def _leaks(text: str | bytes, planted: list[str]) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [s for s in planted if s.encode() in data]


def test_planted_secrets_never_reach_logs_events_alerts_or_files(
    settings, tmp_path, webhook, monkeypatch, caplog, capfd
):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ASSETS_PKG_ALERT_WEBHOOK", webhook.url)
    planted = _planted(webhook)
    outputs: list[str] = []

    land(settings, "products", "products_1.csv", PRODUCTS)
    land(settings, "orders", "orders_1.csv", ORDERS)
    land(settings, "order_items", "order_items_1.csv", ITEMS)
    for args in (["ingest"], ["backfill", "--start", DAY, "--end", DAY]):
        done = _cli(*args, cwd=tmp_path)
        outputs += [done.stdout, done.stderr]
        assert done.returncode == 0, done.stderr

    # a run that fails: a lake file is corrupt
    (lake_file,) = (Path(settings.lake_url) / "lake" / "orders").rglob("*.parquet")
    lake_file.write_bytes(b"not parquet")
    failed = _cli("backfill", "--start", DAY, "--end", DAY, cwd=tmp_path)
    outputs += [failed.stdout, failed.stderr]
    assert failed.returncode == 1

    # the alert sensor sees the failed run, writes the alert and posts to the webhook (500)
    instance = ensure_instance(settings)
    (run,) = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    (record,) = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_event=record.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"platform": build_resources()["platform"]},
    ).for_run_failure()
    with caplog.at_level(logging.DEBUG):
        run_failure_alert_sensor(context)
        # and a webhook URL that cannot even be sent (its error would quote the path)
        post_webhook(webhook.url.replace("/hooks/", "/ho oks/"), "{}", logging.getLogger("t"))
    captured = capfd.readouterr()
    # the sensor's own log goes to Dagster's handlers (the terminal), the rest to logging
    seen = caplog.text + captured.out + captured.err
    assert len(webhook.received) == 1, "the alert was posted"
    assert "answered HTTP 500" in seen
    assert "failed: InvalidURL" in seen

    found: dict[str, list[str]] = {}

    def look(where: str, content: str | bytes) -> None:
        if leaked := _leaks(content, planted):
            found[where] = leaked

    for i, text in enumerate(outputs):
        look(f"command output {i}", text)
    look("test process output and log records", seen)
    for body in webhook.received:
        look("webhook body", body)
    for run in instance.get_runs():
        look(f"run {run.run_id} (tags, config)", dg.serialize_value(run))
        for rec in instance.get_records_for_run(run.run_id).records:
            look(f"event {rec.storage_id} of {run.run_id}", dg.serialize_value(rec.event_log_entry))
    # everything on disk: instance storage, compute logs, alerts.jsonl, notes, the warehouse
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert settings.alerts_path in files
    for path in files:
        look(str(path), path.read_bytes())
    assert found == {}
