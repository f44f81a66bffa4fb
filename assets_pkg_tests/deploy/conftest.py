"""Throwaway servers for the deployment tests: a PostgreSQL cluster and a Redis broker.

Both are the Debian packages (``apt-get install postgresql redis-server``; ``.ci/run``
installs them), started here on a free 127.0.0.1 port in a temp dir and stopped after, even
when the test fails. Without the binaries the tests skip, except under CI (``CI`` set),
where they fail: there the servers are part of the build.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

#: a guard against a server that never comes up, not a performance limit
STARTUP_GUARD_S = 60.0


def missing(what: str) -> None:
    """Skip for want of a server binary, or fail under CI, where it must be installed."""
    reason = f"{what} is not installed (apt-get install postgresql redis-server)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: on PATH, else the newest Debian cluster version."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(candidates[-1]).parent if candidates else None


def stop_process_group(proc: subprocess.Popen, grace_s: float = 20.0) -> None:
    """SIGTERM the process group, SIGKILL what is left after ``grace_s``."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str

    def dsn(self, db: str) -> str:
        return (
            f"host={self.host} port={self.port} user={self.user} "
            f"password={self.password} dbname={db}"
        )

    def env(self, db: str) -> dict[str, str]:
        """The ``DAGSTER_PG_*`` variables ``deploy/dagster.yaml`` reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": db,
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
        }

    def create_database(self) -> str:
        import psycopg2

        name = f"dagster_{uuid.uuid4().hex[:12]}"
        conn = psycopg2.connect(self.dsn("postgres"))
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')  # an identifier: no parameter form
        finally:
            conn.close()
        return name


def _as_cluster_owner(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; Debian's package has the `postgres` user
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of its own: initdb in a temp dir, a free port, stopped after."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        missing("PostgreSQL (initdb, pg_ctl)")
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root needs the `postgres` user of Debian's postgresql")
    # not under pytest's tmp dir: as root that is private to root, and the cluster owner
    # must be able to reach it
    root = Path(tempfile.mkdtemp(prefix="assets_pkg_pg_"))
    root.chmod(0o755)
    password = uuid.uuid4().hex
    (root / "pw").write_text(password)
    if os.geteuid() == 0:
        for path in (root, root / "pw"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    data = root / "data"
    port = free_port()
    server = PostgresServer("127.0.0.1", port, "dagster", password)
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data)]
    started = False
    try:
        subprocess.run(
            _as_cluster_owner(
                [
                    str(bin_dir / "initdb"),
                    "-D", str(data),
                    "-U", server.user,
                    f"--pwfile={root / 'pw'}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "-E", "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
        )  # fmt: skip
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
        subprocess.run(
            _as_cluster_owner(
                [*pg_ctl, "-l", str(root / "server.log"), "-o", options, "-w", "start"]
            ),
            check=True,
            capture_output=True,
        )
        started = True
        yield server
    finally:
        if started:
            subprocess.run(
                _as_cluster_owner([*pg_ctl, "-m", "immediate", "-w", "stop"]),
                capture_output=True,
            )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_db(postgres_server: PostgresServer) -> str:
    """A fresh database on the session's cluster, one per test."""
    return postgres_server.create_database()


@dataclass(frozen=True)
class RedisServer:
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server on a free loopback port, no persistence, stopped after."""
    binary = shutil.which("redis-server")
    if binary is None:
        missing("redis-server")
    import redis

    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="assets_pkg_redis_"))
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + STARTUP_GUARD_S
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert proc.poll() is None, "redis-server exited at start"
                assert time.monotonic() < deadline, "redis-server never answered PING"
                time.sleep(0.1)
        client.close()
        yield RedisServer(port)
    finally:
        stop_process_group(proc)
        shutil.rmtree(workdir, ignore_errors=True)
