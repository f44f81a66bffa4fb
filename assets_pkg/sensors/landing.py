"""The landing sensor: files that land become bounded micro-batches, each ingested once.

Exactly once comes from three layers:

- a batch's ``run_key`` is a hash of its files' names, sizes and SHA-256s, so a tick that
  is evaluated again, or a daemon restarted between tick and run, asks for the same run
  and the daemon launches it once;
- the cursor remembers the batches requested and not finished, so later ticks leave
  their files alone while the run is queued or running; a batch whose run failed is
  pending again and asked for under a new key;
- the manifest (SQLite beside the data, never the DuckDB file) is the record of what was
  ingested: with the cursor lost, files already ingested are not pending, and a batch
  that two runs somehow both take is loaded by the first and a no-op for the second.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from assets_pkg.config import Settings
from assets_pkg.contracts import INGEST_ORDER
from assets_pkg.instance import reap_dead_runs
from assets_pkg.lake.ingest import landed_files, sha256_of
from assets_pkg.lake.manifest import Manifest
from assets_pkg.resources import PlatformResource

SENSOR_NAME = "landing_sensor"
#: failed batches the cursor remembers (for their retry keys)
CURSOR_KEEP = 500
FAILED = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
FINISHED = FAILED | {dg.DagsterRunStatus.SUCCESS}
#: a requested batch whose run does not exist after this long is asked for again
ORPHAN_AFTER_S = 600


@dataclass(frozen=True)
class LandedFile:
    source: str
    name: str
    size: int
    sha256: str

    @property
    def ref(self) -> str:
        return f"{self.source}/{self.name}"


def _digest(path: Path, size: int, mtime_ns: int, cache: dict[str, list]) -> str:
    key = str(path)
    hit = cache.get(key)
    if hit and hit[0] == size and hit[1] == mtime_ns:
        return hit[2]
    digest = sha256_of(path.read_bytes())
    cache[key] = [size, mtime_ns, digest]
    return digest


def pending_files(
    settings: Settings, sources: tuple[str, ...] | None = None, cache: dict | None = None
) -> list[LandedFile]:
    """Landed files the manifest has not loaded with this content, in ingest order.

    Orders come before their items (the contract's order), then names in order; a file
    whose name and content the manifest holds is a re-landing for the ingest pass to drop,
    and is not pending.
    """
    manifest = Manifest(settings.manifest_path)
    cache = {} if cache is None else cache
    waiting: list[LandedFile] = []
    for source in sources or INGEST_ORDER:
        known = manifest.known(source) if settings.manifest_path.exists() else {}
        for path in landed_files(settings.landing_dir / source):
            try:
                stat = path.lstat()
                digest = _digest(path, stat.st_size, stat.st_mtime_ns, cache)
            except OSError:
                continue  # gone since the listing (another pass archived it)
            seen = known.get(path.name)
            if seen is not None and seen.sha256 == digest and seen.status == "loaded":
                # the same content again: a no-op the next pass tidies up; not worth a run
                # on its own, but harmless in one
                continue
            waiting.append(LandedFile(source, path.name, stat.st_size, digest))
    return waiting


def batches(files: list[LandedFile], size: int) -> list[list[LandedFile]]:
    return [files[i : i + size] for i in range(0, len(files), size)]


def batch_key(batch: list[LandedFile]) -> str:
    lines = "\n".join(f"{f.ref}\t{f.size}\t{f.sha256}" for f in batch)
    return "landing-" + hashlib.sha256(lines.encode()).hexdigest()[:24]


def _run_status(instance: dg.DagsterInstance, run_key: str) -> dg.DagsterRunStatus | None:
    records = instance.get_run_records(
        filters=dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1
    )
    return records[0].dagster_run.status if records else None


def build_landing_sensor(settings: Settings) -> dg.SensorDefinition:
    sources = settings.watched_sources
    batch_files = settings.sensor_batch_files

    @dg.sensor(
        name=SENSOR_NAME,
        job_name="ingest_job",
        minimum_interval_seconds=settings.sensor_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Ingests new landing files in micro-batches of at most {batch_files} files "
            f"(sources: {', '.join(sources or INGEST_ORDER)}), each batch exactly once."
        ),
    )
    def landing_sensor(context: dg.SensorEvaluationContext, platform: PlatformResource):
        state = json.loads(context.cursor) if context.cursor else {}
        # run_key -> files and request time of batches not finished; base key -> failures
        inflight: dict[str, dict] = state.get("inflight", {})
        failures: dict[str, int] = state.get("failures", {})
        hashes: dict[str, list] = state.get("hashes", {})
        settings = platform.settings()

        # a daemon killed mid-run leaves its runs STARTED, holding their pool slots and
        # places under the run limit, and their batches in flight: nothing would move again
        for run_id in reap_dead_runs(context.instance):
            context.log.warning(f"marked run {run_id} failed: its process is gone")
        now = time.time()
        for key, batch_state in list(inflight.items()):
            status = _run_status(context.instance, key)
            if status is None and now - batch_state["at"] > ORPHAN_AFTER_S:
                del inflight[key]  # the run was never created (tick lost): ask again
            elif status is not None and status in FINISHED:
                del inflight[key]
                if status in FAILED:  # its files are pending again, under a new key
                    base = key.split("-retry")[0]
                    failures[base] = failures.get(base, 0) + 1
        taken = {ref for batch_state in inflight.values() for ref in batch_state["files"]}
        waiting = [f for f in pending_files(settings, sources, hashes) if f.ref not in taken]
        landed = {str(settings.landing_dir / f.source / f.name) for f in waiting}
        hashes = {k: v for k, v in hashes.items() if k in landed}

        requests = []
        for batch in batches(waiting, batch_files):
            base = batch_key(batch)
            key = f"{base}-retry{failures[base]}" if failures.get(base) else base
            refs = [f.ref for f in batch]
            inflight[key] = {"files": refs, "at": now}
            requests.append(
                dg.RunRequest(
                    run_key=key,
                    run_config={"ops": {"ingest_landing": {"config": {"files": refs}}}},
                    tags={
                        "landing/files": str(len(batch)),
                        "landing/bytes": str(sum(f.size for f in batch)),
                        "landing/sources": ",".join(sorted({f.source for f in batch})),
                    },
                )
            )
        failures = dict(list(failures.items())[-CURSOR_KEEP:])
        cursor = json.dumps({"inflight": inflight, "failures": failures, "hashes": hashes})
        if not requests:
            reason = (
                f"{len(taken)} file(s) in batches still running"
                if taken
                else "nothing new in the landing zone"
            )
            return dg.SensorResult(skip_reason=reason, cursor=cursor)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return landing_sensor
