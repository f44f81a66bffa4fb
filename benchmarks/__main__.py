"""``python -m benchmarks <name> [options]``; ``python -m benchmarks --help`` lists them."""

from __future__ import annotations

import argparse
import sys

from benchmarks import describe, discover


def build_parser() -> argparse.ArgumentParser:
    modules = discover()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of the platform. Each runs in a temp dir, never in data/; "
        "results go to benchmarks/README.md (unless --no-readme) and the console.",
        epilog="benchmarks: "
        + ", ".join(modules)
        + ". `python -m benchmarks <name> --help` for its options.",
    )
    sub = parser.add_subparsers(dest="benchmark", metavar="<name>", required=True)
    for name, module in modules.items():
        help_text = describe(module)
        child = sub.add_parser(
            name,
            help=help_text,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(child)
        child.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args._module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
