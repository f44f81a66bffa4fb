"""Evaluate a sensor or a schedule and execute what it requests, as the daemon's run
worker would: in its own process, recorded in the shared instance.

``python -m assets_pkg_tests.launcher sensor landing_sensor``
``python -m assets_pkg_tests.launcher schedule daily_pipeline_schedule 2024-03-16T02:00``

With ``--go-on-stdin`` it gets ready (imports, instance, definitions: seconds), prints
``ready`` and waits for a line on stdin before it evaluates: a test can start it the moment
another run is under way, without its start-up deciding whether the two overlap.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable

import dagster as dg

from assets_pkg.config import load_settings
from assets_pkg.definitions import build_definitions
from assets_pkg.instance import ensure_instance, process_tags
from assets_pkg.resources import build_resources

LAUNCHED_BY = "assets_pkg_tests/launched_by"


def requests_of(
    kind: str, name: str, when: dt.datetime | None, instance, defs: dg.Definitions
) -> list[dg.RunRequest]:
    repo = defs.get_repository_def()
    if kind == "sensor":
        context = dg.build_sensor_context(
            instance=instance,
            resources={"platform": build_resources()["platform"]},
            definitions=defs,
        )
        result = defs.resolve_sensor_def(name)(context)
        if isinstance(result, dg.RunRequest):
            return [result]
        return list(getattr(result, "run_requests", None) or [])
    schedule = defs.resolve_schedule_def(name)
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, repository_def=repo
    )
    return list(schedule.evaluate_tick(context).run_requests or [])


def execute(
    kind: str, name: str, when: dt.datetime | None = None, go: Callable[[], None] | None = None
) -> list[bool]:
    instance = ensure_instance(load_settings())
    defs = build_definitions()
    defs.get_repository_def()  # resolved now, not after ``go``
    if go is not None:
        go()
    outcomes = []
    for request in requests_of(kind, name, when, instance, defs):
        job_name = request.job_name or (
            defs.resolve_sensor_def(name).job_name
            if kind == "sensor"
            else defs.resolve_schedule_def(name).job_name
        )
        job = defs.resolve_job_def(job_name)
        result = job.execute_in_process(
            instance=instance,
            run_config=request.run_config,
            partition_key=request.partition_key,
            asset_selection=request.asset_selection,
            tags={
                **request.tags,
                **process_tags(),
                LAUNCHED_BY: f"{kind}:{name}",
                "dagster/run_key": request.run_key or "",
            },
            raise_on_error=False,
        )
        outcomes.append(result.success)
    return outcomes


def _ready_then_wait() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def main(argv: list[str]) -> int:
    wait = "--go-on-stdin" in argv
    argv = [a for a in argv if a != "--go-on-stdin"]
    kind, name = argv[0], argv[1]
    when = dt.datetime.fromisoformat(argv[2]).replace(tzinfo=dt.UTC) if len(argv) > 2 else None
    outcomes = execute(kind, name, when, _ready_then_wait if wait else None)
    print(f"{kind} {name}: {len(outcomes)} run(s), {sum(outcomes)} succeeded", flush=True)
    return 0 if outcomes and all(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
