"""Jobs that match the layers, and the whole daily pipeline."""

from __future__ import annotations

import dagster as dg

DAILY_PIPELINE = "daily_pipeline"
LAYERS = ("staging", "warehouse", "marts")


def build_jobs() -> list[dg.UnresolvedAssetJobDefinition]:
    pipeline = dg.AssetSelection.groups(*LAYERS)
    jobs = [
        dg.define_asset_job(
            DAILY_PIPELINE,
            selection=pipeline,
            description="Staging, warehouse and marts for the chosen days, with the dimensions.",
            executor_def=dg.in_process_executor,
        )
    ]
    for layer in LAYERS:
        jobs.append(
            dg.define_asset_job(
                f"{layer}_job",
                selection=dg.AssetSelection.groups(layer),
                description=f"Every asset of the {layer} layer.",
                executor_def=dg.in_process_executor,
            )
        )
    return jobs
