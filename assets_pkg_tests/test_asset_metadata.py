"""Every asset tells its story in the UI, and the Dagster CLI sees the same keys and groups.

- every asset, specs included, has a description, a column schema, owners, kinds, the
  group named by its key prefix and a link to its source;
- the declared column schema of a warehouse, mart or rejects table is the one its DDL
  creates (derived, not restated);
- ``dagster asset list -m assets_pkg.definitions`` lists exactly the materializable keys
  of the definitions, group by group.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets_pkg.config import PACKAGE_DIR
from assets_pkg.definitions import build_definitions
from assets_pkg.lake.assets import REJECTS_KEY
from assets_pkg.lake.ingest import REJECTS_DDL
from assets_pkg.marts.assets import MART_TABLES
from assets_pkg.resources.warehouse import ensure_schemas
from assets_pkg.warehouse.assets import WAREHOUSE_TABLES

GROUPS = ("lake", "staging", "warehouse", "marts", "quarantine")


@pytest.fixture
def specs(settings) -> dict[dg.AssetKey, dg.AssetSpec]:
    return {spec.key: spec for spec in build_definitions().resolve_all_asset_specs()}


def test_every_asset_has_description_schema_owners_kinds_and_layer_group(specs):
    assert {key.path[0] for key in specs} == set(GROUPS)
    problems = []
    for key, spec in specs.items():
        name = key.to_user_string()
        if not (spec.description and spec.description.strip()):
            problems.append(f"{name}: no description")
        schema = spec.metadata.get("dagster/column_schema")
        if not isinstance(schema, dg.TableSchema) or not schema.columns:
            problems.append(f"{name}: no dagster/column_schema")
        if not spec.owners:
            problems.append(f"{name}: no owners")
        if not spec.kinds:
            problems.append(f"{name}: no kinds")
        if spec.group_name != key.path[0]:
            problems.append(f"{name}: group {spec.group_name!r} is not its prefix")
        refs = spec.metadata.get("dagster/code_references")
        files = [Path(r.file_path) for r in refs.code_references] if refs else []
        if not files or not all(f.is_file() and f.is_relative_to(PACKAGE_DIR) for f in files):
            problems.append(f"{name}: no link to its source in the package ({files})")
    assert not problems, "\n".join(problems)


def _created_columns(ddl: str, table: str) -> list[tuple[str, str, bool]]:
    schema, name = table.split(".")
    with duckdb.connect(":memory:") as conn:
        ensure_schemas(conn)
        conn.execute(ddl)
        rows = conn.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema, name],
        ).fetchall()
    return [(col, dtype, nullable == "YES") for col, dtype, nullable in rows]


def _declared_columns(spec: dg.AssetSpec) -> list[tuple[str, str, bool]]:
    schema = spec.metadata["dagster/column_schema"]
    return [(c.name, c.type, c.constraints.nullable) for c in schema.columns]


def test_declared_table_schemas_are_the_ddls(specs):
    tables = [(t.asset_key, t.ddl, t.table) for t in [*WAREHOUSE_TABLES, *MART_TABLES]]
    tables.append((REJECTS_KEY, REJECTS_DDL, "quarantine.rejects"))
    for key, ddl, table in tables:
        declared = _declared_columns(specs[key])
        assert declared == _created_columns(ddl, table), key
        # the NOT NULL constraints of the DDL come through
        assert any(not nullable for _, _, nullable in declared), key


def test_contract_columns_are_declared(specs):
    """The contract's column lists (CONTRACT.md) are all in the declared schemas."""
    rejects = {c[0] for c in _declared_columns(specs[REJECTS_KEY])}
    assert {
        "source",
        "file_name",
        "row_number",
        "reason",
        "detail",
        "raw_record",
        "partition_date",
        "ingest_id",
        "rejected_at",
        "resolved_at",
    } <= rejects
    sales = {c[0] for c in _declared_columns(specs[dg.AssetKey(["marts", "daily_sales"])])}
    assert {
        "order_date",
        "revenue",
        "cost",
        "gross_profit",
        "profit_margin",
        "order_count",
    } <= sales


def test_dagster_asset_list_matches_the_definitions(settings, tmp_path):
    graph = build_definitions().resolve_asset_graph()
    expected: dict[str, set[str]] = {group: set() for group in GROUPS}
    for key in graph.materializable_asset_keys:
        expected[graph.get(key).group_name].add(key.to_user_string())
    env = dict(os.environ)  # ASSETS_PKG_* and DAGSTER_HOME point into tmp_path (settings)
    # lake and quarantine hold only specs (written by ingest), which the CLI does not list
    groups = sorted(group for group, keys in expected.items() if keys)
    assert groups == ["marts", "staging", "warehouse"]
    selections = {"all": None, **{group: f"group:{group}" for group in groups}}
    procs = {
        name: subprocess.Popen(
            ["dagster", "asset", "list", "-m", "assets_pkg.definitions"]
            + ([] if select is None else ["--select", select]),
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, select in selections.items()
    }
    listed: dict[str, set[str]] = {}
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(f"dagster asset list ({name}) did not finish in 120 s")
        assert proc.returncode == 0, f"dagster asset list ({name}) failed:\n{err[-3000:]}"
        listed[name] = {line.strip() for line in out.splitlines() if line.strip()}
    assert listed["all"] == {k.to_user_string() for k in graph.materializable_asset_keys}
    for group in groups:
        assert listed[group] == expected[group], group
