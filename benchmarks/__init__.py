"""Benchmarks of the platform, run with ``python -m benchmarks <name> [options]``.

A benchmark is a module of this package (not ``common`` and not starting with ``_``) that
defines:

- a docstring whose first line is its one-line description (shown by ``--help``);
- ``add_arguments(parser: argparse.ArgumentParser) -> None``: its options;
- ``main(args: argparse.Namespace) -> int``: run it from the parsed options, print the
  results and return an exit code.

Adding a module that follows this shape is all it takes to list it in
``python -m benchmarks --help``. What benchmarks share (a temp platform, measured
subprocesses, machine info, the README results blocks) is in ``benchmarks.common``.
Benchmarks never touch the working tree's ``data/``; they write ``benchmarks/README.md``
only when asked (the CLI default), never from tests.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

NOT_BENCHMARKS = frozenset({"common"})


def discover() -> dict[str, ModuleType]:
    """Every benchmark module of this package, by name, sorted."""
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in NOT_BENCHMARKS or info.ispkg:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if callable(getattr(module, "main", None)) and callable(
            getattr(module, "add_arguments", None)
        ):
            found[info.name] = module
    return found


def describe(module: ModuleType) -> str:
    """The first line of a benchmark's docstring."""
    return (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
