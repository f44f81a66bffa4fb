"""One Dagster instance for the CLI and the UI, created once, under a lock."""

from __future__ import annotations

import fcntl
import json
import os
import random
import shutil
import socket
import time
from pathlib import Path

import dagster as dg
import sqlalchemy.exc

from assets_pkg.config import Settings

TEMPLATE = Path(__file__).with_name("dagster.yaml")


def dagster_home(settings: Settings) -> Path:
    """``DAGSTER_HOME`` if set, else ``<data dir>/.dagster`` (the one ``dagster dev`` uses)."""
    home = os.environ.get("DAGSTER_HOME")
    return Path(home).expanduser().resolve() if home else settings.default_dagster_home


#: attempts at opening an instance whose tables another machine is creating at that moment
CREATE_ATTEMPTS = 6


def ensure_instance(settings: Settings) -> dg.DagsterInstance:
    """Open the instance, seeding and migrating it first under a file lock.

    Two processes creating a fresh SQLite instance at the same moment can corrupt it, so
    creation happens once, serialized by ``<home>/.instance.lock``. Machines sharing one
    fresh PostgreSQL database have no common lock: their table creations can collide
    (each one a transaction, so the loser's rolls back), and the loser opens the instance
    again, now created.
    """
    home = dagster_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    with open(home / ".instance.lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            if not (home / "dagster.yaml").exists() and not (home / "dagster.yml").exists():
                shutil.copyfile(TEMPLATE, home / "dagster.yaml")
            for attempt in range(CREATE_ATTEMPTS):
                try:
                    instance = dg.DagsterInstance.get()
                    break
                except sqlalchemy.exc.DBAPIError as exc:
                    if not _creating_tables(exc) or attempt == CREATE_ATTEMPTS - 1:
                        raise
                    time.sleep(0.2 * (attempt + 1) * (0.5 + random.random()))
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    return instance


def _creating_tables(exc: sqlalchemy.exc.DBAPIError) -> bool:
    """Whether the statement that failed creates or changes the schema (a creation race)."""
    statement = (exc.statement or "").lstrip().upper()
    return statement.startswith(("CREATE ", "ALTER ", "DROP "))


PID_TAG = "assets_pkg/pid"
HOST_TAG = "assets_pkg/host"


def process_tags() -> dict[str, str]:
    """Tags that let a later command tell whether this run's process is still alive."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


#: the tag the DefaultRunLauncher puts on a run: where the code server that started it listens
GRPC_INFO_TAG = ".dagster/grpc_info"
#: a run still STARTING after this long, with no worker and no launching server on record,
#: was cut off mid-launch (dagster's own run-monitoring start timeout is the same)
STALE_STARTING_S = 180.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a killed process whose parent died too can linger as a zombie: it runs nothing
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] != "Z"


def _is_local_instance(instance: dg.DagsterInstance) -> bool:
    """SQLite storage means one machine: every pid the instance records is one of ours."""
    return type(instance.run_storage).__name__ == "SqliteRunStorage"


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid a run's worker recorded when it started ("Started process for run")."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=5
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.engine_event_data if event else None
        pid = data.metadata.get("pid") if data else None
        if pid is not None:
            return int(pid.value)
    return None


def _server_gone(grpc_info: str) -> bool:
    """Whether the code server a run was handed to no longer accepts connections."""
    info = json.loads(grpc_info)
    try:
        if info.get("socket"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(2)
                conn.connect(info["socket"])
        else:
            socket.create_connection((info["host"], int(info["port"])), timeout=2).close()
    except (ConnectionRefusedError, FileNotFoundError):
        return True
    except OSError:
        return False  # slow or unreachable is not proof of death
    return False


def _daemon_run_dead(instance: dg.DagsterInstance, record: dg.RunRecord) -> bool:
    """A run the daemon launched (no pid tag): dead when its worker's process is gone, or,
    if no worker ever reported, when the code server asked to start it is gone."""
    run = record.dagster_run
    pid = _worker_pid(instance, run.run_id)
    if pid is not None:
        return not _alive(pid)
    if run.status != dg.DagsterRunStatus.STARTING:
        return False
    grpc_info = run.tags.get(GRPC_INFO_TAG)
    if grpc_info is not None:
        return _server_gone(grpc_info)
    return time.time() - record.update_timestamp.timestamp() > STALE_STARTING_S


def reap_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail runs whose process is gone, and free their pool slots.

    A run killed with SIGKILL stays STARTED (or STARTING) and keeps its concurrency slot
    and its place under the run limit, and the next run would wait for it forever. Runs
    the CLI started carry their host and pid; runs the daemon launched are judged by their
    worker's recorded pid, on a single-machine (SQLite) instance only.
    """
    host = socket.gethostname()
    local = _is_local_instance(instance)
    reaped: list[str] = []
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING])
    )
    for record in records:
        run = record.dagster_run
        pid = run.tags.get(PID_TAG)
        if pid is not None:
            if run.tags.get(HOST_TAG) != host or _alive(int(pid)):
                continue
        elif not local or not _daemon_run_dead(instance, record):
            continue
        instance.report_run_failed(run, "its process ended without finishing (killed); reaped")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(run.run_id)
    return reaped
