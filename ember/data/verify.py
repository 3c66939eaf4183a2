"""``ember data verify``: check a dataset file by file and say what is wrong and what to do.

Why separate from the reader: opening a dataset checks what reading needs (footers, video
durations). Verify reads *everything* (every parquet page against its checksum, optionally every
video frame) and checks the invariants that LeRobot relies on but never checks itself: contiguous
indices, timestamps on the fps grid, stats that match the data, no rows of an uncommitted
episode, no temp files. Each problem names the file and the episodes it affects and says whether
``ember data repair`` fixes it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ember.data import columns, layout, meta
from ember.data.dataset import EmberDataset, _ranges
from ember.data.errors import DatasetError
from ember.data.features import FLOAT_DTYPES, numeric_keys, visual_keys
from ember.data.language import LANGUAGE_COLUMNS, LANGUAGE_PERSISTENT, as_row, validate_row
from ember.data.stats import STAT_KEYS, numeric_stats_match

INFO_KEYS = (
    "codebase_version", "fps", "robot_type", "features", "total_episodes", "total_frames", "total_tasks",
    "chunks_size", "data_files_size_in_mb", "video_files_size_in_mb", "data_path", "video_path", "splits",
)  # fmt: skip


@dataclass
class Problem:
    """One finding. ``severity``: 'error' (data unreadable or wrong) or 'warning' (LeRobot may trip)."""

    severity: str
    message: str
    path: str = ""
    episodes: list[int] = field(default_factory=list)
    fix: str = ""

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        eps = f" [episode(s) {_ranges(self.episodes)}]" if self.episodes else ""
        fix = f" -> {self.fix}" if self.fix else ""
        return f"{self.severity.upper()}: {where}{self.message}{eps}{fix}"


@dataclass
class VerifyReport:
    root: Path
    episodes: int = 0
    frames: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    @property
    def repairable(self) -> bool:
        return any("ember data repair" in p.fix for p in self.problems)

    def add(self, severity: str, message: str, path: Path | str = "", episodes=(), fix: str = "") -> None:
        self.problems.append(Problem(severity, message, str(path), sorted(set(episodes)), fix))

    def summary(self) -> str:
        head = f"{self.root}: {self.episodes} episodes, {self.frames} frames: "
        if not self.problems:
            return head + "OK"
        n_err = sum(p.severity == "error" for p in self.problems)
        lines = [head + f"{n_err} error(s), {len(self.problems) - n_err} warning(s)"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


REPAIR = "run `ember data repair` (it cuts the dataset back to its committed episodes and rebuilds metadata)"


def verify(root: str | Path, deep: bool = False) -> VerifyReport:
    """Check everything under ``root``; ``deep=True`` also decodes every video frame."""
    root = Path(root)
    report = VerifyReport(root)
    try:
        info = meta.read_info(root)
    except DatasetError as exc:
        report.add("error", str(exc), root / layout.INFO_PATH, fix="restore meta/info.json from a copy")
        return report
    missing = [k for k in INFO_KEYS if k not in info]
    if missing:
        report.add(
            "warning", f"info.json lacks {missing}", root / layout.INFO_PATH, fix="LeRobot expects them"
        )
    try:
        ds = EmberDataset(root, strict=False)
    except DatasetError as exc:
        report.add("error", str(exc), root, fix=REPAIR)
        return report
    report.episodes, report.frames = ds.num_episodes, ds.num_frames
    by_message: dict[str, list[int]] = defaultdict(list)
    for ep, message in ds.bad_episodes.items():
        by_message[message].append(ep)
    for message, eps in by_message.items():
        report.add("error", message, "", eps, fix="restore the file from a copy or re-record these episodes")
    _check_tasks(ds, report)
    _check_episode_rows(ds, report)
    _check_data(ds, report)
    _check_videos(ds, report, deep)
    _check_stats(ds, report)
    _check_leftovers(ds, report)
    return report


def _check_tasks(ds: EmberDataset, report: VerifyReport) -> None:
    total = int(ds.meta.info.get("total_tasks", len(ds.meta.tasks)))
    if len(ds.meta.tasks) != total:
        report.add("warning", f"tasks.parquet has {len(ds.meta.tasks)} tasks, info.json says {total}",
                   ds.root / layout.TASKS_PATH, fix=REPAIR)  # fmt: skip


def _check_episode_rows(ds: EmberDataset, report: VerifyReport) -> None:
    rows = ds.meta.episodes.to_pydict()
    if not rows.get("episode_index"):
        return
    path = ds.root / layout.EPISODES_DIR
    expect = 0
    for r, ep in enumerate(rows["episode_index"]):
        lo, hi, length = rows["dataset_from_index"][r], rows["dataset_to_index"][r], rows["length"][r]
        if lo != expect or hi - lo != length:
            report.add("error", f"episode rows are not contiguous: [{lo}, {hi}) with length {length}, expected to "
                       f"start at {expect}", path, [ep], fix="restore meta/episodes or " + REPAIR)  # fmt: skip
        expect = hi
        unknown = [t for t in rows.get("tasks", [[]] * (r + 1))[r] or [] if t not in ds.meta.tasks]
        if unknown:
            report.add("error", f"tasks {unknown} are not in tasks.parquet", path, [ep], fix=REPAIR)
    if expect != ds.num_frames:
        report.add(
            "error", f"episodes cover {expect} frames, info.json says {ds.num_frames}", path, fix=REPAIR
        )
    stat_cols = {c.split("/")[1] for c in rows if c.startswith("stats/")}
    lacking = [k for k in [*numeric_keys(ds.features), *visual_keys(ds.features)] if k not in stat_cols]
    if lacking:
        report.add("warning", f"no per-episode stats for {lacking}", path, fix=REPAIR)


def _check_data(ds: EmberDataset, report: VerifyReport) -> None:
    feats = ds.features
    schema = columns.schema_for(feats)
    good = [e for e in range(ds.num_episodes) if e not in ds.bad_episodes]
    files: dict[Path, list[int]] = defaultdict(list)
    for e in good:
        files[ds.source_file("index", e)].append(e)
    for path, eps in files.items():
        try:
            table = pq.read_table(path, page_checksum_verification=True)
        except (OSError, pa.ArrowException) as exc:
            report.add("error", f"unreadable ({exc})", path, eps, fix="restore the file or re-record")
            continue
        extra = [c for c in table.column_names if c not in feats]
        if extra:
            report.add("warning", f"columns {extra} are not declared in info.json (an interrupted add_columns?)",
                       path, fix=REPAIR + ", or run add_columns again")  # fmt: skip
        absent = [c for c in schema.names if c not in table.column_names]
        if absent:
            report.add("error", f"declared columns {absent} are missing", path, eps, fix="re-run add_columns")
            continue
        index = table.column("index").to_numpy()
        if np.any(index >= ds.num_frames):
            report.add("warning", f"{int(np.sum(index >= ds.num_frames))} rows of an uncommitted episode", path,
                       fix=REPAIR)  # fmt: skip
        for e in eps:
            _check_episode_table(ds, e, path, report)


def _check_episode_table(ds: EmberDataset, e: int, path: Path, report: VerifyReport) -> None:
    try:
        rows = ds._episode_rows(e)
    except DatasetError as exc:
        report.add("error", str(exc), path, [e], fix=REPAIR)
        return
    n = rows.num_rows
    frame_index = rows.column("frame_index").to_numpy()
    if not np.array_equal(frame_index, np.arange(n)):
        report.add("error", "frame_index is not 0..length-1", path, [e])
    ts = rows.column("timestamp").to_numpy().astype(np.float64)
    if np.any(np.abs(ts - np.arange(n) / ds.fps) > 1e-4):
        report.add(
            "warning", f"timestamps are off the 1/{ds.fps} s grid (LeRobot's tolerance is 1e-4 s)", path, [e]
        )
    task_index = rows.column("task_index").to_numpy()
    if len(task_index) and (task_index.min() < 0 or task_index.max() >= len(ds.meta.tasks)):
        report.add("error", f"task_index outside 0..{len(ds.meta.tasks) - 1}", path, [e], fix=REPAIR)
    for key, ft in ds.features.items():
        if ft["dtype"] in FLOAT_DTYPES and key in rows.column_names:
            arr = columns.to_numpy(rows.column(key), ft)
            if not np.all(np.isfinite(arr)):
                report.add(
                    "error", f"{key!r} holds NaN/inf", path, [e], fix="re-record or relabel this column"
                )
    for key in LANGUAGE_COLUMNS:
        if key not in rows.column_names or key not in ds.features:
            continue
        values = rows.column(key).to_pylist()
        if key == LANGUAGE_PERSISTENT and any(v != values[0] for v in values):
            report.add(
                "warning",
                "language_persistent differs between frames (LeRobot broadcasts one list)",
                path,
                [e],
            )
        try:
            for frame_rows in values:
                for d in frame_rows or []:
                    validate_row(as_row(d), key, ds.camera_keys)
        except DatasetError as exc:
            report.add("error", f"{key}: {exc}", path, [e])


def _check_videos(ds: EmberDataset, report: VerifyReport, deep: bool) -> None:
    if not deep:
        return
    for key in ds.video_keys:
        for e in range(ds.num_episodes):
            if e in ds.bad_episodes:
                continue
            try:
                ds.decode_video(key, e)
            except DatasetError as exc:
                report.add(
                    "error", str(exc), ds.source_file(key, e), [e], fix="restore the file or re-record"
                )


def _check_stats(ds: EmberDataset, report: VerifyReport) -> None:
    path = ds.root / layout.STATS_PATH
    stats_json = meta.read_stats_json(ds.root)
    if stats_json is None:
        report.add("error", "missing", path, fix=REPAIR)
        return
    for key in [*numeric_keys(ds.features), *visual_keys(ds.features)]:
        st = stats_json.get(key)
        if st is None:
            report.add("error", f"no stats for {key!r}", path, fix=REPAIR)
            continue
        lacking = [s for s in STAT_KEYS if s not in st]
        if lacking:
            report.add("warning", f"stats of {key!r} lack {lacking}", path, fix=REPAIR)
        if key in numeric_keys(ds.features) and st.get("count") != [ds.num_frames] and not ds.bad_episodes:
            report.add("error", f"stats of {key!r} count {st.get('count')} frames, the dataset has {ds.num_frames}",
                       path, fix=REPAIR)  # fmt: skip
    if ds.bad_episodes:
        return
    table = ds.frame_table()
    for key in numeric_keys(ds.features):
        st = stats_json.get(key) or {}
        if "mean" not in st or ds.num_frames == 0:
            continue
        arr = np.asarray(columns.to_numpy(table.column(key), ds.features[key]))
        if not numeric_stats_match(arr, st):  # accepts LeRobot's per-last-axis N-D stats and float32 means
            report.add("error", f"stats of {key!r} do not match the data", path, fix=REPAIR)


def _check_leftovers(ds: EmberDataset, report: VerifyReport) -> None:
    root = ds.root
    temps = [p for p in root.rglob(".*.tmp-*") if layout.CACHE_DIR not in str(p.relative_to(root))]
    if temps:
        report.add("warning", f"{len(temps)} temporary file(s) of an interrupted write, e.g. {temps[0]}", root,
                   fix=REPAIR)  # fmt: skip
    rows = ds.meta.episodes.to_pydict()
    if not rows.get("episode_index"):
        return
    used = {
        layout.data_file(root, c, f)
        for c, f in zip(rows["data/chunk_index"], rows["data/file_index"], strict=True)
    }
    for key in ds.video_keys:
        cols = (rows.get(f"videos/{key}/chunk_index"), rows.get(f"videos/{key}/file_index"))
        if cols[0] is not None:
            used |= {layout.video_file(root, key, c, f) for c, f in zip(*cols, strict=True)}
    on_disk = [*(root / layout.DATA_DIR).glob("chunk-*/file-*.parquet")]
    for key in ds.video_keys:
        on_disk += (root / layout.VIDEO_DIR / key).glob("chunk-*/file-*.mp4")
    stray = sorted(p for p in on_disk if p not in used)
    if stray:
        report.add("warning", f"{len(stray)} file(s) no committed episode uses (LeRobot would load them), e.g. "
                   f"{stray[0]}", root, fix=REPAIR)  # fmt: skip
