"""The whole pipeline with its lake on a real S3 API (moto's server on loopback).

The same generated sample goes through ingest and a backfill twice, with the real CLI
functions: once with a local lake, once with ``ASSETS_PKG_LAKE_URL=s3://bucket/prefix``.

- every warehouse and mart table (and the rejects) is identical between the two runs, and
  so is the speed layer, which ingest computes from the lake;
- the bucket holds the lake and staging datasets in the same Hive layout as the local lake;
- a second backfill leaves the tables unchanged and exactly one data object per staging
  partition (the superseded ones are collected), each the one its manifest points at.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import pytest

from assets_pkg.cli.main import do_backfill, do_ingest
from assets_pkg.config import Settings, load_settings
from assets_pkg.sample.generator import generate
from assets_pkg_tests.conftest import use_temp_platform
from assets_pkg_tests.s3.conftest import bucket_keys, new_bucket, raw_client, use_s3
from assets_pkg_tests.test_end_to_end import table_hashes

START = dt.date(2024, 3, 1)
END = dt.date(2024, 3, 4)
SEED = 23
SCALE = 0.03
OBJECT_ID = re.compile(r"\.[0-9a-f]{16}\.parquet$")


def realtime_rows(settings: Settings) -> dict[str, list[tuple]]:
    """The speed layer's tables (computed from the lake after each ingest), minus ``as_of``."""
    with duckdb.connect(str(settings.realtime_path), read_only=True) as conn:
        return {
            table: conn.execute(f"SELECT * EXCLUDE (as_of) FROM {table} ORDER BY ALL").fetchall()
            for table in ("marts.realtime_sales_by_category", "marts.realtime_funnel")
        }


def prepare_platform(root: Path, mp: pytest.MonkeyPatch, lake_url: str | None = None) -> Settings:
    """A platform under ``root`` (its lake at ``lake_url`` if given) with the sample landed."""
    use_temp_platform(root, mp, START, END)
    if lake_url:
        mp.setenv("ASSETS_PKG_LAKE_URL", lake_url)
    settings = load_settings()
    generate(settings.landing_dir, start=START, days=(END - START).days + 1, seed=SEED, scale=SCALE)
    return settings


def run_platform(
    root: Path, mp: pytest.MonkeyPatch, lake_url: str | None = None, speed: dict | None = None
) -> Settings:
    """Generate, ingest and backfill one platform under ``root``.

    ``speed`` receives the speed layer's rows as ingest left them (the backfill then
    replaces those days with the batch marts, and empties them).
    """
    settings = prepare_platform(root, mp, lake_url)
    do_ingest(settings)
    if speed is not None:
        speed.update(realtime_rows(settings))
    do_backfill(settings, START, END)
    return settings


def logical_files(keys: list[str], prefix: str) -> set[str]:
    """Bucket data keys as the lake's file names: without the prefix and the object id."""
    return {
        OBJECT_ID.sub(".parquet", k.removeprefix(prefix))
        for k in keys
        if k.startswith(prefix) and k.endswith(".parquet")
    }


@pytest.fixture(scope="module")
def platforms(tmp_path_factory, moto_port):
    root = tmp_path_factory.mktemp("s3-e2e")
    local_speed: dict[str, list[tuple]] = {}
    remote_speed: dict[str, list[tuple]] = {}
    with pytest.MonkeyPatch.context() as mp:
        local = run_platform(root / "local", mp, speed=local_speed)
        local_hashes = table_hashes(local)
    with pytest.MonkeyPatch.context() as mp:
        use_s3(mp, f"http://127.0.0.1:{moto_port}", root)
        bucket = new_bucket(moto_port)
        remote = run_platform(root / "s3", mp, f"s3://{bucket}/platform", speed=remote_speed)
        remote_hashes = table_hashes(remote)
        yield local, local_hashes, remote, remote_hashes, bucket, local_speed, remote_speed


def test_marts_and_warehouse_on_s3_equal_the_local_run(platforms):
    _, local_hashes, _, remote_hashes, *_ = platforms
    assert set(local_hashes) == set(remote_hashes)
    for table, digest in local_hashes.items():
        assert not digest.startswith("0:"), f"the sample should produce rows for {table}"
    assert remote_hashes == local_hashes


def test_the_speed_layer_read_from_s3_equals_the_local_one(platforms):
    *_, local_speed, remote_speed = platforms
    assert all(local_speed.values()), "the last days should be in the speed layer"
    assert remote_speed == local_speed


def test_the_bucket_holds_the_same_hive_layout_as_the_local_lake(platforms, moto_port):
    local, _, _, _, bucket, *_ = platforms
    keys = bucket_keys(moto_port, bucket)
    in_bucket = logical_files(keys, "platform/")
    lake_root = Path(local.lake_url)
    on_disk = {str(p.relative_to(lake_root)) for p in lake_root.rglob("*.parquet")}
    assert in_bucket == on_disk
    assert any(
        re.fullmatch(r"lake/orders/date=2024-03-0\d/ing-[0-9a-f]+\.parquet", f) for f in on_disk
    )
    assert "staging/stg_orders/date=2024-03-01/data.parquet" in in_bucket
    # the staged rejects were published and removed: their manifest is empty, no object left
    assert not [k for k in keys if k.startswith("platform/lake/_rejects/") and "parquet" in k]


def test_a_second_backfill_changes_nothing_and_keeps_one_object_per_partition(platforms, moto_port):
    _, _, remote, remote_hashes, bucket, *_ = platforms
    staging = "platform/staging/stg_orders/"
    before = [k for k in bucket_keys(moto_port, bucket) if k.startswith(staging)]
    do_backfill(remote, START, END)
    assert table_hashes(remote) == remote_hashes

    after = [k for k in bucket_keys(moto_port, bucket) if k.startswith(staging)]
    data = [k for k in after if k.endswith(".parquet")]
    days = [(START + dt.timedelta(days=i)).isoformat() for i in range((END - START).days + 1)]
    assert sorted(k.split("/")[3] for k in data) == [f"date={d}" for d in days]
    assert not set(data) & set(before), "every partition was rewritten as a new object"
    client = raw_client(moto_port)
    for key in data:
        manifest = key.rsplit("/", 1)[0] + "/_manifest.json"
        body = client.get_object(Bucket=bucket, Key=manifest)["Body"].read().decode()
        assert key in body
