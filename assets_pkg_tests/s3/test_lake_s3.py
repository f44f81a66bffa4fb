"""The S3 backend of LakeResource against a real S3 API on loopback.

- a file written reads back, scans lazily by day, and keeps the Hive layout in the bucket;
- rewriting a partition's file leaves exactly one data object for it, the current one;
- a finished local file (``write_file``) goes up as it is, through the manifest;
- readers go through the manifest: an object nobody switched to is never read;
- concurrent writers of one directory lose none of each other's files (conditional PUT);
- an error a retry cannot cure fails at once, naming the bucket or key, never a credential;
- transient S3 errors (5xx, timeouts) from boto3 and from Polars are classified transient;
- the lake's settings (URL, read timeout, AWS_MAX_ATTEMPTS) reach the client and Polars.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading

import dagster as dg
import polars as pl
import pytest
from botocore.exceptions import ClientError

from assets_pkg.config import ConfigError, load_settings
from assets_pkg.resources import build_resources
from assets_pkg.resources.lake import (
    LakeResource,
    LakeStorageError,
    LakeUnavailableError,
    write_parquet_file,
)
from assets_pkg.retries import is_transient, storage_errors
from assets_pkg_tests.s3.conftest import Fault, FaultProxy, bucket_keys, raw_client

DAY = dt.date(2024, 3, 1)
SCHEMA = {"id": pl.String, "n": pl.Int64}


def _frame(*ids: str) -> pl.DataFrame:
    return pl.DataFrame({"id": list(ids), "n": list(range(len(ids)))}, schema=SCHEMA)


def _bucket(url: str) -> str:
    return url.removeprefix("s3://").split("/")[0]


def test_written_files_read_back_scan_by_day_and_keep_the_hive_layout(s3_lake, moto_port):
    lake = LakeResource(root=s3_lake)
    lake.write(_frame("a", "b"), "lake", "orders", "date=2024-03-01", "ing-1.parquet")
    lake.write(_frame("c"), "lake", "orders", "date=2024-03-02", "ing-1.parquet")
    lake.write(_frame("d"), "lake", "orders", "date=2024-03-02", "ing-2.parquet")

    assert lake.read("lake", "orders", "date=2024-03-02", "ing-2.parquet")["id"].to_list() == ["d"]
    one_day = lake.scan("lake/orders", [DAY], SCHEMA).collect()
    assert sorted(one_day["id"].to_list()) == ["a", "b"]
    later = lake.scan("lake/orders", [DAY + dt.timedelta(days=1)], SCHEMA)
    assert sorted(later.filter(pl.col("id") != "c").collect()["id"].to_list()) == ["d"]
    everything = lake.scan("lake/orders", None, SCHEMA).collect()
    assert sorted(everything["id"].to_list()) == ["a", "b", "c", "d"]

    keys = bucket_keys(moto_port, _bucket(s3_lake))
    data = [k for k in keys if k.endswith(".parquet")]
    assert len(data) == 3
    assert all(k.startswith("platform/lake/orders/date=2024-03-0") for k in data)
    assert sum(k.startswith("platform/lake/orders/date=2024-03-02/ing-") for k in data) == 2
    assert "platform/lake/orders/date=2024-03-01/_manifest.json" in keys


def test_write_many_writes_each_day_through_its_manifest(s3_lake, moto_port):
    lake = LakeResource(root=s3_lake)
    days = [DAY + dt.timedelta(days=i) for i in range(6)]
    lake.write_many(
        (
            _frame(*[f"{d}-{i}" for i in range(d.day)]),
            ("staging", "stg_orders", f"date={d}", "data.parquet"),
        )
        for d in days
    )
    for day in days:
        got = lake.read("staging", "stg_orders", f"date={day}", "data.parquet")
        assert got["id"].to_list() == [f"{day}-{i}" for i in range(day.day)]
    keys = bucket_keys(moto_port, _bucket(s3_lake))
    assert len([k for k in keys if k.endswith(".parquet")]) == len(days)
    assert len([k for k in keys if k.endswith("_manifest.json") and "date=" in k]) == len(days)


def test_rewriting_a_partition_leaves_exactly_one_current_object(s3_lake, moto_port):
    lake = LakeResource(root=s3_lake)
    parts = ("staging", "stg_orders", "date=2024-03-01", "data.parquet")
    for ids in (("a",), ("a", "b"), ("c", "d", "e")):
        lake.write(_frame(*ids), *parts)

    assert lake.read(*parts)["id"].to_list() == ["c", "d", "e"]
    prefix = "platform/staging/stg_orders/date=2024-03-01/"
    keys = [k for k in bucket_keys(moto_port, _bucket(s3_lake)) if k.startswith(prefix)]
    (data,) = [k for k in keys if k.endswith(".parquet")]
    assert keys == sorted([data, prefix + "_manifest.json"])
    body = raw_client(moto_port).get_object(Bucket=_bucket(s3_lake), Key=prefix + "_manifest.json")
    assert json.loads(body["Body"].read())["files"] == {"data.parquet": data}


def test_write_file_uploads_a_finished_file_through_the_manifest(s3_lake, moto_port, tmp_path):
    lake = LakeResource(root=s3_lake)
    parts = ("lake", "_index", "orders.parquet")
    lake.write(_frame("old"), *parts)
    parked = tmp_path / "lake-_index-orders.parquet"
    write_parquet_file(_frame("a", "b"), parked)

    url = lake.write_file(parked, *parts)

    assert lake.read(*parts)["id"].to_list() == ["a", "b"]
    prefix = "platform/lake/_index/"
    keys = [k for k in bucket_keys(moto_port, _bucket(s3_lake)) if k.startswith(prefix)]
    (data,) = [k for k in keys if k.endswith(".parquet")]  # the old object was collected
    assert url.endswith(data)
    assert (
        raw_client(moto_port).get_object(Bucket=_bucket(s3_lake), Key=data)["Body"].read()
        == parked.read_bytes()
    )
    assert parked.exists()


def test_a_pinned_scan_keeps_reading_an_object_superseded_and_deleted(s3_lake, moto_port):
    lake = LakeResource(root=s3_lake)
    parts = ("lake", "_index", "orders.parquet")
    with lake.pinned_scan(*parts, schema=SCHEMA) as index:
        assert index.collect().height == 0  # no index yet
    lake.write(_frame("a", "b"), *parts)
    with lake.pinned_scan(*parts, schema=SCHEMA) as index:
        lake.write(_frame("c"), *parts)  # a pass commits: the old object is deleted
        prefix = "platform/lake/_index/"
        keys = [k for k in bucket_keys(moto_port, _bucket(s3_lake)) if k.startswith(prefix)]
        assert len([k for k in keys if k.endswith(".parquet")]) == 1
        assert index.collect()["id"].to_list() == ["a", "b"]
    assert lake.read(*parts)["id"].to_list() == ["c"]


def test_a_pin_reads_the_manifest_again_when_its_object_vanishes_first(s3_lake, monkeypatch):
    lake = LakeResource(root=s3_lake)
    parts = ("lake", "_index", "orders.parquet")
    lake.write(_frame("a"), *parts)
    load = LakeResource._load_manifest
    reads = []

    def superseded_after_read(self, folder_key):
        got = load(self, folder_key)
        reads.append(folder_key)
        if len(reads) == 1:  # between this read and the download, a pass commits
            lake.write(_frame("b", "c"), *parts)
        return got

    monkeypatch.setattr(LakeResource, "_load_manifest", superseded_after_read)
    with lake.pinned_scan(*parts, schema=SCHEMA) as index:
        assert index.collect()["id"].to_list() == ["b", "c"]
    assert reads[0] == reads[-1] and len(reads) >= 3  # read, (the write's own), read again


def test_readers_find_objects_through_the_manifest_never_by_listing(s3_lake, moto_port):
    lake = LakeResource(root=s3_lake)
    lake.write(_frame("a"), "lake", "orders", "date=2024-03-01", "ing-1.parquet")
    # an object a crashed writer uploaded but never switched to: in the prefix, not current
    stray = _frame("half-written").write_parquet
    path = lake.url("lake", "orders", "date=2024-03-01", "ing-2.0123456789abcdef.parquet")
    stray(path, storage_options=lake.storage_options())

    assert lake.scan("lake/orders", [DAY], SCHEMA).collect()["id"].to_list() == ["a"]
    assert lake.scan("lake/orders", None, SCHEMA).collect()["id"].to_list() == ["a"]
    assert not lake.exists("lake", "orders", "date=2024-03-01", "ing-2.parquet")


def test_concurrent_writers_of_one_directory_lose_no_file(s3_lake):
    names = [f"ing-{i}.rejects.parquet" for i in range(8)]
    barrier = threading.Barrier(len(names))
    errors: list[BaseException] = []

    def write(name: str) -> None:
        lake = LakeResource(root=s3_lake)  # one client each, as separate processes would have
        barrier.wait()
        try:
            lake.write(_frame(name), "lake", "_rejects", name)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    lake = LakeResource(root=s3_lake)
    assert lake.list_files("lake", "_rejects") == sorted(names)
    lake.delete("lake", "_rejects", names[0])
    assert lake.list_files("lake", "_rejects") == sorted(names[1:])
    assert lake.read("lake", "_rejects", names[1])["id"].to_list() == [names[1]]


def test_a_missing_bucket_fails_at_once_naming_it_without_credentials(s3_lake):
    lake = LakeResource(root="s3://no-such-bucket-here/platform")
    with pytest.raises(dg.Failure) as failure, storage_errors():
        lake.write(_frame("a"), "lake", "orders", "date=2024-03-01", "ing-1.parquet")
    assert failure.value.allow_retries is False
    message = failure.value.description
    assert "s3://no-such-bucket-here/platform/lake/orders/date=2024-03-01/" in message
    assert "NoSuchBucket" in message and "\n" not in message
    assert "test-secret-key" not in message and "test-key-id" not in message
    assert isinstance(failure.value.__cause__, LakeStorageError)


def test_access_denied_on_a_parquet_read_fails_at_once_in_one_line(s3_lake, fault_proxy):
    lake = LakeResource(root=s3_lake)
    lake.write(_frame("a"), "lake", "orders", "date=2024-03-01", "ing-1.parquet")
    fault_proxy.add(Fault("GET", "/ing-1.", status=403, code="AccessDenied", times=None))
    with pytest.raises(dg.Failure) as failure, storage_errors():
        lake.scan("lake/orders", [DAY], SCHEMA).collect()
    message = failure.value.description
    assert failure.value.allow_retries is False
    assert "AccessDenied" in message and "\n" not in message
    assert f"{s3_lake}/lake/orders/date=2024-03-01/ing-1." in message
    assert "test-secret-key" not in message


def test_s3_server_errors_and_timeouts_are_transient(s3_lake, fault_proxy):
    lake = LakeResource(root=s3_lake, s3_max_attempts=1, s3_timeout_s=1)
    lake.write(_frame("a"), "lake", "orders", "date=2024-03-01", "ing-1.parquet")
    scan = lake.scan("lake/orders", [DAY], SCHEMA)

    fault_proxy.add(Fault("PUT", "/lake/orders/", status=503, code="SlowDown", times=None))
    with pytest.raises(LakeUnavailableError) as slow_down:
        lake.write(_frame("b"), "lake", "orders", "date=2024-03-01", "ing-2.parquet")
    assert is_transient(slow_down.value)
    assert f"{s3_lake}/lake/orders/date=2024-03-01/ing-2." in str(slow_down.value)
    assert "SlowDown" in str(slow_down.value)
    fault_proxy.clear()

    fault_proxy.add(Fault("GET", "/ing-1.", status=500, code="InternalError", times=None))
    with pytest.raises(OSError) as internal:
        scan.collect()
    assert is_transient(internal.value)
    fault_proxy.clear()

    fault_proxy.add(Fault("GET", "/ing-1.", stall=True, times=None))
    with pytest.raises(OSError) as stalled:
        scan.collect()
    assert is_transient(stalled.value)
    fault_proxy.clear()

    # and the partition is as it was: the failed write switched nothing
    assert scan.collect()["id"].to_list() == ["a"]
    assert not lake.exists("lake", "orders", "date=2024-03-01", "ing-2.parquet")


def test_client_errors_are_classified_by_code():
    def error(code: str, status: int) -> ClientError:
        response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return ClientError(response, "PutObject")  # type: ignore[arg-type]

    assert is_transient(error("SlowDown", 503))
    assert is_transient(error("InternalError", 500))
    assert is_transient(error("RequestTimeout", 400))
    assert not is_transient(error("AccessDenied", 403))
    assert not is_transient(error("NoSuchBucket", 404))


def test_fault_proxy_passes_requests_through(fault_proxy: FaultProxy, s3_lake):
    lake = LakeResource(root=s3_lake)
    lake.write(_frame("a"), "lake", "customers", "ing-1.parquet")
    assert lake.scan("lake/customers", None, SCHEMA).collect()["id"].to_list() == ["a"]
    assert fault_proxy.requests("PUT", "/lake/customers/ing-1.")


def test_the_lake_settings_reach_the_resource_and_its_polars_options(s3_lake, monkeypatch):
    monkeypatch.setenv("ASSETS_PKG_LAKE_URL", s3_lake)
    monkeypatch.setenv("ASSETS_PKG_LAKE_TIMEOUT_S", "7")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "5")
    lake = build_resources(load_settings())["lake"]
    assert lake.root == s3_lake
    options = lake.storage_options()
    assert options["timeout"] == "7s" and options["max_retries"] == 4
    assert options["aws_endpoint_url"] == os.environ["AWS_ENDPOINT_URL"]
    assert options["aws_region"] == "us-east-1" and options["aws_allow_http"] == "true"
    monkeypatch.setenv("ASSETS_PKG_LAKE_TIMEOUT_S", "0")
    with pytest.raises(ConfigError, match="ASSETS_PKG_LAKE_TIMEOUT_S"):
        load_settings()
