"""Many files validated in one pass give exactly what each file parsed alone gives.

The generated sample (invalid rows of every kind, duplicate keys inside a file, files that
cannot be read, CSV quirks) is parsed per source both ways: ``parse_file`` on each file,
and ``parse_files`` on all of them at once. Valid rows, rejects (with their file names and
row numbers) and collapsed counts must be equal file by file, and the unreadable files
the same, with the same reasons; also when the group is split across threads.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets_pkg.contracts import SOURCES
from assets_pkg.lake import parsing
from assets_pkg.lake.parsing import UnreadableFile, parse_file, parse_files
from assets_pkg.sample.generator import generate


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("landing")
    generate(root, start=dt.date(2024, 1, 1), days=6, seed=3, scale=0.3)
    return root


@pytest.mark.parametrize("threads", [1, 3], ids=["one_thread", "three_threads"])
@pytest.mark.parametrize("source", list(SOURCES))
def test_one_pass_over_many_files_equals_each_file_alone(
    landing: Path, source: str, threads: int, monkeypatch: pytest.MonkeyPatch
):
    contract = SOURCES[source]
    # the sample is small: any group is split when threads are asked for
    monkeypatch.setattr(parsing, "PARALLEL_PARSE_BYTES", 0 if threads > 1 else 1 << 60)
    monkeypatch.setattr(parsing.os, "cpu_count", lambda: threads)
    files = [(p.name, p.read_bytes()) for p in sorted((landing / source).iterdir())]
    files = [(n, d) for n, d in files if not n.startswith(".") and not n.endswith(".tmp")]
    alone, unreadable = {}, {}
    for name, data in files:
        try:
            alone[name] = parse_file(contract, name, data)
        except UnreadableFile as exc:
            unreadable[name] = exc.reason

    assert len(parsing._runs_of_files(files, threads)) == min(threads, len(files))
    together, failed = parse_files(contract, files)

    assert {n: e.reason for n, e in failed.items()} == unreadable
    assert [p.file_name for p in together] == list(alone)
    rejected = 0
    for parsed in together:
        one = alone[parsed.file_name]
        assert_frame_equal(parsed.valid, one.valid)
        assert_frame_equal(parsed.rejects, one.rejects)
        assert parsed.collapsed == one.collapsed, parsed.file_name
        rejected += one.rejects.height
    # the sample carries bad rows of every kind: the comparison saw rejects, not only rows
    assert rejected > 0 and sum(p.valid.height for p in together) > 0


@pytest.mark.parametrize(
    "files",
    [
        pytest.param(["a", "a", "b", "c", "c", "c"], id="each-file-one-run"),
        pytest.param(["a", "b", "a", "c", "b"], id="a-file-in-two-runs"),
        pytest.param([], id="no-rows"),
    ],
)
def test_rows_of_files_are_the_partition_by_file(files: list[str]):
    # a run's rows per file are slices where each file is one run, else a partition
    valid = pl.DataFrame(
        {"_file_name": files, "_row_number": list(range(1, len(files) + 1))},
        schema={"_file_name": pl.String, "_row_number": pl.Int64},
    )
    expected = valid.partition_by("_file_name", as_dict=True, maintain_order=True)
    got = parsing._rows_of_files(valid)
    assert list(got) == list(expected)
    for name, rows in expected.items():
        assert_frame_equal(got[name], rows)
