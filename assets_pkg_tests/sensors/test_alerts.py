"""The alert sensors, evaluated against a real instance in a temp DAGSTER_HOME.

Runs really fail and checks really fail on that instance; the webhook is a real HTTP
server on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import json
import logging
import multiprocessing
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from assets_pkg.config import ConfigError, Settings, load_settings
from assets_pkg.instance import ensure_instance
from assets_pkg.resources import PlatformResource, build_resources
from assets_pkg.sensors import alerts, check_failure_alert_sensor, run_failure_alert_sensor
from assets_pkg.sensors.alerts import append_alert, post_webhook

# --- a tiny failing job and a tiny asset with failing checks ----------------------------


@dg.op
def explode() -> None:
    raise ValueError("the source system answered 503")


@dg.job
def doomed_job() -> None:
    explode()


DAYS = dg.DailyPartitionsDefinition(start_date="2024-03-01")


@dg.asset(
    key=["staging", "stg_widgets"],
    partitions_def=DAYS,
    check_specs=[
        dg.AssetCheckSpec("stg_widgets__unique_key", asset=["staging", "stg_widgets"]),
        dg.AssetCheckSpec("stg_widgets__row_count", asset=["staging", "stg_widgets"]),
        dg.AssetCheckSpec("stg_widgets__fresh", asset=["staging", "stg_widgets"]),
    ],
)
def stg_widgets():
    """Passes one check, fails one with ERROR and one with WARN (no IO manager involved)."""
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(check_name="stg_widgets__fresh", passed=True)
    yield dg.AssetCheckResult(
        check_name="stg_widgets__unique_key",
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description="3 rows repeat a (widget_id) key",
        metadata={"duplicate_rows": 3, "key": "widget_id"},
    )
    yield dg.AssetCheckResult(
        check_name="stg_widgets__row_count",
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rows": 0},
    )


@dg.asset(check_specs=[dg.AssetCheckSpec("gadgets__not_null_key", asset="gadgets", blocking=True)])
def gadgets():
    """A blocking ERROR check that fails: the check fails and so does the run."""
    yield dg.Output(None)
    yield dg.AssetCheckResult(check_name="gadgets__not_null_key", passed=False)


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def instance(settings: Settings) -> Iterator[dg.DagsterInstance]:
    instance = ensure_instance(settings)  # a real SQLite instance in the temp DAGSTER_HOME
    try:
        yield instance
    finally:
        instance.dispose()


class _Webhook(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, status: int, delay: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _WebhookHandler)
        self.status = status
        self.delay = delay
        self.received: list[tuple[str, str, bytes]] = []  # (path, content type, body)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/T0KEN-S3CRET"


class _WebhookHandler(http.server.BaseHTTPRequestHandler):
    server: _Webhook

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append((self.path, self.headers.get("Content-Type", ""), body))
        time.sleep(self.server.delay)
        try:
            self.send_response(self.server.status)
            self.end_headers()
            self.wfile.write(b"ok" if self.server.status < 300 else b"boom")
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass

    def log_message(self, format: str, *args) -> None:  # keep test output quiet
        pass


def _serve(status: int, delay: float = 0.0) -> Iterator[_Webhook]:
    server = _Webhook(status, delay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def webhook_ok() -> Iterator[_Webhook]:
    yield from _serve(200)


@pytest.fixture
def webhook_500() -> Iterator[_Webhook]:
    yield from _serve(500)


@pytest.fixture
def webhook_slow() -> Iterator[_Webhook]:
    yield from _serve(200, delay=2.0)


def _refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def _platform(settings: Settings) -> PlatformResource:
    return build_resources(settings)["platform"]


def _alerts(settings: Settings) -> list[dict]:
    if not settings.alerts_path.exists():
        return []
    return [json.loads(line) for line in settings.alerts_path.read_text().splitlines()]


def _fail_a_run(instance: dg.DagsterInstance, settings: Settings) -> dg.RunFailureSensorContext:
    result = doomed_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    return _failure_context(instance, result.run_id, _platform(settings))


def _failure_context(
    instance: dg.DagsterInstance, run_id: str, platform: PlatformResource
) -> dg.RunFailureSensorContext:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    assert len(records) == 1
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_event=records[0].event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run_id),
        resources={"platform": platform},
    ).for_run_failure()


def _check_tick(
    instance: dg.DagsterInstance, settings: Settings, cursor: str | None
) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"platform": _platform(settings)}
    )
    result = check_failure_alert_sensor(context)
    assert isinstance(result, dg.SensorResult)
    assert not result.run_requests
    return result


# --- settings -----------------------------------------------------------------------------


def test_settings_alert_webhook_and_path(settings: Settings):
    assert settings.alert_webhook is None
    assert settings.alerts_path == settings.data_dir / "alerts" / "alerts.jsonl"
    env = {"ASSETS_PKG_ALERT_WEBHOOK": "  https://hooks.example.com/x  "}
    assert load_settings(env).alert_webhook == "https://hooks.example.com/x"
    assert load_settings({"ASSETS_PKG_ALERT_WEBHOOK": ""}).alert_webhook is None
    with pytest.raises(ConfigError, match="ASSETS_PKG_ALERT_WEBHOOK"):
        load_settings({"ASSETS_PKG_ALERT_WEBHOOK": "file:///etc/passwd"})


def test_webhook_from_the_environment_is_an_env_var_in_the_resource(settings, monkeypatch):
    monkeypatch.setenv("ASSETS_PKG_ALERT_WEBHOOK", "https://hooks.example.com/T0KEN")
    platform = build_resources(load_settings())["platform"]
    assert isinstance(platform.alert_webhook, dg.EnvVar)  # the UI shows the name, not the URL
    assert platform.settings().alert_webhook == "https://hooks.example.com/T0KEN"


def test_sensors_load_in_definitions_with_the_platform_resource(settings):
    defs = dg.Definitions(
        jobs=[doomed_job],
        sensors=[run_failure_alert_sensor, check_failure_alert_sensor],
        resources=build_resources(settings),
    )
    dg.Definitions.validate_loadable(defs)
    for name in ("run_failure_alert_sensor", "check_failure_alert_sensor"):
        sensor = defs.resolve_sensor_def(name)
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


# --- run failures -------------------------------------------------------------------------


def test_run_failure_writes_one_structured_alert(settings, instance):
    context = _fail_a_run(instance, settings)
    run_failure_alert_sensor(context)

    [alert] = _alerts(settings)
    run_id = context.dagster_run.run_id
    assert alert["kind"] == "run_failure"
    assert alert["run_id"] == run_id
    assert alert["job"] == "doomed_job"
    assert alert["message"] == "explode: ValueError: the source system answered 503"
    assert alert["failed_steps"] == [
        {
            "step": "explode",
            "error": "ValueError: the source system answered 503",
            "error_class": "ValueError",
        }
    ]
    assert "doomed_job" in alert["run_message"]
    assert alert["partition"] is None
    assert alert["dagster_url"].endswith(f"/runs/{run_id}")
    assert alert["ts"].endswith("Z")
    assert dt.datetime.fromisoformat(alert["ts"]).utcoffset() == dt.timedelta(0)


def test_run_failure_alert_names_the_partition_and_the_blocking_check(settings, instance):
    result = dg.materialize([gadgets], instance=instance, raise_on_error=False)
    assert not result.success
    run_failure_alert_sensor(_failure_context(instance, result.run_id, _platform(settings)))
    [alert] = _alerts(settings)
    assert alert["kind"] == "run_failure"
    assert "gadgets__not_null_key" in alert["message"]
    assert alert["failed_steps"][0]["error_class"] == "DagsterAssetCheckFailedError"

    doomed = doomed_job.execute_in_process(
        instance=instance, raise_on_error=False, tags={"dagster/partition": "2024-03-02"}
    )
    run_failure_alert_sensor(_failure_context(instance, doomed.run_id, _platform(settings)))
    assert _alerts(settings)[-1]["partition"] == "2024-03-02"


# --- failed checks ------------------------------------------------------------------------


def test_failed_checks_alert_once_each_with_their_severity(settings, instance):
    first = _check_tick(instance, settings, cursor=None)  # starts from now
    assert first.cursor is not None
    assert _alerts(settings) == []

    result = dg.materialize(
        [stg_widgets], instance=instance, partition_key="2024-03-02", raise_on_error=False
    )
    assert result.success  # non-blocking checks: the run itself succeeds

    second = _check_tick(instance, settings, first.cursor)
    alerts = _alerts(settings)
    assert [a["check"] for a in alerts] == ["stg_widgets__unique_key", "stg_widgets__row_count"]
    error, warn = alerts
    assert error["kind"] == "check_failed"
    assert error["severity"] == "ERROR"
    assert error["asset_key"] == "staging/stg_widgets"
    assert error["partition"] == "2024-03-02"
    assert error["run_id"] == result.run_id
    assert error["job"] == result.job_def.name
    assert error["description"] == "3 rows repeat a (widget_id) key"
    assert error["metadata"] == {"duplicate_rows": 3, "key": "widget_id"}
    assert error["blocking"] is False
    assert error["message"] == (
        "check stg_widgets__unique_key on staging/stg_widgets (partition 2024-03-02) "
        "failed with severity ERROR: 3 rows repeat a (widget_id) key"
    )
    assert error["dagster_url"].endswith(f"/runs/{result.run_id}")
    assert warn["severity"] == "WARN"
    assert warn["metadata"] == {"rows": 0}
    assert warn["description"] is None

    third = _check_tick(instance, settings, second.cursor)  # the next tick: nothing new
    assert len(_alerts(settings)) == 2
    assert third.cursor == second.cursor

    dg.materialize([gadgets], instance=instance, raise_on_error=False)  # a blocking failure
    _check_tick(instance, settings, third.cursor)
    assert [a["check"] for a in _alerts(settings)][2:] == ["gadgets__not_null_key"]
    assert _alerts(settings)[2]["blocking"] is True


def test_check_failures_before_the_first_tick_are_not_replayed(settings, instance):
    dg.materialize([stg_widgets], instance=instance, partition_key="2024-03-01")
    first = _check_tick(instance, settings, cursor=None)
    _check_tick(instance, settings, first.cursor)
    assert _alerts(settings) == []


def test_a_ranged_run_names_its_range_and_batches_are_read_to_the_end(
    settings, instance, monkeypatch
):
    monkeypatch.setattr(alerts, "BATCH_SIZE", 1)  # several queries in one tick
    cursor = _check_tick(instance, settings, None).cursor
    dg.materialize(
        [stg_widgets],
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": "2024-03-01",
            "dagster/asset_partition_range_end": "2024-03-05",
        },
    )
    _check_tick(instance, settings, cursor)
    alerts_written = _alerts(settings)
    assert [a["severity"] for a in alerts_written] == ["ERROR", "WARN"]
    assert alerts_written[0]["partition"] is None
    assert alerts_written[0]["partition_range"] == ["2024-03-01", "2024-03-05"]
    assert "(partitions 2024-03-01...2024-03-05)" in alerts_written[0]["message"]


# --- the webhook --------------------------------------------------------------------------


def test_webhook_receives_exactly_the_jsonl_line(settings, instance, webhook_ok, monkeypatch):
    monkeypatch.setenv("ASSETS_PKG_ALERT_WEBHOOK", webhook_ok.url)
    settings = load_settings()
    run_failure_alert_sensor(_fail_a_run(instance, settings))

    line = settings.alerts_path.read_text()
    [(path, content_type, body)] = webhook_ok.received
    assert path == "/hooks/T0KEN-S3CRET"
    assert content_type.startswith("application/json")
    assert body.decode() + "\n" == line

    cursor = _check_tick(instance, settings, None).cursor
    dg.materialize([stg_widgets], instance=instance, partition_key="2024-03-03")
    _check_tick(instance, settings, cursor)
    lines = settings.alerts_path.read_text().splitlines()
    assert [b.decode() for _, _, b in webhook_ok.received] == lines
    assert len(lines) == 3


@pytest.mark.parametrize("failure", ["http_500", "refused"])
def test_a_failing_webhook_never_loses_the_alert(settings, instance, webhook_500, failure):
    url = webhook_500.url if failure == "http_500" else _refused_url()
    settings = dataclasses.replace(settings, alert_webhook=url)
    platform = _platform(settings)

    result = doomed_job.execute_in_process(instance=instance, raise_on_error=False)
    run_failure_alert_sensor(_failure_context(instance, result.run_id, platform))  # no raise
    cursor = _check_tick(instance, settings, None).cursor
    dg.materialize([stg_widgets], instance=instance, partition_key="2024-03-04")
    _check_tick(instance, settings, cursor)  # no raise

    assert [a["kind"] for a in _alerts(settings)] == ["run_failure", "check_failed", "check_failed"]
    assert len(webhook_500.received) == (3 if failure == "http_500" else 0)


def test_post_webhook_warns_without_the_token(webhook_500, caplog):
    log = logging.getLogger("assets_pkg_tests.alerts")
    with caplog.at_level(logging.WARNING, logger=log.name):
        assert post_webhook(webhook_500.url, '{"kind": "x"}', log) is False
        assert post_webhook(_refused_url(), '{"kind": "x"}', log) is False
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "HTTP 500" in messages[0]
    assert all("T0KEN" not in m for m in messages)


def test_post_webhook_times_out_instead_of_hanging(webhook_slow, caplog):
    log = logging.getLogger("assets_pkg_tests.alerts")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger=log.name):
        assert post_webhook(webhook_slow.url, "{}", log, timeout=0.3) is False
    assert time.monotonic() - started < 1.5
    assert "timed out" in caplog.records[0].getMessage().lower()


def test_post_webhook_succeeds_on_2xx(webhook_ok):
    assert post_webhook(webhook_ok.url, '{"kind": "x"}') is True
    assert webhook_ok.received[0][2] == b'{"kind": "x"}'


# --- the file -----------------------------------------------------------------------------


def _append_many(path: str, worker: int, count: int) -> None:
    for i in range(count):
        append_alert(Path(path), json.dumps({"worker": worker, "i": i, "pad": "x" * 9000}))


def test_concurrent_writers_never_interleave_lines(tmp_path):
    path = tmp_path / "alerts" / "alerts.jsonl"  # the folder does not exist yet
    # spawn, not fork: a server thread another test left running could hold a lock at fork
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_append_many, args=(str(path), w, 50)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=60)
        assert p.exitcode == 0
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted((r["worker"], r["i"]) for r in records) == [
        (w, i) for w in range(4) for i in range(50)
    ]
