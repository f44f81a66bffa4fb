"""A short, bounded atheris campaign per landing source, in a subprocess.

libFuzzer owns the process it runs in (it exits when done or on a crash), so each campaign
runs as ``python -m assets_pkg_tests.fuzz.parsers``; a crash or a broken invariant makes it
exit non-zero and leaves the failing input under the temp artifact prefix.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from assets_pkg.contracts import SOURCES

pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")

REPO = Path(__file__).resolve().parents[2]
RUNS = 2000


@pytest.mark.parametrize("source", list(SOURCES))
def test_a_bounded_fuzz_campaign_finds_no_crash(source: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "assets_pkg_tests.fuzz.parsers",
            "--source",
            source,
            "--corpus",
            str(tmp_path / "corpus"),
            f"-atheris_runs={RUNS}",
            "-seed=1",
            f"-artifact_prefix={tmp_path}/",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    crashes = sorted(p.name for p in tmp_path.glob("crash-*"))
    assert proc.returncode == 0 and not crashes, (crashes, proc.stderr[-3000:])
    assert f"Done {RUNS} " in proc.stderr or f"Done {RUNS} " in proc.stdout
    assert any((tmp_path / "corpus").iterdir()), "the seed corpus was built"
