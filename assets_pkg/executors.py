"""How runs execute their steps: in one process (default), in local processes, or on celery.

Chosen by ``ASSETS_PKG_EXECUTOR`` when the definitions are built, never at import.

With celery, a step that opens the DuckDB warehouse (every step in pool ``warehouse``) is
sent to the celery queue ``warehouse``, which exactly one worker consumes, with one process:
the worker that owns the DuckDB file. Every other step (staging) goes to the default queue
``dagster``, served by any number of workers. The warehouse stays serialized by the pool
(the run claims a slot of ``warehouse`` before it submits such a step, across runs and
processes); the single-consumer queue puts those steps on the host that has the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import dagster as dg

from assets_pkg.config import Settings
from assets_pkg.warehouse.tables import WAREHOUSE_POOL

#: celery queue of the steps that open the warehouse; one worker, one process consumes it
WAREHOUSE_QUEUE = "warehouse"
#: dagster-celery's default queue (``task_default_queue``): everything else
DEFAULT_QUEUE = "dagster"
#: the op tag dagster-celery routes by; an explicit tag on an op wins over the pool rule
QUEUE_TAG = "dagster-celery/queue"
BROKER_VAR = "ASSETS_PKG_CELERY_BROKER"
BACKEND_VAR = "ASSETS_PKG_CELERY_BACKEND"


def queue_for_step(tags: dict[str, str] | Any, pool: str | None) -> str:
    """The celery queue a step goes to: its explicit queue tag, else by its pool."""
    explicit = (tags or {}).get(QUEUE_TAG)
    if explicit:
        return explicit
    return WAREHOUSE_QUEUE if pool == WAREHOUSE_POOL else DEFAULT_QUEUE


def _celery_executor_def() -> dg.ExecutorDefinition:
    # dagster-celery is an optional dependency: imported only when celery is chosen
    from celery.exceptions import DuplicateTaskNameWarning
    from dagster._core.execution.retries import RetryMode
    from dagster_celery.core_execution_loop import core_celery_execution_loop
    from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor, _submit_task

    def submit(app, plan_context, step, queue, priority, known_state):
        routed = queue_for_step(step.tags, step.pool)
        if routed != queue:
            # dagster-celery only reads op tags, and the warehouse ops carry a pool instead
            plan_context.log.info(
                f'step "{step.key}" is in pool {step.pool}: sent to celery queue "{routed}"'
            )
        with warnings.catch_warnings():
            # dagster-celery registers its task again for every submission, by design
            warnings.simplefilter("ignore", DuplicateTaskNameWarning)
            return _submit_task(app, plan_context, step, routed, priority, known_state)

    class WarehouseRoutedCeleryExecutor(CeleryExecutor):
        def execute(self, plan_context, execution_plan):
            return core_celery_execution_loop(
                plan_context, execution_plan, step_execution_fn=submit
            )

    @dg.executor(
        name="celery",
        config_schema=CELERY_CONFIG,
        requirements=dg.multiple_process_executor_requirements(),
    )
    def celery_warehouse_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
        """dagster-celery's executor, with warehouse steps on the ``warehouse`` queue."""
        config = init_context.executor_config
        return WarehouseRoutedCeleryExecutor(
            broker=config.get("broker"),
            backend=config.get("backend"),
            config_source=config.get("config_source"),
            include=config.get("include"),
            retries=RetryMode.from_config(config["retries"]),
        )

    return celery_warehouse_executor


def _from_env(var: str, value: str, fallback_var: str | None = None) -> str | dict[str, str]:
    """``{"env": VAR}`` when the value is that variable's, so the UI never shows a password."""
    import os

    for name in (var, fallback_var):
        if name and os.environ.get(name, "").strip() == value:
            return {"env": name}
    return value


def celery_config(settings: Settings) -> dict[str, Any]:
    """The celery executor's config; workers must be started against the same broker."""
    assert settings.celery_broker is not None  # checked when the settings were loaded
    backend = settings.celery_backend or settings.celery_broker
    return {
        "broker": _from_env(BROKER_VAR, settings.celery_broker),
        "backend": _from_env(BACKEND_VAR, backend, BROKER_VAR),
        "config_source": {
            # a step is long and one worker process runs one: never reserve a second one
            # that another idle worker could have started
            "worker_prefetch_multiplier": 1,
            "task_acks_late": True,
            "broker_connection_retry_on_startup": True,
            # dagster-celery's retry defaults, and a redelivery window longer than any step
            # (with late acks, redis hands an unacked task to another worker after it)
            "broker_transport_options": {
                "max_retries": 3,
                "interval_start": 0,
                "interval_step": 0.2,
                "interval_max": 0.5,
                "visibility_timeout": 12 * 3600,
            },
        },
    }


def build_executor(settings: Settings) -> dg.ExecutorDefinition:
    """The executor of the daily pipeline and the layer jobs, from ``ASSETS_PKG_EXECUTOR``."""
    if settings.executor == "celery":
        return _celery_executor_def().configured(celery_config(settings), name="celery")
    if settings.executor == "multiprocess":
        # forkserver: a spawned step costs seconds of imports, a forked one much less
        return dg.multiprocess_executor.configured(
            {"start_method": {"forkserver": {}}}, name="multiprocess"
        )
    if settings.executor == "multiprocess_spawn":
        # Dagster's default start method: where forkserver is missing (Windows), and what
        # benchmarks/end_to_end.py compares the others against
        return dg.multiprocess_executor.configured(
            {"start_method": {"spawn": {}}}, name="multiprocess"
        )
    return dg.in_process_executor


def runs_in_process(job: dg.JobDefinition) -> bool:
    return job.executor_def is dg.in_process_executor


# ----------------------------------------------------------------- reconstructable jobs
# Steps that run in other processes (celery workers, forkserver children) rebuild their job
# from a module-level function; each builds the definitions from the environment there.


def _job(name: str) -> dg.JobDefinition:
    from assets_pkg.definitions import build_definitions

    return build_definitions().resolve_job_def(name)


def daily_pipeline() -> dg.JobDefinition:
    return _job("daily_pipeline")


def staging_job() -> dg.JobDefinition:
    return _job("staging_job")


def warehouse_job() -> dg.JobDefinition:
    return _job("warehouse_job")


def marts_job() -> dg.JobDefinition:
    return _job("marts_job")


RECONSTRUCTABLE: dict[str, Callable[[], dg.JobDefinition]] = {
    "daily_pipeline": daily_pipeline,
    "staging_job": staging_job,
    "warehouse_job": warehouse_job,
    "marts_job": marts_job,
}


def reconstructable_job(name: str) -> Any:
    """A job that another process can rebuild: what non-in-process executors need."""
    if name not in RECONSTRUCTABLE:
        raise KeyError(f"job {name!r} runs in-process only")
    return dg.reconstructable(RECONSTRUCTABLE[name])
