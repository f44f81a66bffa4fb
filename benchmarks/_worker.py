"""Child side of ``common.python_call``: ``python -m benchmarks._worker MODULE:FUNC IN OUT``.

Reads the JSON payload from ``IN``, calls ``FUNC(payload)`` and writes its JSON-able
return value to ``OUT``.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    target, request, response = argv
    module_name, _, func_name = target.partition(":")
    func = getattr(importlib.import_module(module_name), func_name)
    result = func(json.loads(Path(request).read_text()))
    tmp = Path(f"{response}.tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(response)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
