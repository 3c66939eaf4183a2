"""The results file of a bench script: one JSON object whose section (``rows``, ``experiments``) maps a row's name
to its numbers, written row by row as each finishes so a long run can be resumed (``--skip-done``) or tabled
(``--table``) at any time.

Every ``bench/*/run.py`` reads and writes it through here. They run from a checkout, as ``python bench/x/run.py``
(which puts the repository root on ``sys.path`` first) or as ``python -m bench.x.run``; ``bench`` is a namespace
package, so ``from bench.results import save_row`` works both ways.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def load_results(path: Path, section: str = "rows") -> dict[str, Any]:
    """The results in ``path``, or an empty ``{section: {}}`` when there are none yet."""
    results = json.loads(Path(path).read_text()) if Path(path).is_file() else {}
    results.setdefault(section, {})
    return results


def save_row(path: Path, name: str, row: dict[str, Any], section: str = "rows", **fields: Any) -> None:
    """Re-read ``path`` and replace one row (and the top-level ``fields``, e.g. ``settings=``), written atomically,
    so two runs writing the same file lose nothing and a crash never leaves half a file."""
    from ember.data.atomic import write_bytes_atomic

    results = load_results(path, section)
    results[section][name] = row
    results.update(fields)
    write_bytes_atomic(Path(path), (json.dumps(results, indent=2) + "\n").encode())
