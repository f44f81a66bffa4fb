"""S3 faults injected by a loopback proxy in front of moto, through the real CLI functions.

- transient faults (PUTs answered 503 SlowDown more often than the client retries, Parquet
  GETs answered 500, a GET stalled past the client's timeout) are retried, by the client
  and then by the step's retry policy, and the run ends with the same tables as a clean
  local run;
- a persistent fault on a partition's switch fails the run with a one-line reason naming
  the step and the error, and readers still see that partition's previous complete data:
  the new object was never switched to (and is removed), the manifest still points at the
  old one;
- once the fault is gone, the same backfill succeeds and the partition holds exactly one
  data object, the new one;
- an AccessDenied fails the run at once (no step retry), naming the object, no credential.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets_pkg.cli.main import CommandError, do_backfill, do_ingest
from assets_pkg.contracts import SOURCES
from assets_pkg.resources.lake import LakeResource
from assets_pkg.staging.transforms import staging_schema
from assets_pkg_tests.s3.conftest import Fault, FaultProxy, bucket_keys, new_bucket, use_s3
from assets_pkg_tests.s3.test_pipeline_s3 import END, START, prepare_platform, run_platform
from assets_pkg_tests.test_end_to_end import table_hashes

DAY = dt.date(2024, 3, 2)
STAGED = ("staging", "stg_orders", f"date={DAY.isoformat()}", "data.parquet")


def _last_run_retries() -> list[str]:
    """Step keys that went up for retry in the latest run of the platform's instance."""
    instance = dg.DagsterInstance.get()
    (run,) = instance.get_runs(limit=1)
    events = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
    return [e.step_key for e in events if e.step_key]


def _recovered(proxy: FaultProxy, method: str, path: str) -> bool:
    """Some request was failed on purpose, and a later one to the same partition succeeded.

    Compared by directory: a retried step writes a new object, under a new name.
    """
    hits = proxy.requests(method, path)
    first = next((i for i, r in enumerate(hits) if r.injected), None)
    if first is None:
        return False
    folder = hits[first].path.rsplit("/", 1)[0]
    return any(r.path.startswith(folder) and r.status < 300 for r in hits[first + 1 :])


@pytest.fixture(scope="module")
def faulty(tmp_path_factory, moto_port, fault_proxy):
    root = tmp_path_factory.mktemp("s3-faults")
    with pytest.MonkeyPatch.context() as mp:
        local_hashes = table_hashes(run_platform(root / "local", mp))
    with pytest.MonkeyPatch.context() as mp:
        use_s3(mp, fault_proxy.url, root)
        lake_url = f"s3://{new_bucket(moto_port)}/platform"
        fault_proxy.reset()
        # more failed PUTs of a lake partition than the client's own attempts: the ingest
        # step fails once and its retry policy runs it again
        fault_proxy.add(Fault("PUT", "/lake/orders/date=", status=503, code="SlowDown", times=4))
        # Parquet reads of staging: a 500 more often than Polars tries a read (it makes six
        # attempts with max_retries=2: its own retry over the object store's three), so the
        # step's retry policy runs it again; and a GET stalled past the read timeout, which
        # Polars itself tries again
        fault_proxy.add(
            Fault(
                "GET",
                "/lake/orders/date=2024-03-02/ing-",
                status=500,
                code="InternalError",
                times=6,
            )
        )
        fault_proxy.add(Fault("GET", "/lake/payments/date=", stall=True, times=1))
        settings = prepare_platform(root / "s3", mp, lake_url)
        do_ingest(settings)
        retried = {"ingest": _last_run_retries()}
        do_backfill(settings, START, END)
        retried["backfill"] = _last_run_retries()
        faults = list(fault_proxy.faults)
        fault_proxy.clear()
        yield settings, local_hashes, retried, faults, mp


def test_transient_faults_are_retried_and_the_run_matches_the_local_one(faulty, fault_proxy):
    settings, local_hashes, retried, faults, _ = faulty
    assert [f.injected for f in faults] == [4, 6, 1], "every fault was hit"
    assert _recovered(fault_proxy, "PUT", "/lake/orders/date=")
    assert _recovered(fault_proxy, "GET", "/lake/orders/date=2024-03-02/ing-")
    assert retried["ingest"], "the ingest step went up for retry"
    assert "staging__stg_orders" in retried["backfill"]
    assert table_hashes(settings) == local_hashes


def test_a_persistent_fault_fails_the_run_and_readers_keep_the_old_partition(
    faulty, fault_proxy, moto_port
):
    settings, _, _, _, _ = faulty
    lake = LakeResource(root=settings.lake_url)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        order_id, customer_id, order_ts = conn.execute(
            "SELECT order_id, customer_id, order_ts FROM warehouse.fct_orders "
            "WHERE order_date = ? AND status <> 'cancelled' ORDER BY order_id LIMIT 1",
            [DAY],
        ).fetchone()
    update = settings.landing_dir / "orders" / "zz_cancellation.csv"
    update.write_text(
        "order_id,customer_id,order_ts,status,channel\n"
        f"{order_id},{customer_id},{order_ts:%Y-%m-%dT%H:%M:%S},cancelled,web\n"
    )
    do_ingest(settings)

    schema = staging_schema(SOURCES["orders"])
    before = lake.read(*STAGED)
    bucket = settings.lake_url.removeprefix("s3://").split("/")[0]
    prefix = f"platform/{'/'.join(STAGED[:-1])}/"
    keys_before = [k for k in bucket_keys(moto_port, bucket) if k.startswith(prefix)]

    fault_proxy.add(Fault("PUT", f"/{'/'.join(STAGED[:-1])}/_manifest.json", times=None))
    with pytest.raises(CommandError) as failure:
        do_backfill(settings, DAY, DAY)
    fault_proxy.clear()
    message = str(failure.value)
    assert "\n" not in message
    assert "stg_orders" in message and "SlowDown" in message

    # what the warehouse step reads (a lazy scan of the day) is the previous partition
    seen = lake.scan("staging/stg_orders", [DAY], schema).collect()
    assert seen.sort("order_id").equals(before.sort("order_id"))
    assert seen.filter(pl.col("order_id") == order_id)["status"].to_list() != ["cancelled"]
    assert [k for k in bucket_keys(moto_port, bucket) if k.startswith(prefix)] == keys_before

    do_backfill(settings, DAY, DAY)
    after = lake.read(*STAGED)
    assert after.filter(pl.col("order_id") == order_id)["status"].to_list() == ["cancelled"]
    keys_after = [k for k in bucket_keys(moto_port, bucket) if k.startswith(prefix)]
    assert len([k for k in keys_after if k.endswith(".parquet")]) == 1
    assert not set(keys_after) & {k for k in keys_before if k.endswith(".parquet")}


def test_access_denied_fails_the_run_at_once_naming_the_object(faulty, fault_proxy):
    settings, _, _, _, _ = faulty
    fault_proxy.add(
        Fault("PUT", "/staging/stg_payments/", status=403, code="AccessDenied", times=None)
    )
    with pytest.raises(CommandError) as failure:
        do_backfill(settings, DAY, DAY)
    fault_proxy.clear()
    message = str(failure.value)
    assert _last_run_retries() == [], "a permanent error is not retried"
    assert "stg_payments" in message and "AccessDenied" in message
    assert f"{settings.lake_url}/staging/stg_payments/date={DAY.isoformat()}/data." in message
    assert "\n" not in message and "test-secret-key" not in message
