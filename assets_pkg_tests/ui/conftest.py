"""A real ``dagster dev`` on a tiny generated dataset, and headless Chromium to drive it.

The module-scoped ``dagster_ui`` fixture:
- generates the last three days of sample data into a temp data dir and ingests it (the
  partitions are those three days: recent ones, as the UI's plots show the latest
  partitions);
- materializes staging and the warehouse for those days with the Dagster CLI, so the
  marts are what is left for the UI to materialize;
- copies the project's instance settings into a temp ``DAGSTER_HOME`` and stops every
  sensor and schedule there before the daemon starts (automation would otherwise launch
  mart runs of its own and race the runs the test launches);
- starts ``dagster dev`` on a free loopback port in its own process group and waits until
  the webserver answers and the code location has loaded. Teardown ends the whole group.

The browser is Debian's ``/usr/bin/chromium`` through Playwright; no browser is ever
downloaded. Without it the tests skip, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from assets_pkg.config import REPO_DIR
from assets_pkg.instance import TEMPLATE

CHROMIUM = Path("/usr/bin/chromium")
#: this machine's network is closed: Chromium must not try its background connections
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DAYS = 3
#: the last three full UTC days: the UI plots (and lists) the latest partitions first
_TODAY = dt.datetime.now(dt.UTC).date()
START = (_TODAY - dt.timedelta(days=DAYS)).isoformat()
END = (_TODAY - dt.timedelta(days=1)).isoformat()
SCALE = 0.1
#: the screenshots the README shows, refreshed with ASSETS_PKG_UPDATE_SCREENSHOTS=1
README_SCREENSHOTS = REPO_DIR / "docs" / "screenshots"
STARTUP_TIMEOUT_S = 90
COMMAND_TIMEOUT_S = 180


def _missing_browser_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (Debian package `chromium`; .ci/run installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package `playwright` is missing (it is in the `dev` extra)"
    return None


@pytest.fixture(scope="module")
def chromium() -> Path:
    reason = _missing_browser_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"UI tests cannot run in CI: {reason}", pytrace=False)
        pytest.skip(f"UI tests need a browser: {reason}")
    return CHROMIUM


def _tool(name: str) -> str:
    """A console script of this Python's environment (the ``dagster`` that tests import)."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else name


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DagsterUI:
    url: str
    root: Path
    home: Path
    env: dict[str, str]
    process: subprocess.Popen
    log: Path
    instance: dg.DagsterInstance

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def assert_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(
                f"dagster dev exited with {self.process.returncode}; its log ends:\n"
                + self.log_tail(),
                pytrace=False,
            )

    def graphql(self, query: str, timeout: float = 10) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())


def _run(cmd: list[str], env: dict[str, str], cwd: Path, what: str) -> str:
    try:
        done = subprocess.run(
            cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} did not finish within {COMMAND_TIMEOUT_S}s", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"{what} failed ({done.returncode}):\n{(done.stderr or done.stdout)[-3000:]}",
            pytrace=False,
        )
    return done.stdout


def _stop_instigators(env: dict[str, str], cwd: Path) -> list[str]:
    """Stop every running sensor and schedule in the instance, before the daemon starts.

    The ids come from the definitions' own GraphQL (instigator state ids), and the stop is
    the mutation the UI's toggles send.
    """
    listing = cwd / "instigators.json"
    _run(
        [
            _tool("dagster-graphql"),
            "-m",
            "assets_pkg.definitions",
            "-o",
            str(listing),
            "-t",
            "{ repositoriesOrError { ... on RepositoryConnection { nodes {"
            " sensors { name sensorState { id status } }"
            " schedules { name scheduleState { id status } } } } } }",
        ],
        env,
        cwd,
        "listing sensors and schedules",
    )
    nodes = json.loads(listing.read_text())["data"]["repositoriesOrError"]["nodes"]
    mutations, names = [], []
    for repo in nodes:
        for sensor in repo["sensors"]:
            if sensor["sensorState"]["status"] == "RUNNING":
                i = len(mutations)
                mutations.append(
                    f's{i}: stopSensor(id: "{sensor["sensorState"]["id"]}") {{ __typename }}'
                )
                names.append(sensor["name"])
        for schedule in repo["schedules"]:
            if schedule["scheduleState"]["status"] == "RUNNING":
                i = len(mutations)
                state_id = schedule["scheduleState"]["id"]
                mutations.append(f's{i}: stopRunningSchedule(id: "{state_id}") {{ __typename }}')
                names.append(schedule["name"])
    if not mutations:
        return []
    result = cwd / "stopped.json"
    _run(
        [
            _tool("dagster-graphql"),
            "-m",
            "assets_pkg.definitions",
            "-o",
            str(result),
            "-t",
            "mutation { " + " ".join(mutations) + " }",
        ],
        env,
        cwd,
        "stopping sensors and schedules",
    )
    answers = json.loads(result.read_text())["data"]
    failed = {
        names[int(alias[1:])]: answer["__typename"]
        for alias, answer in answers.items()
        if "Error" in answer["__typename"]
    }
    assert not failed, f"could not stop {failed}"
    return names


def _wait_until_loaded(ui: DagsterUI) -> None:
    """The webserver answers and the code location has loaded (or fail with its error)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    query = (
        "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus"
        " locationOrLoadError { __typename ... on PythonError { message } } } } } }"
    )
    last = "no answer yet"
    while time.monotonic() < deadline:
        ui.assert_alive()
        try:
            entries = ui.graphql(query, timeout=5)["data"]["workspaceOrError"]["locationEntries"]
        except (urllib.error.URLError, ConnectionError, TimeoutError, KeyError) as exc:
            last = repr(exc)
        else:
            loaded = [e for e in entries if e["loadStatus"] == "LOADED"]
            errors = [
                e["locationOrLoadError"]
                for e in loaded
                if e["locationOrLoadError"]["__typename"] == "PythonError"
            ]
            if errors:
                pytest.fail(f"the code location failed to load: {errors}", pytrace=False)
            if entries and len(loaded) == len(entries):
                return
            last = f"locations: {entries}"
        time.sleep(0.5)
    pytest.fail(
        f"dagster dev was not ready within {STARTUP_TIMEOUT_S}s ({last}); log:\n{ui.log_tail()}",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def dagster_ui(chromium, tmp_path_factory) -> Iterator[DagsterUI]:
    root = tmp_path_factory.mktemp("ui")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copyfile(TEMPLATE, home / "dagster.yaml")
    # the "join the community" dialog is shown once per instance: mark it seen
    (home / ".nux").mkdir()
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ASSETS_PKG_LAKE_URL", "ASSETS_PKG_WAREHOUSE_PATH")
    }
    env.update(
        ASSETS_PKG_DATA_DIR=str(root / "data"),
        ASSETS_PKG_START_DATE=START,
        ASSETS_PKG_END_DATE=END,
        DAGSTER_HOME=str(home),
    )
    cli = [sys.executable, "-m", "assets_pkg.cli.main"]
    _run(
        [*cli, "generate", "--start", START, "--days", str(DAYS), "--scale", str(SCALE)],
        env,
        root,
        "assets-pkg generate",
    )
    _run([*cli, "ingest"], env, root, "assets-pkg ingest")
    _run(
        [
            _tool("dagster"),
            "asset",
            "materialize",
            "-m",
            "assets_pkg.definitions",
            "--select",
            "group:staging or group:warehouse",
            "--partition-range",
            f"{START}...{END}",
        ],
        env,
        root,
        "materializing staging and the warehouse",
    )
    _stop_instigators(env, root)

    port = _free_port()
    log = root / "dagster-dev.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                _tool("dagster"),
                "dev",
                "-m",
                "assets_pkg.definitions",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            env=env,
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: teardown ends all of it
        )
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key in ("ASSETS_PKG_DATA_DIR", "ASSETS_PKG_START_DATE", "ASSETS_PKG_END_DATE"):
                mp.setenv(key, env[key])
            mp.setenv("DAGSTER_HOME", str(home))
            with dg.DagsterInstance.get() as instance:
                ui = DagsterUI(
                    url=f"http://127.0.0.1:{port}",
                    root=root,
                    home=home,
                    env=env,
                    process=process,
                    log=log,
                    instance=instance,
                )
                _wait_until_loaded(ui)
                yield ui
    finally:
        _stop_group(process)


def _stop_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    # whatever is left of the group (code server, daemon, run workers)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@dataclass
class Shots:
    """Screenshots as test artifacts; the README's ones also into docs/ when asked."""

    folder: Path
    update_readme: bool

    def take(self, page, name: str, readme: bool = False, **kwargs) -> Path:
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path), **kwargs)
        if readme and self.update_readme:
            README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, README_SCREENSHOTS / path.name)
        return path


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Shots:
    folder = tmp_path_factory.mktemp("ui-screenshots")
    print(f"\nUI screenshots: {folder}")
    return Shots(folder, os.environ.get("ASSETS_PKG_UPDATE_SCREENSHOTS") == "1")


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True, timeout=60_000
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.ui_failed = report.failed
    return report


@pytest.fixture
def page(request, browser, dagster_ui, shots):
    context = browser.new_context(
        base_url=dagster_ui.url,
        viewport={"width": 1440, "height": 900},
        locale="en-US",
        timezone_id="UTC",
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.set_default_navigation_timeout(30_000)
    try:
        yield page
        if getattr(request.node, "ui_failed", False):
            path = shots.take(page, "failure", full_page=True)
            print(f"\nUI at the failure ({page.url}): {path}")
    finally:
        context.close()
