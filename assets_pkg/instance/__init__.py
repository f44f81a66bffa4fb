"""One Dagster instance for the CLI and the UI, created once, under a lock."""

from __future__ import annotations

import fcntl
import os
import shutil
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
