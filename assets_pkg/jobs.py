"""Jobs that match the layers, and the whole daily pipeline."""

from __future__ import annotations

import dagster as dg

from assets_pkg.config import Settings, load_settings
from assets_pkg.executors import build_executor

DAILY_PIPELINE = "daily_pipeline"
LAYERS = ("staging", "warehouse", "marts")


def build_jobs(settings: Settings | None = None) -> list[dg.UnresolvedAssetJobDefinition]:
    """The pipeline and one job per layer, on the executor ``ASSETS_PKG_EXECUTOR`` names."""
    executor = build_executor(settings or load_settings())
    pipeline = dg.AssetSelection.groups(*LAYERS)
    jobs = [
        dg.define_asset_job(
            DAILY_PIPELINE,
            selection=pipeline,
            description="Staging, warehouse and marts for the chosen days, with the dimensions.",
            executor_def=executor,
        )
    ]
    for layer in LAYERS:
        jobs.append(
            dg.define_asset_job(
                f"{layer}_job",
                selection=dg.AssetSelection.groups(layer),
                description=f"Every asset of the {layer} layer.",
                executor_def=executor,
            )
        )
    return jobs
