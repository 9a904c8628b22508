"""`python -m bench.one NAME RESULTS_DIR`: run one benchmark module and write RESULTS_DIR/NAME.json."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path


def main(name: str, results_dir: str) -> None:
    result = importlib.import_module(f"bench.{name}").run(results_dir)
    Path(results_dir, f"{name}.json").write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:3])
