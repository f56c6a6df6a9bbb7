"""The command line every benchmark script shares: run it, print the result as JSON, and with
``--json FILE`` write it there too (``make bench`` imports the scripts and calls ``run()``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def main(run: Callable[[], dict[str, Any]], doc: str | None) -> None:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--json", type=Path, help="write the result dict to this file")
    ns = parser.parse_args()
    text = json.dumps(run(), indent=2)
    print(text)
    if ns.json:
        ns.json.write_text(text + "\n")
