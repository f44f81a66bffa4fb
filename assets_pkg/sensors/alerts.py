"""Alerts: a failed run or a failed asset check becomes one JSON line (and a webhook POST).

Every alert is appended to ``<data dir>/alerts/alerts.jsonl`` as one JSON object per line,
written with a single ``write`` under an exclusive ``fcntl`` lock, so concurrent writers
never interleave. When ``ASSETS_PKG_ALERT_WEBHOOK`` is set the same JSON is POSTed there;
a webhook that times out, refuses or answers non-2xx is logged as a warning and never
fails the sensor (the JSON line is the durable record, written first).

Dagster 1.13 has ``run_failure_sensor`` for runs but no sensor kind for asset check
results, so ``check_failure_alert_sensor`` is a plain sensor that reads the
``ASSET_CHECK_EVALUATION`` events of the instance after a cursor (their storage id in the
event log's index, global across runs in SQLite and PostgreSQL storage alike).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._utils.error import SerializableErrorInfo

from assets_pkg.resources import PlatformResource

LOG = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 5.0
#: where ``dagster dev`` serves the UI by default; alerts link there as a hint
DAGSTER_UI_URL = "http://127.0.0.1:3000"
#: check evaluations read per query, and the time a tick may spend before it saves its
#: cursor and leaves the rest to the next tick (a sensor tick times out after 60 s)
BATCH_SIZE = 100
TICK_BUDGET_SECONDS = 30.0

PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


# --- writing and posting ----------------------------------------------------------------


def _utc_iso(timestamp: float | None = None) -> str:
    moment = (
        dt.datetime.now(dt.UTC)
        if timestamp is None
        else dt.datetime.fromtimestamp(timestamp, dt.UTC)
    )
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_line(alert: Mapping[str, Any]) -> str:
    """The alert as one line of JSON (no newline); values JSON cannot hold become text."""
    return json.dumps(alert, sort_keys=True, default=str, ensure_ascii=False)


def append_alert(path: Path, line: str) -> None:
    """Append ``line`` and a newline to ``path`` with one write, under an exclusive lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (line + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            written = os.write(fd, data)
            while written < len(data):  # a regular file takes it whole; be safe anyway
                written += os.write(fd, data[written:])
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _redact(url: str) -> str:
    """Scheme and host only: webhook URLs usually carry a token in the path or query."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


def _scrub(text: str, url: str) -> str:
    """``text`` without the URL's secret parts (some errors quote the URL or its path)."""
    parts = urllib.parse.urlsplit(url)
    secrets = [url, parts.netloc, parts.path, parts.query, parts.username, parts.password]
    secrets += [p for p in parts.path.split("/") if len(p) >= 6]
    for secret in sorted((s for s in secrets if s and s != "/"), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def post_webhook(
    url: str,
    body: str,
    log: logging.Logger | dg.DagsterLogManager | None = None,
    timeout: float = WEBHOOK_TIMEOUT_SECONDS,
) -> bool:
    """POST ``body`` as JSON; True on a 2xx answer. Never raises: a failure is a warning."""
    log = log or LOG
    request = urllib.request.Request(
        url,
        data=body.encode("utf-8"),
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "assets-pkg"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except Exception as exc:  # timeout, refused, DNS, TLS, bad URL: never fail the sensor
        reason = _scrub(f"{type(exc).__name__}: {exc}", url)
        log.warning(f"alert webhook {_redact(url)} failed: {reason}")
        return False
    if not 200 <= status < 300:
        log.warning(f"alert webhook {_redact(url)} answered HTTP {status}")
        return False
    return True


def emit_alert(
    platform: PlatformResource,
    alert: Mapping[str, Any],
    log: logging.Logger | dg.DagsterLogManager | None = None,
) -> str:
    """Write the alert line, then POST it if a webhook is configured; returns the line."""
    settings = platform.settings()
    line = alert_line(alert)
    append_alert(settings.alerts_path, line)
    if settings.alert_webhook:
        post_webhook(settings.alert_webhook, line, log)
    return line


# --- building alerts --------------------------------------------------------------------


def _run_url(run_id: str | None) -> str | None:
    return f"{DAGSTER_UI_URL}/runs/{run_id}" if run_id else None


def _partition_fields(tags: Mapping[str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {"partition": tags.get(PARTITION_TAG)}
    if RANGE_START_TAG in tags:
        fields["partition_range"] = [tags[RANGE_START_TAG], tags.get(RANGE_END_TAG)]
    return fields


#: Dagster's wrappers around what a step raised: "error occurred while executing" and,
#: once a retry policy gives up, "Exceeded max_retries of N"
WRAPPERS = ("DagsterExecutionStepExecutionError", "RetryRequestedFromPolicy")


def _user_error(error: SerializableErrorInfo | None) -> SerializableErrorInfo | None:
    """The exception the step raised, not the wrappers Dagster puts around it."""
    while error is not None and error.cause is not None and error.cls_name in WRAPPERS:
        error = error.cause
    return error


def run_failure_alert(context: dg.RunFailureSensorContext) -> dict[str, Any]:
    run = context.dagster_run
    steps: list[dict[str, Any]] = []
    for event in context.get_step_failure_events():
        error = _user_error(event.step_failure_data.error)
        steps.append(
            {
                "step": event.step_key,
                "error": error.message.strip() if error else None,
                "error_class": error.cls_name if error else None,
            }
        )
    run_message = context.failure_event.message
    if steps:
        message = "; ".join(f"{s['step']}: {s['error']}" for s in steps)
    else:  # the run failed outside any step (a launch error, a reaped process, ...)
        error = context.failure_event.event_specific_data
        error_info = _user_error(getattr(error, "error", None))
        message = error_info.message.strip() if error_info else run_message
    return {
        "kind": "run_failure",
        "ts": _utc_iso(),
        "run_id": run.run_id,
        "job": run.job_name,
        "message": message,
        "run_message": run_message,
        "failed_steps": steps,
        **_partition_fields(run.tags),
        "dagster_url": _run_url(run.run_id),
    }


def _metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {key: getattr(value, "value", value) for key, value in metadata.items()}


def check_failure_alert(
    entry: dg.EventLogEntry, run_tags: Mapping[str, str] | None = None
) -> dict[str, Any]:
    evaluation: dg.AssetCheckEvaluation = entry.dagster_event.event_specific_data
    asset = evaluation.asset_key.to_user_string()
    severity = evaluation.severity.value
    partition_fields = _partition_fields(run_tags or {})
    if evaluation.partition is not None:
        partition_fields["partition"] = evaluation.partition
    where = ""
    if partition_fields["partition"]:
        where = f" (partition {partition_fields['partition']})"
    elif "partition_range" in partition_fields:
        where = " (partitions {}...{})".format(*partition_fields["partition_range"])
    message = f"check {evaluation.check_name} on {asset}{where} failed with severity {severity}"
    if evaluation.description:
        message += f": {evaluation.description}"
    return {
        "kind": "check_failed",
        "ts": _utc_iso(),
        "failed_at": _utc_iso(entry.timestamp),
        "run_id": entry.run_id or None,
        "job": entry.job_name,
        "message": message,
        "check": evaluation.check_name,
        "asset_key": asset,
        **partition_fields,
        "severity": severity,
        "blocking": evaluation.blocking,
        "description": evaluation.description,
        "metadata": _metadata(evaluation.metadata),
        "dagster_url": _run_url(entry.run_id),
    }


# --- the sensors ------------------------------------------------------------------------


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Writes an alert (alerts/alerts.jsonl, and the webhook if set) for every "
    "failed run of this code location.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, platform: PlatformResource):
    emit_alert(platform, run_failure_alert(context), context.log)


def _check_evaluations(
    instance: dg.DagsterInstance, after: int, limit: int
) -> list[tuple[int, dg.EventLogEntry]]:
    """ASSET_CHECK_EVALUATION events with a storage id above ``after``, oldest first."""
    entries = instance.event_log_storage.get_logs_for_all_runs_by_log_id(
        after_cursor=after,
        dagster_event_type=DagsterEventType.ASSET_CHECK_EVALUATION,
        limit=limit,
    )
    return sorted(entries.items())


@dg.sensor(
    name="check_failure_alert_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Writes an alert (alerts/alerts.jsonl, and the webhook if set) for every "
    "failed asset check, ERROR and WARN, once.",
)
def check_failure_alert_sensor(context: dg.SensorEvaluationContext, platform: PlatformResource):
    instance = context.instance
    if not context.cursor:
        # like Dagster's run status sensors: start from now, not from the whole history
        start = instance.event_log_storage.get_maximum_record_id() or -1
        return dg.SensorResult(
            skip_reason="started: alerting on check failures from now on", cursor=str(start)
        )
    cursor = int(context.cursor)
    started = time.monotonic()
    alerted = 0
    run_tags: dict[str, Mapping[str, str]] = {}
    while time.monotonic() - started < TICK_BUDGET_SECONDS:
        batch = _check_evaluations(instance, cursor, BATCH_SIZE)
        for storage_id, entry in batch:
            evaluation = entry.dagster_event.event_specific_data
            if not evaluation.passed:
                if entry.run_id and entry.run_id not in run_tags:
                    run = instance.get_run_by_id(entry.run_id)
                    run_tags[entry.run_id] = run.tags if run else {}
                alert = check_failure_alert(entry, run_tags.get(entry.run_id))
                emit_alert(platform, alert, context.log)
                alerted += 1
            cursor = storage_id
            if time.monotonic() - started >= TICK_BUDGET_SECONDS:
                break
        if len(batch) < BATCH_SIZE:
            break
    return dg.SensorResult(skip_reason=f"{alerted} failed check(s) alerted", cursor=str(cursor))
