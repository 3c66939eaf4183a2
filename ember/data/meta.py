"""Read and write the ``meta/`` files: info.json, stats.json, tasks.parquet, episodes shards.

``tasks.parquet`` is written the way ``pandas.DataFrame.to_parquet`` writes a frame indexed by
``task`` (a ``task_index`` column plus the index stored as column ``task`` and the ``pandas``
schema metadata), because LeRobot reads it with ``pd.read_parquet`` and looks tasks up with
``.loc[task]``; ember itself does not need pandas. LeRobot's own file stores the same frame with
an unnamed index (column ``__index_level_0__``); :func:`read_tasks` reads both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ember.data.atomic import write_atomic, write_json_atomic
from ember.data.errors import DatasetError
from ember.data.layout import INFO_PATH, STATS_PATH, TASKS_PATH

PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "snappy",
    "use_dictionary": True,
    "write_page_checksum": True,  # lets readers detect bit rot / torn pages instead of returning garbage
}

_PANDAS_TASKS_METADATA = {
    "index_columns": ["task"],
    "column_indexes": [
        {
            "name": None,
            "field_name": None,
            "pandas_type": "unicode",
            "numpy_type": "object",
            "metadata": {"encoding": "UTF-8"},
        }
    ],
    "columns": [
        {
            "name": "task_index",
            "field_name": "task_index",
            "pandas_type": "int64",
            "numpy_type": "int64",
            "metadata": None,
        },
        {
            "name": "task",
            "field_name": "task",
            "pandas_type": "unicode",
            "numpy_type": "object",
            "metadata": None,
        },
    ],
    "creator": {"library": "pyarrow", "version": pa.__version__},
    "pandas_version": "2.2.3",
}


def write_info(root: Path, info: Mapping[str, Any]) -> None:
    write_json_atomic(root / INFO_PATH, dict(info))


def read_info(root: Path) -> dict[str, Any]:
    path = root / INFO_PATH
    if not path.is_file():
        raise DatasetError(
            f"{path} is missing: {root} is not a LeRobot v3 / ember dataset (or the writer died before "
            "creating it). Point at the dataset root (the folder holding meta/, data/, videos/)."
        )
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(
            f"{path} is not valid JSON ({exc}); restore it from a backup or re-record."
        ) from exc
    for key in ("codebase_version", "fps", "features", "total_episodes", "total_frames", "data_path"):
        if key not in info:
            raise DatasetError(f"{path} lacks the key {key!r}; it is not a LeRobot v3 info.json.")
    if info["codebase_version"] != "v3.0":
        raise DatasetError(
            f"{path} says codebase_version={info['codebase_version']!r}; ember reads v3.0 only. Convert older "
            "datasets with LeRobot's convert_dataset_v21_to_v30 script."
        )
    return info


def write_stats(root: Path, stats_json: Mapping[str, Any]) -> None:
    write_json_atomic(root / STATS_PATH, dict(stats_json))


def read_stats_json(root: Path) -> dict[str, Any] | None:
    path = root / STATS_PATH
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(
            f"{path} is not valid JSON ({exc}); it is rewritten by every save_episode()."
        ) from exc


def tasks_table(tasks: Sequence[str]) -> pa.Table:
    table = pa.table(
        {
            "task_index": pa.array(range(len(tasks)), type=pa.int64()),
            "task": pa.array(list(tasks), pa.string()),
        }
    )
    meta = {b"pandas": json.dumps(_PANDAS_TASKS_METADATA).encode()}
    return table.replace_schema_metadata(meta)


def write_tasks(root: Path, tasks: Sequence[str]) -> None:
    table = tasks_table(tasks)
    write_atomic(root / TASKS_PATH, lambda tmp: pq.write_table(table, tmp, **PARQUET_OPTIONS))


def read_tasks(root: Path) -> list[str]:
    """Tasks ordered by ``task_index``."""
    path = root / TASKS_PATH
    if not path.is_file():
        raise DatasetError(f"{path} is missing; the dataset's task list is lost (was it copied partially?).")
    try:
        table = pq.read_table(path, page_checksum_verification=True)
    except (OSError, pa.ArrowException) as exc:
        raise DatasetError(f"{path} is corrupt ({exc}); every episode's task lookup depends on it.") from exc
    task_column = _task_column(table)
    if task_column is None or "task_index" not in table.column_names:
        raise DatasetError(
            f"{path} needs a 'task_index' column and the task strings (a 'task' column or the pandas index), "
            f"has {table.column_names}."
        )
    pairs = sorted(zip(table["task_index"].to_pylist(), table[task_column].to_pylist(), strict=True))
    if [i for i, _ in pairs] != list(range(len(pairs))):
        raise DatasetError(f"{path}: task_index values are not 0..{len(pairs) - 1}.")
    return [t for _, t in pairs]


def _task_column(table: pa.Table) -> str | None:
    """The column holding the task strings.

    ember names it ``task``. LeRobot writes ``pd.DataFrame({"task_index": ...}, index=tasks)``
    with an *unnamed* index, which pandas stores as ``__index_level_0__`` (``large_string`` under
    pandas 3) and lists in the ``pandas`` schema metadata's ``index_columns``; both are the same
    frame to LeRobot's ``pd.read_parquet``, so ember accepts both.
    """
    if "task" in table.column_names:
        return "task"
    index_columns: list[Any] = []
    raw = (table.schema.metadata or {}).get(b"pandas")
    if raw:
        try:
            index_columns = json.loads(raw).get("index_columns") or []
        except ValueError:
            index_columns = []
    # a RangeIndex is recorded as a dict, not a column; only a stored string column can hold the tasks
    candidates = [c for c in index_columns if isinstance(c, str)] or ["__index_level_0__"]
    for name in candidates:
        if name in table.column_names:
            kind = table.schema.field(name).type
            if pa.types.is_string(kind) or pa.types.is_large_string(kind):
                return name
    return None


def write_parquet_row_groups(path: Path, tables: Sequence[pa.Table]) -> None:
    """Atomically (re)write ``path`` with one row group per table (one per episode, as LeRobot)."""

    def write(tmp: Path) -> None:
        with pq.ParquetWriter(tmp, tables[0].schema, **PARQUET_OPTIONS) as writer:
            for table in tables:
                writer.write_table(table)

    write_atomic(path, write)
