"""Project settings, read from the contract's environment variables when asked, never at import."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent

DEFAULT_START_DATE = "2024-01-01"
DEFAULT_DAILY_CRON = "0 2 * * *"
DEFAULT_LATE_DATA_CRON = "0 5 * * *"
DEFAULT_LATE_DATA_DAYS = 7
DEFAULT_SENSOR_INTERVAL_S = 15
DEFAULT_SENSOR_BATCH_FILES = 200
DEFAULT_REALTIME_DAYS = 2
DEFAULT_LAKE_TIMEOUT_S = 30
#: how runs of the daily pipeline execute their steps (see assets_pkg.executors)
EXECUTORS = ("in_process", "multiprocess", "multiprocess_spawn", "celery")
DEFAULT_EXECUTOR = "in_process"


class ConfigError(ValueError):
    """A setting that cannot be used; the message says which and why."""


def parse_date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a date as YYYY-MM-DD, got {value!r}") from None


def parse_cron(value: str | None, default: str, name: str) -> str:
    from dagster._utils.schedules import is_valid_cron_string

    cron = (value or "").strip() or default
    if not is_valid_cron_string(cron):
        raise ConfigError(f"{name} must be a cron expression like '0 2 * * *', got {cron!r}")
    return cron


def parse_positive_int(value: str | None, default: int, name: str) -> int:
    raw = (value or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, got {value!r}")
    return int(raw)


def parse_webhook(value: str | None, name: str) -> str | None:
    url = (value or "").strip()
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http:// or https:// URL")
    return url


def parse_sources(value: str | None) -> tuple[str, ...] | None:
    """A comma-separated list of contract sources, or None (all) when unset."""
    from assets_pkg.contracts import INGEST_ORDER

    names = [n.strip() for n in (value or "").split(",") if n.strip()]
    if not names:
        return None
    unknown = sorted(set(names) - set(INGEST_ORDER))
    if unknown:
        raise ConfigError(
            f"ASSETS_PKG_SENSOR_SOURCES names unknown source(s) {', '.join(unknown)}; "
            f"known: {', '.join(INGEST_ORDER)}"
        )
    return tuple(s for s in INGEST_ORDER if s in names)


@dataclass(frozen=True)
class Settings:
    """Where everything lives and which days are partitions."""

    data_dir: Path
    start_date: dt.date
    end_date: dt.date | None
    lake_url: str
    warehouse_path: Path
    #: cron (UTC) of the daily schedule that materializes yesterday
    daily_cron: str = DEFAULT_DAILY_CRON
    #: cron (UTC) of the late-data schedule, and how many days back it re-runs
    late_data_cron: str = DEFAULT_LATE_DATA_CRON
    late_data_days: int = DEFAULT_LATE_DATA_DAYS
    #: landing sensor: least seconds between ticks, most files per ingest run, sources
    sensor_interval_s: int = DEFAULT_SENSOR_INTERVAL_S
    sensor_batch_files: int = DEFAULT_SENSOR_BATCH_FILES
    watched_sources: tuple[str, ...] | None = None  # None: every source
    #: the speed layer keeps the last N days up to the last partition (today by default)
    realtime_days: int = DEFAULT_REALTIME_DAYS
    #: URL that every alert is also POSTed to (``ASSETS_PKG_ALERT_WEBHOOK``), if any
    alert_webhook: str | None = None
    #: timeout of one S3 request of a lake read (an s3:// lake only), seconds
    lake_timeout_s: int = DEFAULT_LAKE_TIMEOUT_S
    #: ``ASSETS_PKG_EXECUTOR``: in_process, multiprocess, multiprocess_spawn or celery
    executor: str = DEFAULT_EXECUTOR
    #: celery broker URL (``ASSETS_PKG_CELERY_BROKER``) and result backend (default: broker)
    celery_broker: str | None = None
    celery_backend: str | None = None

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def archive_dir(self) -> Path:
        return self.data_dir / "archive"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def manifest_path(self) -> Path:
        return self.data_dir / "manifest.sqlite"

    @property
    def realtime_path(self) -> Path:
        """The speed layer's own DuckDB file: never locked by a long warehouse step."""
        return self.warehouse_path.with_name("realtime.duckdb")

    @property
    def default_dagster_home(self) -> Path:
        return self.data_dir / ".dagster"

    @property
    def alerts_path(self) -> Path:
        """JSON Lines file the alert sensors append to."""
        return self.data_dir / "alerts" / "alerts.jsonl"

    def last_partition(self, today: dt.date | None = None) -> dt.date:
        """The last daily partition: the configured end date, else today (UTC)."""
        if self.end_date is not None:
            return self.end_date
        return today or dt.datetime.now(dt.UTC).date()

    def in_range(self, day: dt.date) -> bool:
        return self.start_date <= day <= self.last_partition()


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build settings from ``ASSETS_PKG_*`` variables (defaults as in the contract)."""
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("ASSETS_PKG_DATA_DIR") or REPO_DIR / "data").expanduser().resolve()
    start = parse_date(
        env.get("ASSETS_PKG_START_DATE") or DEFAULT_START_DATE, "ASSETS_PKG_START_DATE"
    )
    end_raw = env.get("ASSETS_PKG_END_DATE")
    end = parse_date(end_raw, "ASSETS_PKG_END_DATE") if end_raw else None
    if end is not None and end < start:
        raise ConfigError(f"ASSETS_PKG_END_DATE {end} is before ASSETS_PKG_START_DATE {start}")
    lake_url = env.get("ASSETS_PKG_LAKE_URL") or str(data_dir / "lake")
    if not lake_url.startswith("s3://"):
        lake_url = str(Path(lake_url).expanduser().resolve())
    warehouse = Path(env.get("ASSETS_PKG_WAREHOUSE_PATH") or data_dir / "analytics.duckdb")
    return Settings(
        data_dir=data_dir,
        start_date=start,
        end_date=end,
        lake_url=lake_url,
        warehouse_path=warehouse.expanduser().resolve(),
        daily_cron=parse_cron(
            env.get("ASSETS_PKG_DAILY_CRON"), DEFAULT_DAILY_CRON, "ASSETS_PKG_DAILY_CRON"
        ),
        late_data_cron=parse_cron(
            env.get("ASSETS_PKG_LATE_DATA_CRON"),
            DEFAULT_LATE_DATA_CRON,
            "ASSETS_PKG_LATE_DATA_CRON",
        ),
        late_data_days=parse_positive_int(
            env.get("ASSETS_PKG_LATE_DATA_DAYS"),
            DEFAULT_LATE_DATA_DAYS,
            "ASSETS_PKG_LATE_DATA_DAYS",
        ),
        alert_webhook=parse_webhook(
            env.get("ASSETS_PKG_ALERT_WEBHOOK"), "ASSETS_PKG_ALERT_WEBHOOK"
        ),
        sensor_interval_s=parse_positive_int(
            env.get("ASSETS_PKG_SENSOR_INTERVAL_S"),
            DEFAULT_SENSOR_INTERVAL_S,
            "ASSETS_PKG_SENSOR_INTERVAL_S",
        ),
        sensor_batch_files=parse_positive_int(
            env.get("ASSETS_PKG_SENSOR_BATCH_FILES"),
            DEFAULT_SENSOR_BATCH_FILES,
            "ASSETS_PKG_SENSOR_BATCH_FILES",
        ),
        watched_sources=parse_sources(env.get("ASSETS_PKG_SENSOR_SOURCES")),
        realtime_days=parse_positive_int(
            env.get("ASSETS_PKG_REALTIME_DAYS"), DEFAULT_REALTIME_DAYS, "ASSETS_PKG_REALTIME_DAYS"
        ),
        lake_timeout_s=parse_positive_int(
            env.get("ASSETS_PKG_LAKE_TIMEOUT_S"),
            DEFAULT_LAKE_TIMEOUT_S,
            "ASSETS_PKG_LAKE_TIMEOUT_S",
        ),
        **parse_executor(env),
    )


def parse_executor(env: Mapping[str, str]) -> dict[str, str | None]:
    """``ASSETS_PKG_EXECUTOR`` and, for celery, where its broker and result backend are."""
    executor = (env.get("ASSETS_PKG_EXECUTOR") or "").strip() or DEFAULT_EXECUTOR
    if executor not in EXECUTORS:
        raise ConfigError(
            f"ASSETS_PKG_EXECUTOR must be one of {', '.join(EXECUTORS)}, got {executor!r}"
        )
    broker = (env.get("ASSETS_PKG_CELERY_BROKER") or "").strip() or None
    backend = (env.get("ASSETS_PKG_CELERY_BACKEND") or "").strip() or None
    if executor == "celery" and broker is None:
        raise ConfigError(
            "ASSETS_PKG_EXECUTOR=celery needs ASSETS_PKG_CELERY_BROKER "
            "(e.g. redis://127.0.0.1:6379/0)"
        )
    return {"executor": executor, "celery_broker": broker, "celery_backend": backend}
