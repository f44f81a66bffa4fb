"""The landing sensor, evaluated with a real instance over a temp landing zone."""

from __future__ import annotations

import dagster as dg

from assets_pkg.cli.main import do_ingest
from assets_pkg.resources import build_resources
from assets_pkg.sensors import landing_sensor
from assets_pkg_tests.conftest import land

ORDERS = "order_id,customer_id,order_ts,status\nO1,C1,2024-03-01T10:00:00Z,placed\n"


def _evaluate(settings, instance: dg.DagsterInstance):
    context = dg.build_sensor_context(
        instance=instance, resources={"platform": build_resources(settings)["platform"]}
    )
    return landing_sensor(context)


def test_requests_one_run_per_set_of_new_files(settings):
    with dg.instance_for_test() as instance:
        assert isinstance(_evaluate(settings, instance), dg.SkipReason)
        land(settings, "orders", "orders_1.csv", ORDERS)
        land(settings, "orders", "orders_2.csv.partial", ORDERS)  # still being written
        first = _evaluate(settings, instance)
        assert isinstance(first, dg.RunRequest)
        assert first.run_key == _evaluate(settings, instance).run_key  # re-evaluation
        land(settings, "events", "events_1.jsonl", '{"event_id": "E1"}\n')
        assert _evaluate(settings, instance).run_key != first.run_key


def test_skips_once_the_manifest_has_the_files(settings):
    land(settings, "orders", "orders_1.csv", ORDERS)
    do_ingest(settings)
    with dg.instance_for_test() as instance:
        assert isinstance(_evaluate(settings, instance), dg.SkipReason)
        # the same name landing again is for the ingest pass to judge: it asks for a run
        land(settings, "orders", "orders_1.csv", ORDERS.replace("placed", "shipped"))
        assert isinstance(_evaluate(settings, instance), dg.RunRequest)
