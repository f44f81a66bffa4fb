"""One Dagster instance for the CLI and the UI, created once, under a lock."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
from pathlib import Path

import dagster as dg

from assets_pkg.config import Settings

TEMPLATE = Path(__file__).with_name("dagster.yaml")


def dagster_home(settings: Settings) -> Path:
    """``DAGSTER_HOME`` if set, else ``<data dir>/.dagster`` (the one ``dagster dev`` uses)."""
    home = os.environ.get("DAGSTER_HOME")
    return Path(home).expanduser().resolve() if home else settings.default_dagster_home


def ensure_instance(settings: Settings) -> dg.DagsterInstance:
    """Open the instance, seeding and migrating it first under a file lock.

    Two processes creating a fresh SQLite instance at the same moment can corrupt it, so
    creation happens once, serialized by ``<home>/.instance.lock``.
    """
    home = dagster_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    with open(home / ".instance.lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            if not (home / "dagster.yaml").exists() and not (home / "dagster.yml").exists():
                shutil.copyfile(TEMPLATE, home / "dagster.yaml")
            instance = dg.DagsterInstance.get()
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    return instance


PID_TAG = "assets_pkg/pid"
HOST_TAG = "assets_pkg/host"


def process_tags() -> dict[str, str]:
    """Tags that let a later command tell whether this run's process is still alive."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail runs this host started whose process is gone, and free their pool slots.

    A run killed with SIGKILL stays STARTED and keeps its concurrency slot, and the next
    run in the same pool would wait for it forever.
    """
    host = socket.gethostname()
    reaped: list[str] = []
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING],
            tags={HOST_TAG: host},
        )
    )
    for record in records:
        run = record.dagster_run
        pid = run.tags.get(PID_TAG)
        if pid is None or _alive(int(pid)):
            continue
        instance.report_run_failed(run, "its process ended without finishing (killed); reaped")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(run.run_id)
    return reaped
