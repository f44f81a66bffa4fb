"""Dagster's SQLite storage, with event-log writes that cost what the events are.

Dagster writes one event per asset and partition: a year's single-run backfill of the
pipeline writes about 10,000. The stock SQLite event log creates an engine, opens a
connection and commits with ``synchronous=FULL`` (an fsync) for each of them, mirrors each
asset event into the index in another transaction, and serializes a planned check's event
once per partition. That was most of such a backfill's wall time (``benchmarks/README.md``).
Here the same tables get the same rows, but:

- each recent database keeps one open connection, and commits with ``synchronous=NORMAL``
  in WAL mode: a commit survives the process being killed at any point and the file is
  never corrupted (SQLite's WAL guarantee); only an operating-system crash or power cut
  can drop the last events, which a re-run of the partitions rewrites;
- a batch of asset events (a run's planned events, a ranged step's materializations:
  Dagster hands them over together once ``DAGSTER_EVENT_BATCH_SIZE`` allows it, and the
  instance class sets its default) is written in one transaction per database;
- a planned check's event is serialized once, not once per partition;
- each event is serialized once for both databases, and an asset's row in the asset-key
  table is written once per batch (the stock path rewrites it for every partition).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import dagster._check as check
import yaml
from dagster import DagsterInstance
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.events import (
    ASSET_CHECK_EVENTS,
    ASSET_EVENTS,
    EVENT_TYPE_TO_PIPELINE_RUN_STATUS,
)
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    SqlEventLogStorageTable,
)
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._serdes import ConfigurableClassData, serialize_value
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:
    from dagster._core.events import AssetCheckEvaluationPlanned

RUN_STATUS_EVENTS = frozenset(EVENT_TYPE_TO_PIPELINE_RUN_STATUS)

#: what every connection of the event log sets before it writes
PRAGMAS = ("PRAGMA synchronous=NORMAL",)
#: databases (the index and the latest runs') whose connection is kept open between events
OPEN_SHARDS = 8
#: asset events a run step hands over at once (a ranged step's materializations, a run's
#: planned events); ``DAGSTER_EVENT_BATCH_SIZE`` overrides it, 0 writes them one by one
EVENT_BATCH_SIZE = 1000


def _set_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


class WalSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` that keeps its connections and writes batches in one commit.

    The stock storage creates an engine and opens a connection per event, and commits each
    event with ``synchronous=FULL``. When the last connection to a WAL database closes,
    SQLite also checkpoints the log into the database and syncs it. Here each recent shard
    (the index and the latest runs') keeps one connection open, commits with
    ``synchronous=NORMAL``, and a batch of events (``store_event_batch``) is written in one
    transaction per database.
    """

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        super().__init__(base_dir, inst_data)
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        self._asset_key_index_cols: bool | None = None

    def _engine(self, shard: str) -> Engine:
        if self._engines_pid != os.getpid():
            # a forked child must not share the parent's SQLite handles: let them go unused
            self._engines = OrderedDict()
            self._engines_pid = os.getpid()
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        # one connection per shard is enough: every use holds ``_db_lock``
        engine = create_engine(
            self.conn_string_for_shard(shard),
            poolclass=StaticPool,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        event.listen(engine, "connect", _set_pragmas)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        while len(self._engines) > OPEN_SHARDS:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    def _release(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        self._release()  # the run databases are deleted: hold none of them open
        super().wipe()

    def dispose(self) -> None:
        self._release()
        super().dispose()

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock, self._engine(shard).connect() as conn, conn.begin():
            yield conn

    def _store_asset_check_evaluation_planned(
        self, event: EventLogEntry, event_id: int | None
    ) -> None:
        # the stock method serializes the whole event (its partition subset included) once
        # per partition: quadratic in a ranged step's days; the rows are the same. One
        # statement run many times: a multi-row VALUES is compiled anew each time (about
        # 70 ms for a year's rows, 99 checks in a run)
        planned = cast(
            "AssetCheckEvaluationPlanned", check.not_none(event.dagster_event).event_specific_data
        )
        keys = (
            planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        )
        serialized = serialize_value(event)
        timestamp = self._event_insert_timestamp(event)
        with self.index_connection() as conn:
            conn.execute(
                AssetCheckExecutionsTable.insert(),
                [
                    {
                        "asset_key": planned.asset_key.to_string(),
                        "check_name": planned.check_name,
                        "partition": key,
                        "run_id": event.run_id,
                        "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
                        "evaluation_event": serialized,
                        "evaluation_event_timestamp": timestamp,
                        "evaluation_event_storage_id": event_id,
                    }
                    for key in keys
                ],
            )

    def store_event(self, event: EventLogEntry) -> None:
        # the same rows as the stock method, written as a batch of one is (see below)
        self.store_event_batch([check.inst(event, EventLogEntry)])

    def _has_asset_key_index_cols_on_connection(self, conn: Connection) -> bool:
        # the stock method inspects the table's columns once per asset event; they change
        # only with a schema migration (``dagster instance migrate``, another process)
        if self._asset_key_index_cols is None:
            self._asset_key_index_cols = super()._has_asset_key_index_cols_on_connection(conn)
        return self._asset_key_index_cols

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store events as the stock ``store_event`` does, in one transaction per database.

        Dagster hands over batches of asset events (``BATCH_WRITABLE_EVENTS``), and
        ``store_event`` one event of any kind. An asset event is mirrored into the index
        shard with its tags, in the order given; check and run-status events are mirrored
        as the stock method does. Each event is serialized once for both databases, rows
        go in as one prepared statement run many times (a multi-row VALUES is compiled
        anew for every batch), and an asset's row in the asset-key table is written once
        per batch with what the events would have left there one by one (``_asset_rows``).
        """
        rows = [self._event_to_row(entry) for entry in events]
        by_run: dict[str, list[dict[str, Any]]] = {}
        for entry, row in zip(events, rows, strict=True):
            by_run.setdefault(entry.run_id, []).append(row)
        for run_id, run_rows in by_run.items():
            with self.run_connection(run_id) as conn:
                conn.execute(SqlEventLogStorageTable.insert(), run_rows)
        assets = [
            (entry, row)
            for entry, row in zip(events, rows, strict=True)
            if entry.is_dagster_event and entry.dagster_event_type in ASSET_EVENTS
        ]
        if assets:
            with self.index_transaction() as conn:
                table = SqlEventLogStorageTable
                inserted = conn.execute(
                    table.insert().returning(table.c.id, sort_by_parameter_order=True),
                    [row for _, row in assets],
                )
                ids = [event_id for (event_id,) in inserted]
                if len(ids) != len(assets) or any(i is None for i in ids):
                    raise DagsterInvariantViolationError(
                        "Cannot store asset event tags for null event id."
                    )
                entries = [entry for entry, _ in assets]
                self._store_asset_event_tags(conn, entries, ids)
                self._asset_rows(conn, entries, ids)
        for entry, row in zip(events, rows, strict=True):
            if entry.is_dagster_event and entry.dagster_event_type in ASSET_CHECK_EVENTS:
                with self.index_connection() as conn:
                    inserted = conn.execute(SqlEventLogStorageTable.insert(), row)
                    event_id = inserted.inserted_primary_key[0]
                self.store_asset_check_event(entry, event_id)
            elif entry.is_dagster_event and entry.dagster_event_type in RUN_STATUS_EVENTS:
                with self.index_connection() as conn:
                    conn.execute(SqlEventLogStorageTable.insert(), row)

    def _asset_rows(
        self, conn: Connection, entries: Sequence[EventLogEntry], ids: Sequence[int]
    ) -> None:
        """The asset-key table as ``_store_asset_event`` of each event in turn leaves it.

        Each event upserts its asset's row with columns fixed by its type (a materialization
        its record, run and time; a planned one its run and time; an observation its time),
        so of each asset's events only the last of each type decides a column: those are
        written, in order, and each earlier one (a ranged step has one per partition) would
        be overwritten by them.
        """
        last: dict[tuple[str, Any], int] = {}
        for i, entry in enumerate(entries):
            dagster_event = check.not_none(entry.dagster_event)
            if dagster_event.asset_key is not None:
                last[(dagster_event.asset_key.to_string(), dagster_event.event_type_value)] = i
        for i in sorted(last.values()):
            self._store_asset_event(conn, entries[i], ids[i])


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

    def _get_event_batch_size(self) -> int:
        # Dagster batches a step's asset events only when asked to (its default is 0); the
        # storage above writes a batch in one transaction instead of one per event
        return int(os.getenv("DAGSTER_EVENT_BATCH_SIZE", str(EVENT_BATCH_SIZE)))

    @classmethod
    def config_defaults(cls, base_dir: str) -> Mapping[str, ConfigurableClassData | None]:
        defaults = dict(InstanceRef.config_defaults(base_dir))
        defaults["storage"] = ConfigurableClassData(
            __name__, ProjectSqliteStorage.__name__, yaml.dump({"base_dir": base_dir})
        )
        return defaults
