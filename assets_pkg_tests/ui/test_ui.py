"""The Dagster UI, used the way a person uses it, in a real browser against ``dagster dev``.

One journey, in order (each step needs the one before):
1. the asset graph shows every layer (group) and every asset of the definitions;
2. one daily partition of a mart is materialized from its asset page (partition dialog,
   Launch), the run succeeds, and the asset page shows its checks' results;
3. a three-day backfill of the marts group is launched from the UI and completes;
4. the mart's asset page shows the checks, column schema and per-partition row counts;
5. the asset graph again, every layer materialized.

A second test shows the data contract and the column lineage of a mart: the asset page's
"Columns" section with each column's constraints; the column lineage as ``dagster dev``
serves it to the UI (its GraphQL API), and as the asset page shows it, the "column_lineage"
table under Metadata (the open-source UI draws only asset lineage; its column-lineage graph
is a Dagster+ feature).

A run or backfill launched from the UI that fails makes the test fail at once, naming the
run and its step errors; every wait is bounded. Screenshots are kept under a pytest temp
dir (printed at the start); with ``ASSETS_PKG_UPDATE_SCREENSHOTS=1`` the README's
``docs/screenshots/*.png`` are refreshed too.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import dagster as dg
import pytest
from playwright.sync_api import expect

from assets_pkg.contracts import TABLES
from assets_pkg.definitions import build_definitions
from assets_pkg_tests.ui.conftest import END, START, DagsterUI

MART = "marts/daily_sales_by_category"
MART_CHECKS = ("daily_sales_by_category__unique_key", "daily_sales_by_category__not_null_key")
ONE_DAY = (dt.date.fromisoformat(START) + dt.timedelta(days=1)).isoformat()
LAYERS = ("lake", "staging", "warehouse", "marts", "quarantine")
CODE_LOCATION = "assets_pkg.definitions"
RUN_TIMEOUT_S = 90
BACKFILL_TIMEOUT_S = 120
#: the UI cuts a constraint tag longer than this to its first 27 characters and "..."
UI_CONSTRAINT_CHARS = 30
#: the mart's column lineage, as the asset page's own GraphQL API serves it
LINEAGE_QUERY = """# the mart's column lineage
{
  assetNodes(assetKeys: [
    {path: PATH}
  ]) {
    metadataEntries {
      ... on TableColumnLineageMetadataEntry {
        lineage {
          columnName
          columnDeps { assetKey { path } columnName }
        }
      }
    }
  }
}
""".replace("PATH", json.dumps(MART.split("/")))


#: each row of a table as its cells' text plus the row's own text, read in one step
_ROW_CELLS_JS = """rows => rows.map(r => ({
  cells: Array.from(r.querySelectorAll('td'), td => td.innerText),
  text: r.innerText,
}))"""


def _read_rows(rows, count: int, timeout_ms: float) -> list[dict] | None:
    """The ``count`` rows of a table, read at one instant, or None if they never show.

    Reading row by row races the asset page: it re-renders its metadata while live data
    polls, and a row read after that finds a new (or no) element. One ``evaluate_all``
    reads every row in the same frame, so a snapshot is whole or visibly short.
    """
    try:
        expect(rows).to_have_count(count, timeout=max(timeout_ms, 1))
    except AssertionError:
        return None
    snapshot = rows.evaluate_all(_ROW_CELLS_JS)
    return snapshot if len(snapshot) == count else None


def _table_rows(rows, count: int, timeout_s: float = 60) -> list[dict]:
    """The table's ``count`` rows, read whole, re-read while a re-render cuts one short."""
    deadline = time.monotonic() + timeout_s
    while (snapshot := _read_rows(rows, count, (deadline - time.monotonic()) * 1000)) is None:
        if time.monotonic() > deadline:
            expect(rows).to_have_count(count, timeout=1)  # fails, naming what it saw
            raise AssertionError(f"{count} rows showed but never all at once")
    return snapshot


def _open_markdown(page, link, count: int, timeout_s: float = 120):
    """Click a metadata entry's "[Show Markdown]" until its dialog shows ``count`` rows.

    Returns the dialog and its rows, read in one step while it is open. A click that lands
    while the asset page is still re-rendering its metadata (a loaded CI machine) opens
    nothing, and a re-render can close an open dialog: either way it is opened again. A
    dialog that opened is given 20 s to show its rows before it is closed and reopened.
    """
    dialog = page.get_by_role("dialog")
    deadline = time.monotonic() + timeout_s
    while True:
        link.click()
        try:
            expect(dialog).to_be_visible(timeout=5_000)
        except AssertionError:
            snapshot = None
        else:
            snapshot = _read_rows(dialog.locator("tbody tr"), count, 20_000)
        if snapshot is not None:
            return dialog, snapshot
        if time.monotonic() > deadline:
            expect(dialog.locator("tbody tr")).to_have_count(count, timeout=1)
            raise AssertionError(f"the dialog never showed its {count} rows at once")
        if dialog.count():
            page.keyboard.press("Escape")
            expect(dialog).to_have_count(0, timeout=5_000)


def _failure_report(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    lines = []
    failures = instance.all_logs(
        run.run_id,
        of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE},
    )
    for record in failures:
        event = record.dagster_event
        error = getattr(event.event_specific_data, "error", None)
        text = error.message.strip() if error is not None else (event.message or "")
        if any(text in line for line in lines):
            continue  # the run's failure repeats its step's
        lines.append(f"  {event.step_key or 'run'}: {text}")
    return "\n".join(lines) or "  (no failure events recorded)"


def _fail_if_failed(ui: DagsterUI, run: dg.DagsterRun, what: str) -> None:
    if run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
        pytest.fail(
            f"{what}: run {run.run_id} ended {run.status.value}:\n"
            + _failure_report(ui.instance, run),
            pytrace=False,
        )


def wait_for_run(ui: DagsterUI, run_id_prefix: str, what: str) -> dg.DagsterRun:
    """The run the UI reported launching, once finished; fails at once if it failed."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    run = None
    while time.monotonic() < deadline:
        ui.assert_alive()
        runs = [r for r in ui.instance.get_runs(limit=50) if r.run_id.startswith(run_id_prefix)]
        if runs:
            run = runs[0]
            _fail_if_failed(ui, run, what)
            if run.status == dg.DagsterRunStatus.SUCCESS:
                return run
        time.sleep(1)
    status = run.status.value if run else "never seen in the instance"
    pytest.fail(f"{what}: run {run_id_prefix} not done in {RUN_TIMEOUT_S}s ({status})")


def wait_for_backfill(ui: DagsterUI, backfill_id: str) -> None:
    """The backfill completes successfully; the first failed run of it fails the test."""
    deadline = time.monotonic() + BACKFILL_TIMEOUT_S
    status = "never seen in the instance"
    while time.monotonic() < deadline:
        ui.assert_alive()
        for run in ui.instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id})):
            _fail_if_failed(ui, run, f"backfill {backfill_id} launched from the UI")
        backfill = ui.instance.get_backfill(backfill_id)
        if backfill is not None:
            status = backfill.status.value
            if status in ("COMPLETED_SUCCESS", "COMPLETED"):
                return
            if status in ("FAILED", "COMPLETED_FAILED", "CANCELED"):
                error = backfill.error.message if backfill.error else ""
                pytest.fail(f"backfill {backfill_id} ended {status} {error}", pytrace=False)
        time.sleep(1)
    pytest.fail(f"backfill {backfill_id} not done in {BACKFILL_TIMEOUT_S}s ({status})")


def launch_from_dialog(page, partitions: str, button: str, toast: str) -> str:
    """Fill the open partition dialog, press its launch button, return the id in the toast."""
    dialog = page.get_by_role("dialog")
    # the partition field is the dialog's first text box (its placeholder varies)
    field = dialog.get_by_role("textbox").first
    field.fill(partitions)
    field.press("Enter")
    launch = dialog.get_by_role("button", name=button, exact=True)
    launch.wait_for()
    assert launch.is_enabled(), f"{button!r} is disabled for partitions {partitions}"
    launch.click()
    message = page.get_by_text(re.compile(rf"{toast} \w+")).first
    message.wait_for()
    return re.search(rf"{toast} (\w+)", message.inner_text()).group(1)


def expand_sidebar_groups(page) -> None:
    """Open every group of the graph's sidebar tree, so it lists each asset."""
    for layer in LAYERS:
        group = page.locator(f'button:has([aria-label=asset_group]):has([title="{layer}"])')
        row = page.locator("div", has=group.first).filter(
            has=page.locator("button:has([aria-label=arrow_drop_down])")
        )
        row.last.locator("button:has([aria-label=arrow_drop_down])").first.click()


def test_materialize_and_backfill_from_the_ui(dagster_ui: DagsterUI, page, shots):
    definitions = build_definitions()
    specs = list(definitions.resolve_all_asset_specs())

    # 1. the asset graph: a node per layer, and every asset under its group in the sidebar
    page.set_viewport_size({"width": 1440, "height": 1100})  # the whole sidebar tree fits
    page.goto("/asset-groups")
    for layer in LAYERS:
        page.locator(f'foreignObject [data-tooltip="{layer}"]').first.wait_for()
    expand_sidebar_groups(page)
    for spec in specs:
        page.locator(f'[title="{spec.key.path[-1]}"]').first.wait_for()
    shots.take(page, "asset-graph-before")

    # 2. one partition of a mart, from its asset page
    page.goto(f"/assets/{MART}")
    page.get_by_role("button", name=re.compile(r"Materialize…$")).click()
    run_prefix = launch_from_dialog(page, ONE_DAY, "Launch 1 run", "Launched run")
    shots.take(page, "mart-run-launched")
    run = wait_for_run(dagster_ui, run_prefix, f"materializing {MART} {ONE_DAY} from the UI")
    assert run.tags.get("dagster/partition") == ONE_DAY, run.tags
    page.goto(f"/assets/{MART}?view=checks")
    for check in MART_CHECKS:
        row = page.locator("span", has=page.locator(f'[title="{check}"]')).first
        row.wait_for()
        assert "Succeeded" in row.inner_text(), f"{check}: {row.inner_text()}"
    shots.take(page, "mart-checks")

    # 3. a backfill of the marts group over the three days, from the group's page
    page.goto(f"/locations/{CODE_LOCATION}/asset-groups/marts")
    page.get_by_role("button", name=re.compile(r"Materialize all( \(\d+\))?…$")).click()
    backfill_id = launch_from_dialog(
        page, f"[{START}...{END}]", "Launch backfill", "Created backfill"
    )
    wait_for_backfill(dagster_ui, backfill_id)
    page.set_viewport_size({"width": 1440, "height": 560})
    page.goto(f"/runs/b/{backfill_id}")
    page.get_by_text("Succeeded", exact=True).first.wait_for()
    graph = definitions.resolve_asset_graph()
    for spec in specs:
        if spec.group_name == "marts" and graph.get(spec.key).is_materializable:
            page.get_by_text(" / ".join(spec.key.path), exact=True).first.wait_for()
    page.get_by_text("100% completed").first.wait_for()
    shots.take(page, "backfill", readme=True)

    # 4. the mart's page: latest materialization, checks, columns and plots
    page.set_viewport_size({"width": 1440, "height": 1500})
    page.goto(f"/assets/{MART}")
    page.get_by_text("Latest check results").wait_for()
    page.get_by_role("button", name="Plots").click()
    # row counts per partition: true per day although the backfill was one ranged run
    page.get_by_text("dagster/row_count").first.wait_for()
    shots.take(page, "mart-asset-page", readme=True)

    # 5. the asset graph again, every layer materialized
    page.set_viewport_size({"width": 1440, "height": 1100})
    page.goto("/asset-groups")
    for layer in LAYERS:
        page.locator(f'foreignObject [data-tooltip="{layer}"]').first.wait_for()
    expand_sidebar_groups(page)
    page.locator("button:has([aria-label=zoom_in])").click()
    page.wait_for_timeout(2000)  # let the zoom and the status badges settle
    shots.take(page, "asset-graph", readme=True)


def _constraint_tags(constraints: dg.TableColumnConstraints) -> list[str]:
    """The tags the UI's column table shows for a column's constraints."""
    tags = [] if constraints.nullable else ["non-nullable"]
    tags += ["unique"] if constraints.unique else []
    for text in constraints.other:
        cut = len(text) > UI_CONSTRAINT_CHARS
        tags.append(text[: UI_CONSTRAINT_CHARS - 3] + "..." if cut else text)
    return tags


def test_mart_column_schema_and_column_lineage(dagster_ui: DagsterUI, page, shots):
    table = TABLES[MART.replace("/", ".")]
    spec = next(
        s
        for s in build_definitions().resolve_all_asset_specs()
        if s.key == dg.AssetKey(MART.split("/"))
    )
    declared = {c.name: c for c in spec.metadata["dagster/column_schema"].columns}

    # 1. the asset page's "Columns": every contract column, with its rules as tags
    page.set_viewport_size({"width": 1440, "height": 1100})
    page.goto(f"/assets/{MART}")
    columns = page.locator("table", has=page.get_by_text("Column name", exact=True))
    rows = {
        r["cells"][0].strip(): r["text"]
        for r in _table_rows(columns.locator("tbody tr"), len(table.column_names))
    }
    assert list(rows) == table.column_names
    for name, text in rows.items():
        for tag in _constraint_tags(declared[name].constraints):
            assert f"\n{tag}\n" in text, f"{name}: no {tag!r} in {text!r}"
        assert ("non-nullable" in text) == table.column(name).required, (name, text)
    # the section heading, its filter and the table, cut out of the page
    section = page.locator("div", has=page.get_by_text("Columns", exact=True)).filter(has=columns)
    shots.take(page, "mart-column-schema", readme=True, clip=section.last.bounding_box())

    # 2. the column lineage reaches the webserver: each mart column names its warehouse
    # sources (read here through the same GraphQL the UI uses)
    answer = dagster_ui.graphql(LINEAGE_QUERY)
    entries = answer["data"]["assetNodes"][0]["metadataEntries"]
    served = {
        line["columnName"]: {
            ".".join([*dep["assetKey"]["path"], dep["columnName"]]) for dep in line["columnDeps"]
        }
        for entry in entries
        for line in entry.get("lineage", [])
    }
    assert set(served) == set(table.column_names)
    assert {
        "warehouse.fct_order_items.line_revenue",
        "warehouse.fct_orders.status",
        "warehouse.fct_orders.item_count",
    } <= served["total_sales"]

    # 3. ... and a person sees it on the asset page: the open-source UI draws asset lineage
    # only, so the definition carries the same lineage as a table ("column_lineage" under
    # Metadata, opened with "Show Markdown")
    page.set_viewport_size({"width": 1440, "height": 1100})
    page.goto(f"/assets/{MART}")
    entry = page.locator("tr", has=page.get_by_text("column_lineage", exact=True))
    # the dialog can show its table before its rows, and a re-render of the page can close
    # it: its rows are read in one step once all of them show
    dialog, body_rows = _open_markdown(
        page, entry.get_by_text("[Show Markdown]"), len(table.column_names)
    )
    shown = {r["cells"][0].strip(): r["cells"][-1] for r in body_rows}
    assert list(shown) == table.column_names
    for column, sources in served.items():
        assert {s.strip() for s in shown[column].split(",")} == sources, column
    shots.take(page, "mart-column-lineage", readme=True, clip=dialog.bounding_box())
