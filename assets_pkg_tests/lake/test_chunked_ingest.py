"""A pass applied a chunk of files at a time, its rows written as its spool fills, equals
one batch.

Ingest applies each source's files in chunks of ``CHUNK_BYTES`` (so memory follows the
chunk, not the source) and holds the dated rows in a spool until ``SPOOL_BYTES``, then
writes them to the lake. Here the generated dirty sample goes through two passes twice:
with the shipped sizes (every source in one chunk, one lake write at its end) and with
every file its own chunk, every chunk written at once (a day's rows in several files) or
all of them held to the source's end.
Lake rows and where they live, version indexes, held-back items, staged rejects and the
pass reports must be identical.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets_pkg.config import Settings
from assets_pkg.contracts import INGEST_ORDER
from assets_pkg.lake import ingest
from assets_pkg.lake.ingest import IngestPass, RowSize, Spool
from assets_pkg.resources.lake import LakeResource
from assets_pkg.sample.generator import generate


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    generate(root, start=dt.date(2024, 1, 1), days=8, seed=11, scale=0.3)
    return root


def _land_half(sample: Path, landing: Path, half: int) -> None:
    """First or second half of each source's files (by name): two passes, late arrivals."""
    for source in INGEST_ORDER:
        names = sorted(p.name for p in (sample / source).iterdir())
        cut = len(names) // 2
        for name in names[:cut] if half == 0 else names[cut:]:
            (landing / source).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sample / source / name, landing / source / name)


def _two_passes(settings: Settings, sample: Path, root: Path) -> tuple[dict, list]:
    settings = dataclasses.replace(settings, data_dir=root / "data", lake_url=str(root / "lake"))
    lake = LakeResource(root=settings.lake_url)
    reports = []
    for half in (0, 1):
        _land_half(sample, settings.landing_dir, half)
        report = IngestPass(settings, lake).run()
        reports.append(
            {
                source: dataclasses.asdict(r) | {"touched": sorted(r.touched)}
                for source, r in report.sources.items()
            }
        )
    assert not (settings.data_dir / ".ingest-spool").exists()
    lake_root = Path(settings.lake_url) / "lake"
    tables = {}
    for folder in sorted(p for p in lake_root.iterdir() if p.is_dir()):
        frames = [
            pl.read_parquet(f).with_columns(_where=pl.lit(str(f.parent.relative_to(lake_root))))
            for f in sorted(folder.rglob("*.parquet"))
        ]
        if folder.name == "_rejects":  # staged sets are named by the time of the pass
            frames = [f.drop("rejected_at", "resolved_at", strict=False) for f in frames]
        table = pl.concat(frames, how="diagonal_relaxed")
        tables[folder.name] = table.sort(table.columns, nulls_last=True)
    return tables, reports


@pytest.mark.parametrize(
    "spool_bytes",
    [
        pytest.param(1, id="every-chunk-written-at-once"),
        # events are held across chunks and checked against their index once, at the end
        pytest.param(None, id="chunks-held-to-the-end"),
    ],
)
def test_one_file_per_chunk_equals_one_batch(
    settings: Settings,
    sample: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spool_bytes: int | None,
):
    whole, whole_reports = _two_passes(settings, sample, tmp_path / "whole")

    monkeypatch.setattr(ingest, "CHUNK_BYTES", 1)
    if spool_bytes is not None:
        monkeypatch.setattr(ingest, "SPOOL_BYTES", spool_bytes)
    chunked, chunked_reports = _two_passes(settings, sample, tmp_path / "chunked")

    assert chunked_reports == whole_reports
    assert set(chunked) == set(whole)
    for name, table in whole.items():
        assert_frame_equal(chunked[name], table, check_column_order=False)
    # the sample exercised what chunks must carry between them
    items = whole_reports[1]["order_items"]
    assert items["orphans_resolved"] > 0 or items["orphans_pending"] > 0
    assert whole["events"].height > 0 and whole["_index"].height > 0
    # events redelivered in a later file, in one pass and across the two
    assert whole_reports[0]["events"]["redelivered"] > 0
    assert whole_reports[1]["events"]["redelivered"] > 0


def test_spool_writes_every_row_once_a_flush_per_file_name() -> None:
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i % 9) for i in range(2_000)]
    rows = pl.DataFrame({"date": days, "n": range(2_000)})
    written: list[tuple[str, pl.DataFrame]] = []
    spool = Spool(lambda frame, tag: written.append((tag, frame)), limit=4_000)
    for chunk in rows.iter_slices(300):
        spool.add(chunk)
    spool.flush()
    spool.flush()  # nothing held: no empty write
    tags = [tag for tag, _ in written]
    assert len(tags) > 1, "the limit is small enough to flush before the end"
    assert tags[0] == "" and len(set(tags)) == len(tags)
    # every row once, in the order added
    assert_frame_equal(pl.concat([frame for _, frame in written]), rows)


def test_a_spool_with_a_writer_flushes_in_the_background_one_write_at_a_time() -> None:
    rows = pl.DataFrame({"date": [dt.date(2024, 1, 1)] * 9, "n": range(9)})
    release = [threading.Event() for _ in range(2)]
    started: list[str] = []
    written: list[tuple[str, pl.DataFrame]] = []

    def write(frame: pl.DataFrame, tag: str) -> None:
        started.append(tag)
        assert release[len(started) - 1].wait(10)
        written.append((tag, frame))

    with ThreadPoolExecutor(max_workers=2) as writer:
        spool = Spool(write, limit=10**9, writer=writer)
        spool.add(rows.slice(0, 3))
        spool.flush()  # returns with its write under way
        spool.add(rows.slice(3, 3))
        assert written == [] and spool.frames
        second = threading.Thread(target=spool.flush)
        second.start()
        second.join(0.3)
        # the second flush waits for the first write: one in flight, never two
        assert second.is_alive() and started == [""]
        release[0].set()
        second.join(10)
        assert not second.is_alive()
        deadline = time.monotonic() + 10
        while len(started) < 2 and time.monotonic() < deadline:  # the writer takes it up
            time.sleep(0.01)
        assert started == ["", "-0001"]
        release[1].set()
        spool.wait()
        assert [tag for tag, _ in written] == ["", "-0001"]
        assert_frame_equal(pl.concat([f for _, f in written]), rows.head(6))

        def fail(frame: pl.DataFrame, tag: str) -> None:
            raise OSError(28, "No space left on device")

        failing = Spool(fail, writer=writer)
        failing.add(rows)
        failing.flush()  # the error is the write's, raised where the pass waits for it
        with pytest.raises(OSError, match="No space left"):
            failing.wait()
        failing.wait()  # raised once


def test_spool_under_its_limit_writes_once_at_the_end() -> None:
    rows = pl.DataFrame({"date": [dt.date(2024, 1, 1)] * 10, "n": range(10)})
    written: list[tuple[str, pl.DataFrame]] = []
    spool = Spool(lambda frame, tag: written.append((tag, frame)))
    for chunk in rows.iter_slices(3):
        spool.add(chunk)
    assert written == []
    spool.flush()
    assert [tag for tag, _ in written] == [""]
    assert_frame_equal(written[0][1], rows)


def test_a_file_relanded_after_listing_is_recorded_with_the_bytes_parsed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    """Digests from the listing are reused only for the same file (inode, size, mtime)."""
    import hashlib
    import os

    from assets_pkg.lake.manifest import Manifest

    first = "customer_id,email,updated_at\nC1,a@example.com,2024-01-01T00:00:00Z\n"
    second = "customer_id,email,updated_at\nC1,b@example.com,2024-01-02T00:00:00Z\n"
    folder = settings.landing_dir / "customers"
    folder.mkdir(parents=True)
    (folder / "c1.csv").write_text(first)
    (folder / "c2.csv").write_text(first.replace("C1", "C2"))
    classify = IngestPass._classify

    def listed_then_relanded(self, source, parts):
        fresh = classify(self, source, parts)
        if source == "customers":  # a producer re-lands c1.csv (write, then rename)
            (folder / ".c1.csv.tmp").write_text(second)
            os.replace(folder / ".c1.csv.tmp", folder / "c1.csv")
        return fresh

    monkeypatch.setattr(IngestPass, "_classify", listed_then_relanded)
    lake = LakeResource(root=settings.lake_url)
    IngestPass(settings, lake).run()

    known = Manifest(settings.manifest_path).known("customers")
    assert known["c1.csv"].sha256 == hashlib.sha256(second.encode()).hexdigest()
    assert known["c2.csv"].sha256 == hashlib.sha256(first.replace("C1", "C2").encode()).hexdigest()
    rows = pl.read_parquet(Path(settings.lake_url) / "lake" / "customers" / "*.parquet")
    assert rows.filter(pl.col("customer_id") == "C1")["email"].to_list() == ["b@example.com"]


def test_a_new_file_is_read_once_and_a_copy_of_the_landing_zone_gets_the_same_ingest_id(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """New files are hashed from the bytes parsed (no read at listing); the ingest id
    follows names and sizes, not inodes or times, and changes once the manifest knows
    more: a file re-landed under a quarantined name, same size, is another pass."""
    import builtins
    import hashlib
    import os

    from assets_pkg.lake.manifest import Manifest

    good = "customer_id,email,updated_at\nC1,a@example.com,2024-01-01T00:00:00Z\n"
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        if "landing" in Path(str(file)).parts:
            opened.append(Path(str(file)).name)
        return real_open(file, *args, **kwargs)

    ids = []
    for n, when in enumerate((1_700_000_000, 1_800_000_000)):  # two copies, other mtimes
        copy = dataclasses.replace(
            settings, data_dir=tmp_path / f"copy{n}" / "data", lake_url=str(tmp_path / f"lake{n}")
        )
        folder = copy.landing_dir / "customers"
        folder.mkdir(parents=True)
        for name, text in (("c1.csv", good), ("c2.csv", good.replace("C1", "C2"))):
            (folder / name).write_text(text)
            os.utime(folder / name, (when, when))
        monkeypatch.setattr(builtins, "open", counting_open)
        report = IngestPass(copy, LakeResource(root=copy.lake_url)).run()
        monkeypatch.setattr(builtins, "open", real_open)
        assert sorted(opened) == ["c1.csv", "c2.csv"], "each new file read once"
        opened.clear()
        known = Manifest(copy.manifest_path).known("customers")
        digest = hashlib.sha256(good.replace("C1", "C2").encode()).hexdigest()
        assert known["c2.csv"].sha256 == digest
        ids.append(report.ingest_id)
    assert ids[0] == ids[1]

    # a file quarantined (a wrong header), then re-landed fixed: same name, same size
    fixed = good.replace("C1", "C3")
    broken = fixed.replace("customer_id", "customer_iq")
    assert len(broken) == len(fixed)
    folder = copy.landing_dir / "customers"
    for text, status in ((broken, "quarantined"), (fixed, "loaded")):
        (folder / "c3.csv").write_text(text)
        ids.append(IngestPass(copy, LakeResource(root=copy.lake_url)).run().ingest_id)
        assert Manifest(copy.manifest_path).known("customers")["c3.csv"].status == status
    assert len(set(ids[1:])) == 3


def test_items_keep_delivery_order_and_a_pending_row_met_again_is_taken_once(settings: Settings):
    """A chunk's items are dated in delivery order (no sort needed to find the live ones);
    a held-back row that a fault brings back in a chunk is still taken once."""
    from decimal import Decimal

    from assets_pkg.contracts import SOURCES
    from assets_pkg.lake.ingest import _valid_schema, index_schema

    schema = _valid_schema(SOURCES["order_items"])

    def item(file: str, row: int, order: str) -> dict:
        return {
            "order_id": order,
            "line_number": row,
            "product_id": "P-1",
            "quantity": 1,
            "unit_price": Decimal("2.50"),
            "_file_name": file,
            "_row_number": row,
            "_raw": f"{order},{row},P-1,1,2.50",
        }

    lake = LakeResource(root=settings.lake_url)
    pass_ = IngestPass(settings, lake)
    held = pl.DataFrame([item("items_b.csv", 2, "O-1")], schema=schema)
    pass_.bookkeeping["lake", "_pending", "order_items.parquet"] = held
    pass_.bookkeeping["lake", "_index", "orders.parquet"] = pl.DataFrame(
        {
            "order_id": ["O-1", "O-2"],
            "date": [dt.date(2024, 1, 2), dt.date(2024, 1, 3)],
            "_file_name": ["orders_a.csv"] * 2,
            "_row_number": [2, 3],
        },
        schema=index_schema(SOURCES["orders"]),
    )
    rows = [("items_b.csv", r, "O-2" if r % 2 else "O-1") for r in range(2, 40)]
    batch = pl.DataFrame([item(*r) for r in rows], schema=schema)

    dated, orphans = pass_._items(batch)

    assert dated.select("_file_name", "_row_number").rows() == [(f, r) for f, r, _ in rows]
    assert dated.filter(pl.col("order_id") == "O-2")["date"].unique().to_list() == [
        dt.date(2024, 1, 3)
    ]
    assert orphans.height == 0
    assert pass_.reports["order_items"].orphans_resolved == 1


def test_row_size_measures_a_sources_first_rows_and_scales_by_rows_after() -> None:
    """The spool's bound measures rows once: later frames are sized by their row count."""
    first = pl.DataFrame({"id": [f"event-{i:08d}" for i in range(100)], "n": range(100)})
    later = pl.DataFrame({"id": [f"event-{i:08d}" for i in range(300)], "n": range(300)})
    size = RowSize()
    assert size.of(first.clear()) == 0  # no rows: nothing measured yet
    assert size.of(first) == first.estimated_size()
    assert size.of(later) == round(3 * first.estimated_size())
    assert abs(size.of(later) - later.estimated_size()) <= 0.05 * later.estimated_size()
    # the spool bounds what it holds by the same measure: past twice the first frame, it writes
    written: list[tuple[str, pl.DataFrame]] = []
    spool = Spool(lambda frame, tag: written.append((tag, frame)), limit=2 * first.estimated_size())
    spool.add(first)
    spool.add(first)
    assert written == []
    spool.add(first.head(50))
    assert [frame.height for _, frame in written] == [250]
