"""Shared fixtures: a temp data dir and a temp Dagster instance per test, never the repo's."""

from __future__ import annotations

import atexit
import datetime as dt
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from assets_pkg.config import Settings, load_settings

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

# Hypothesis keeps what it learns (the source's constants, failing examples) under
# ./.hypothesis unless told otherwise; a test run writes nothing into the working tree
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="assets-pkg-hypothesis-")
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)
set_hypothesis_home_dir(_HYPOTHESIS_HOME)

START = dt.date(2024, 3, 1)
END = dt.date(2024, 3, 10)

TABLE_KEYS = {
    "warehouse.dim_customer": ["customer_id", "valid_from"],
    "warehouse.dim_product": ["product_id", "valid_from"],
    "warehouse.fct_orders": ["order_id"],
    "warehouse.fct_order_items": ["order_id", "line_number"],
    "warehouse.fct_payments": ["payment_id"],
    "warehouse.fct_sessions": ["session_id", "session_date"],
    "marts.daily_sales": ["order_date"],
    "marts.daily_sales_by_category": ["date", "product_category"],
    "marts.daily_payments": ["paid_date", "method"],
    "marts.daily_funnel": ["date"],
}


def use_temp_platform(
    root: Path, monkeypatch: pytest.MonkeyPatch, start: dt.date = START, end: dt.date = END
) -> Settings:
    """Point ASSETS_PKG_* and DAGSTER_HOME into ``root``."""
    monkeypatch.setenv("ASSETS_PKG_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("ASSETS_PKG_START_DATE", start.isoformat())
    monkeypatch.setenv("ASSETS_PKG_END_DATE", end.isoformat())
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    for var in ("ASSETS_PKG_LAKE_URL", "ASSETS_PKG_WAREHOUSE_PATH"):
        monkeypatch.delenv(var, raising=False)
    return load_settings()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A fresh data dir and Dagster instance for one test."""
    yield use_temp_platform(tmp_path, monkeypatch)


def land(settings: Settings, source: str, name: str, content: bytes | str) -> Path:
    path = settings.landing_dir / source / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def read_table(settings: Settings, table: str, columns: list[str] | None = None) -> list[dict]:
    """Rows of a warehouse table as dicts, sorted by the table's key (NULLs last)."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        rel = conn.sql(f"SELECT * FROM {table}")
        names = rel.columns
        rows = [dict(zip(names, r, strict=True)) for r in rel.fetchall()]
    if columns is not None:
        rows = [{c: r[c] for c in columns} for r in rows]
    return sort_rows(rows, TABLE_KEYS[table])


def sort_rows(rows: list[dict], key: list[str]) -> list[dict]:
    def sort_key(row: dict) -> tuple:
        return tuple((row[k] is None, "" if row[k] is None else row[k]) for k in key)

    return sorted(rows, key=sort_key)


def wait_for_run_start(
    instance: dg.DagsterInstance, proc: subprocess.Popen, timeout_s: float = 120
) -> bool:
    """Wait until the run that process ``proc`` launched (tagged with its pid) has started.

    True once it has; False if the process ended first.
    """
    from assets_pkg.instance import PID_TAG

    started = dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED], tags={PID_TAG: str(proc.pid)})
    deadline = time.monotonic() + timeout_s
    while not instance.get_run_records(filters=started, limit=1):
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, f"the run of process {proc.pid} never started"
        time.sleep(0.01)
    return True


# Reliability runs: short in CI, longer on request.
#   --soak-seconds N  (or ASSETS_PKG_SOAK_SECONDS=N)  how long test_soak lands files (45)
#   --crash-kills N   (or ASSETS_PKG_CRASH_KILLS=N)   daemon kills in test_daemon_crash (3)
# The command-line option wins over the environment variable.
SOAK_SECONDS_DEFAULT = 45.0
CRASH_KILLS_DEFAULT = 3


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("assets_pkg reliability")
    group.addoption(
        "--soak-seconds",
        type=float,
        default=None,
        help=f"seconds the soak test lands files (env ASSETS_PKG_SOAK_SECONDS; "
        f"default {SOAK_SECONDS_DEFAULT:g})",
    )
    group.addoption(
        "--crash-kills",
        type=int,
        default=None,
        help=f"times the daemon crash test kills the daemon (env ASSETS_PKG_CRASH_KILLS; "
        f"default {CRASH_KILLS_DEFAULT})",
    )


@pytest.fixture
def soak_seconds(request: pytest.FixtureRequest) -> float:
    """How long the soak test lands files."""
    import os

    value = request.config.getoption("--soak-seconds")
    if value is None:
        value = float(os.environ.get("ASSETS_PKG_SOAK_SECONDS", SOAK_SECONDS_DEFAULT))
    assert value > 0, "--soak-seconds must be positive"
    return value


@pytest.fixture
def crash_kills(request: pytest.FixtureRequest) -> int:
    """How many times the daemon crash test kills the daemon."""
    import os

    value = request.config.getoption("--crash-kills")
    if value is None:
        value = int(os.environ.get("ASSETS_PKG_CRASH_KILLS", CRASH_KILLS_DEFAULT))
    assert value > 0, "--crash-kills must be positive"
    return value
