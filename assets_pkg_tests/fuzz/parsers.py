"""Coverage-guided fuzzing of one landing parser with atheris (libFuzzer).

    python -m assets_pkg_tests.fuzz.parsers --source orders -atheris_runs=20000
    python -m assets_pkg_tests.fuzz.parsers --source events -max_total_time=120

Every input is landed as a file of ``--source`` and checked by
``assets_pkg_tests.fuzz.reference.check_parse``: the parser raises nothing but
``UnreadableFile`` with a contract reason, and loads, rejects and collapses exactly the
records the contract prescribes. A failing input is written under ``-artifact_prefix``
(default: a fresh temp directory, printed at start). The seed corpus is the head of each
file the sample generator writes for that source, so mutation starts from realistic data.
Flags after ``--source`` and ``--corpus`` go to libFuzzer unchanged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

import atheris

# imported first so they stay uninstrumented: instrumenting Polars' own Python breaks it
from assets_pkg.contracts import SOURCES
from assets_pkg.sample.generator import generate
from assets_pkg_tests import oracle  # noqa: F401

with atheris.instrument_imports(
    include=["assets_pkg.lake.parsing", "assets_pkg_tests.fuzz.reference"]
):
    from assets_pkg_tests.fuzz import reference

SEED_BYTES = 3000  # libFuzzer mutates small inputs far faster than whole sample files


def build_seed_corpus(source: str, folder: Path) -> int:
    """Write the heads of the generator's files for ``source`` into ``folder``."""
    with tempfile.TemporaryDirectory() as landing:
        generate(Path(landing), start=dt.date(2024, 2, 27), days=3, seed=11, scale=0.1)
        files = sorted((Path(landing) / source).iterdir())
        for i, path in enumerate(files):
            data = path.read_bytes()
            head = data[:SEED_BYTES]
            (folder / f"seed-{i:03d}").write_bytes(head[: head.rfind(b"\n") + 1] or head)
    return len(files)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=list(SOURCES), required=True)
    parser.add_argument("--corpus", type=Path, help="corpus directory (default: a temp dir)")
    args, fuzzer_args = parser.parse_known_args(argv)
    source = args.source

    corpus = args.corpus or Path(tempfile.mkdtemp(prefix=f"fuzz-{source}-corpus-"))
    corpus.mkdir(parents=True, exist_ok=True)
    seeds = build_seed_corpus(source, corpus)
    if not any(a.startswith("-artifact_prefix=") for a in fuzzer_args):
        fuzzer_args.append(f"-artifact_prefix={tempfile.mkdtemp(prefix='fuzz-artifacts-')}/")
    print(f"fuzzing {source}: {seeds} seed files in {corpus}; {' '.join(fuzzer_args)}")

    def one_input(data: bytes) -> None:
        reference.check_parse(source, data)

    atheris.Setup([sys.argv[0], *fuzzer_args, str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
