"""The landing sensor: asks for an ingest run when files the manifest has not seen land."""

import hashlib

import dagster as dg

from assets_pkg.contracts import INGEST_ORDER
from assets_pkg.lake.ingest import landed_files
from assets_pkg.lake.manifest import Manifest
from assets_pkg.resources import PlatformResource


def pending_files(platform: PlatformResource) -> list[tuple[str, str, int]]:
    """(source, name, size) of landed files whose name the manifest does not hold yet.

    Re-landed known names are picked up by the ingest pass itself; the sensor only
    needs to know that something new is waiting.
    """
    settings = platform.settings()
    manifest = Manifest(settings.manifest_path)
    waiting: list[tuple[str, str, int]] = []
    for source in INGEST_ORDER:
        known = manifest.known(source) if settings.manifest_path.exists() else {}
        for path in landed_files(settings.landing_dir / source):
            if path.name not in known or known[path.name].size != path.lstat().st_size:
                waiting.append((source, path.name, path.lstat().st_size))
    return waiting


@dg.sensor(
    name="landing_sensor",
    job_name="ingest_job",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests an ingest run when new files land (one run per distinct set of files).",
)
def landing_sensor(context: dg.SensorEvaluationContext, platform: PlatformResource):
    waiting = pending_files(platform)
    if not waiting:
        return dg.SkipReason("nothing new in the landing zone")
    digest = hashlib.sha256(
        "\n".join(f"{s}/{n}/{size}" for s, n, size in waiting).encode()
    ).hexdigest()[:20]
    return dg.RunRequest(run_key=f"landing-{digest}", tags={"landing/files": str(len(waiting))})
