"""The code location loads, and its shape matches the layer conventions."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import yaml

from assets_pkg.config import REPO_DIR
from assets_pkg.definitions import build_definitions, defs
from assets_pkg.instance import TEMPLATE

LAYERS = {"lake", "staging", "warehouse", "marts", "quarantine"}


def _assets(d: dg.Definitions) -> dict[dg.AssetKey, dg.AssetSpec]:
    return {spec.key: spec for spec in d.resolve_all_asset_specs()}


def test_definitions_load(settings):
    loaded = defs()
    assert isinstance(loaded, dg.Definitions)
    loaded.resolve_job_def("daily_pipeline")
    loaded.resolve_job_def("ingest_job")
    for layer in ("staging", "warehouse", "marts"):
        loaded.resolve_job_def(f"{layer}_job")


def test_every_asset_follows_the_layer_conventions(settings):
    specs = _assets(build_definitions())
    assert len(specs) == 6 + 1 + 6 + 6 + 4 + 2  # lake, rejects, staging, warehouse, marts, speed
    for key, spec in specs.items():
        layer = key.path[0]
        assert layer in LAYERS, key
        assert spec.group_name == layer, key
        assert spec.description, key
        assert spec.owners, key
        assert spec.kinds, key


def test_column_schema_on_every_table_asset(settings):
    specs = _assets(build_definitions())
    for key, spec in specs.items():
        if key.path[0] in ("lake", "staging"):
            assert isinstance(spec.metadata.get("dagster/column_schema"), dg.TableSchema), key


def test_daily_assets_share_one_partitioning_with_single_run_backfills(settings):
    d = build_definitions()
    graph = d.resolve_asset_graph()
    partitions = {
        key: graph.get(key).partitions_def
        for key in graph.materializable_asset_keys
        if graph.get(key).partitions_def is not None
    }
    assert len(set(map(repr, partitions.values()))) == 1
    first = next(iter(partitions.values()))
    keys = first.get_partition_keys()
    assert keys[0] == settings.start_date.isoformat()
    assert keys[-1] == settings.end_date.isoformat()
    for key in graph.materializable_asset_keys:
        policy = graph.get(key).backfill_policy
        assert policy == dg.BackfillPolicy.single_run(), key


def test_key_checks_on_every_materializable_asset(settings):
    graph = build_definitions().resolve_asset_graph()
    for key in graph.materializable_asset_keys:
        names = {check.name for check in graph.get(key).check_keys}
        table = key.path[-1]
        assert {f"{table}__unique_key", f"{table}__not_null_key"} <= names, key


def test_repo_instance_settings_match_the_seeded_template():
    root = yaml.safe_load((Path(REPO_DIR) / "dagster.yaml").read_text())
    template = yaml.safe_load(TEMPLATE.read_text())
    for section, value in template.items():
        assert root[section] == value, section
    # the storage the project's instance class defaults to, kept under data/
    assert root["storage"]["custom"] == {
        "module": "assets_pkg.instance.storage",
        "class": "ProjectSqliteStorage",
        "config": {"base_dir": "data/.dagster"},
    }
