"""The landing sensor on a real instance over a temp landing zone: micro-batches, run keys,
cursors, a lost cursor, failed runs, late data."""

from __future__ import annotations

import dagster as dg
import pytest

from assets_pkg.cli.main import do_ingest
from assets_pkg.definitions import build_definitions
from assets_pkg.lake.manifest import Manifest
from assets_pkg.resources import build_resources
from assets_pkg.sensors.landing import SENSOR_NAME
from assets_pkg_tests.conftest import land

ORDERS = "order_id,customer_id,order_ts,status,channel\n"
ITEMS = "order_id,line_number,product_id,quantity,unit_price\n"


def order_file(order_id: str, day: str = "2024-03-02") -> str:
    return ORDERS + f"{order_id},C1,{day}T10:00:00Z,placed,web\n"


@pytest.fixture
def instance(settings):
    with dg.instance_for_test() as instance:
        yield instance


def evaluate(settings, instance, cursor: str | None = None) -> dg.SensorResult:
    defs = build_definitions()
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"platform": build_resources(settings)["platform"]},
        definitions=defs,
    )
    return defs.resolve_sensor_def(SENSOR_NAME)(context)


def files_of(request: dg.RunRequest) -> list[str]:
    return request.run_config["ops"]["ingest_landing"]["config"]["files"]


def launch(instance, request: dg.RunRequest, fail: bool = False) -> dg.ExecuteInProcessResult:
    """Execute a requested run the way the daemon does: its config, tags and run key."""
    job = build_definitions().resolve_job_def("ingest_job")
    config = request.run_config
    if fail:  # a run that cannot succeed: a resource pointing nowhere writable
        config = {**config, "resources": {"lake": {"config": {"root": "/proc/nope"}}}}
    return job.execute_in_process(
        instance=instance,
        run_config=config,
        tags={**request.tags, "dagster/run_key": request.run_key},
        raise_on_error=False,
    )


def test_new_files_become_one_request_and_files_in_flight_are_ignored(settings, instance):
    first = evaluate(settings, instance)
    assert not first.run_requests and "nothing new" in first.skip_reason.skip_message
    land(settings, "order_items", "order_items_1.csv", ITEMS + "O1,1,P1,1,5.00\n")
    land(settings, "orders", "orders_1.csv", order_file("O1"))
    land(settings, "orders", "orders_2.csv.partial", order_file("O2"))  # still being written
    land(settings, "orders", ".orders_3.csv", order_file("O3"))  # hidden: being written
    land(settings, "orders", "orders_4.csv.tmp", order_file("O4"))
    result = evaluate(settings, instance)
    (request,) = result.run_requests
    # orders come before their items (the contract's ingest order)
    assert files_of(request) == ["orders/orders_1.csv", "order_items/order_items_1.csv"]
    assert request.run_key.startswith("landing-")
    assert request.tags["landing/files"] == "2"

    # the same tick evaluated again (same cursor in): the same run key, which the daemon
    # launches once
    again = evaluate(settings, instance, cursor=None)
    assert [r.run_key for r in again.run_requests] == [request.run_key]
    # the next tick (cursor out of the last one): the batch is in flight, nothing new
    follow = evaluate(settings, instance, cursor=result.cursor)
    assert not follow.run_requests
    assert "still running" in follow.skip_reason.skip_message


def test_a_run_takes_exactly_its_batch_and_the_manifest_records_it(settings, instance, monkeypatch):
    monkeypatch.setenv("ASSETS_PKG_SENSOR_BATCH_FILES", "2")
    for i in range(1, 6):
        land(settings, "orders", f"orders_{i}.csv", order_file(f"O{i}"))
    result = evaluate(settings, instance)
    assert [files_of(r) for r in result.run_requests] == [
        ["orders/orders_1.csv", "orders/orders_2.csv"],
        ["orders/orders_3.csv", "orders/orders_4.csv"],
        ["orders/orders_5.csv"],
    ]
    run = launch(instance, result.run_requests[1])
    assert run.success
    known = Manifest(settings.manifest_path).known("orders")
    assert sorted(known) == ["orders_3.csv", "orders_4.csv"]
    assert {settings.landing_dir / "orders" / f"orders_{i}.csv" for i in (1, 2, 5)} == set(
        (settings.landing_dir / "orders").iterdir()
    )
    # the next tick: batch 2 finished, batches 1 and 3 still queued: nothing to ask for
    assert not evaluate(settings, instance, cursor=result.cursor).run_requests


def test_a_burst_of_small_files_becomes_a_handful_of_runs(settings, instance):
    for i in range(1000):
        land(
            settings,
            "events",
            f"events_{i:04d}.jsonl",
            f'{{"event_id": "E{i}", "session_id": "S{i % 50}", "event_type": "page_view", '
            f'"event_ts": "2024-03-02T10:00:00Z"}}\n',
        )
    result = evaluate(settings, instance)
    assert len(result.run_requests) == 5  # default batch: 200 files
    assert sum(len(files_of(r)) for r in result.run_requests) == 1000
    assert len({r.run_key for r in result.run_requests}) == 5


def test_a_lost_cursor_does_not_ingest_twice(settings, instance):
    land(settings, "orders", "orders_1.csv", order_file("O1"))
    result = evaluate(settings, instance)
    (request,) = result.run_requests
    assert launch(instance, request).success
    # the daemon restarts with its cursor lost: the manifest knows the file
    restarted = evaluate(settings, instance, cursor=None)
    assert not restarted.run_requests
    # the same file landing again, unchanged, is not worth a run either
    land(settings, "orders", "orders_1.csv", order_file("O1"))
    assert not evaluate(settings, instance, cursor=None).run_requests
    # new content under the same name is: the ingest pass quarantines it (name_reused)
    land(settings, "orders", "orders_1.csv", order_file("O1").replace("placed", "shipped"))
    (reused,) = evaluate(settings, instance, cursor=None).run_requests
    assert reused.run_key != request.run_key
    assert launch(instance, reused).success
    assert (settings.quarantine_dir / "orders" / "orders_1.csv.error.json").exists()
    # and a run asked twice (lost cursor while queued) loads the file once
    land(settings, "orders", "orders_2.csv", order_file("O2"))
    (twice_a,) = evaluate(settings, instance, cursor=None).run_requests
    (twice_b,) = evaluate(settings, instance, cursor=None).run_requests
    assert twice_a.run_key == twice_b.run_key
    assert launch(instance, twice_a).success and launch(instance, twice_b).success
    assert Manifest(settings.manifest_path).counts() == {"loaded": 2}


def test_a_failed_batch_is_asked_for_again_under_a_new_key(settings, instance):
    land(settings, "orders", "orders_1.csv", order_file("O1"))
    result = evaluate(settings, instance)
    (request,) = result.run_requests
    assert not launch(instance, request, fail=True).success
    retry = evaluate(settings, instance, cursor=result.cursor)
    (again,) = retry.run_requests
    assert again.run_key == f"{request.run_key}-retry1"
    assert files_of(again) == files_of(request)
    assert launch(instance, again).success
    assert not evaluate(settings, instance, cursor=retry.cursor).run_requests


def test_late_data_for_an_old_partition_is_recorded_on_that_day(settings, instance):
    land(settings, "orders", "orders_1.csv", order_file("O1", "2024-03-09"))
    do_ingest(settings)
    land(settings, "orders", "orders_late.csv", order_file("O0", "2024-03-01"))
    (request,) = evaluate(settings, instance).run_requests
    assert files_of(request) == ["orders/orders_late.csv"]
    run = launch(instance, request)
    assert run.success
    days = sorted(
        e.partition for e in run.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["lake", "orders"])
    )  # fmt: skip
    assert days == ["2024-03-01"]


def test_watched_sources_and_interval_come_from_settings(settings, instance, monkeypatch):
    monkeypatch.setenv("ASSETS_PKG_SENSOR_SOURCES", "events")
    monkeypatch.setenv("ASSETS_PKG_SENSOR_INTERVAL_S", "7")
    sensor = build_definitions().resolve_sensor_def(SENSOR_NAME)
    assert sensor.minimum_interval_seconds == 7
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    land(settings, "orders", "orders_1.csv", order_file("O1"))
    assert not evaluate(settings, instance).run_requests
    land(settings, "events", "events_1.jsonl", '{"event_id": "E1"}\n')
    (request,) = evaluate(settings, instance).run_requests
    assert files_of(request) == ["events/events_1.jsonl"]
