"""Dagster's SQLite storage, with event-log commits that do not wait for the disk.

Dagster writes one event per asset and partition (a year's single-run backfill of the
pipeline writes about 10,000) and the stock SQLite event log commits each in its own
transaction with ``synchronous=FULL``: an fsync per event, more than half of such a
backfill's wall time on a laptop disk (measured in ``benchmarks/end_to_end.py``). The
event databases are in WAL mode already; with ``synchronous=NORMAL`` a commit survives
the process being killed at any point and the file is never corrupted (SQLite's WAL
guarantee); only an operating-system crash or power cut can drop the last events, which
a re-run of the partitions rewrites. Everything else is the stock storage.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import yaml
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

#: what every connection of the event log sets before it writes
PRAGMAS = ("PRAGMA synchronous=NORMAL",)
#: databases (the index and the latest runs') kept open by an idle connection
ANCHORED_SHARDS = 8


def _set_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


class WalSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` whose connections commit with ``synchronous=NORMAL``.

    The stock storage opens and closes a connection per event; when the last connection to
    a WAL database closes, SQLite checkpoints the log into the database and syncs it, an
    fsync per event again. An idle connection held open on each recent shard (the index
    and the latest runs') keeps those closes from being the last.
    """

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        super().__init__(base_dir, inst_data)
        self._anchors: OrderedDict[str, sqlite3.Connection] = OrderedDict()

    def _anchor(self, shard: str) -> None:
        if shard in self._anchors:
            self._anchors.move_to_end(shard)
            return
        self._anchors[shard] = sqlite3.connect(self.path_for_shard(shard), check_same_thread=False)
        while len(self._anchors) > ANCHORED_SHARDS:
            self._anchors.popitem(last=False)[1].close()

    def _release(self) -> None:
        with self._db_lock:
            while self._anchors:
                self._anchors.popitem()[1].close()

    def wipe(self) -> None:
        self._release()  # the run databases are deleted: hold none of them open
        super().wipe()

    def dispose(self) -> None:
        self._release()
        super().dispose()

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # the stock method, plus the connect hook (the engine is made per call there too)
        with self._db_lock:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=NullPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            )
            event.listen(engine, "connect", _set_pragmas)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            self._anchor(shard)
            with engine.connect() as conn, conn.begin():
                yield conn
            engine.dispose()


class ProjectSqliteStorage(DagsterSqliteStorage):
    """``storage: sqlite`` of dagster.yaml, with the event log above; same files, same layout."""

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        super().__init__(base_dir, inst_data)
        self._event_log_storage = WalSqliteEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> ProjectSqliteStorage:
        # the stock classmethod names its own class, which would drop the event log above
        return cls.from_local(inst_data=inst_data, **config_value)


class ProjectInstance(DagsterInstance):
    """The Dagster instance of dagster.yaml's ``instance_class``: stock, but for its storage.

    A custom class is the one place Dagster asks for defaults with the instance's own
    directory (``config_defaults(base_dir)``), so the storage above lives where the stock
    one would, whichever process opens the instance (``DagsterInstance.from_config(dir)``
    included) and whatever ``DAGSTER_HOME`` says there.
    """

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        return {}

    @classmethod
    def config_defaults(cls, base_dir: str) -> Mapping[str, ConfigurableClassData | None]:
        defaults = dict(InstanceRef.config_defaults(base_dir))
        defaults["storage"] = ConfigurableClassData(
            __name__, ProjectSqliteStorage.__name__, yaml.dump({"base_dir": base_dir})
        )
        return defaults
