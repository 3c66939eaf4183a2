"""``ember data <action>``: info | verify | repair | viz | import.

The lead's ``ember/cli.py`` owns argument parsing; this module only provides the config
dataclass (every field settable as ``--field=value``) and ``run_data(cfg) -> exit code``.
Exit codes: 0 success, 1 problems found (verify) or a DatasetError (message printed, no
traceback), 2 bad arguments.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ember.data.errors import DatasetError

ACTIONS = ("info", "verify", "repair", "viz", "import")
FORMATS = ("robomimic", "rosbag2")


@dataclass
class DataConfig:
    action: str = "info"
    """What to do: info | verify | repair | viz | import."""
    root: str = ""
    """The dataset folder (the one holding meta/, data/, videos/); for import, the new dataset to create."""
    source: str = ""
    """import: the robomimic .hdf5 file, or a rosbag2 folder (or a folder of bags)."""
    format: str = ""
    """import: robomimic | rosbag2 (guessed from --source when empty)."""
    yaml: str = ""
    """import --format=rosbag2: the topic mapping file (see docs/datasets.md)."""
    task: str = ""
    """import: the task string (robomimic default: env name; rosbag2 default: from the mapping)."""
    fps: int = 0
    """import --format=robomimic: frames per second (0: the file's control_freq, else 20)."""
    use_videos: bool = True
    """import: store RGB cameras as MP4 (True) or PNG in parquet (False)."""
    max_episodes: int = 0
    """import --format=robomimic: import only the first N demos (0: all)."""
    deep: bool = False
    """verify: also decode every video frame (slow, catches corrupt packets inside a file)."""
    episode: int = 0
    """viz: which episode to show."""
    out: str = ""
    """viz: output folder (default: <root>-viz next to the dataset, never inside it)."""
    viz_backend: str = "auto"
    """viz: auto (rerun if installed, else files) | rerun | files (PNG contact sheet + MP4)."""
    seed: int = 0
    """Seed for anything random (nothing in these actions is random today; kept for the CLI contract)."""


def _guess_format(source: Path) -> str:
    if source.suffix.lower() in (".hdf5", ".h5"):
        return "robomimic"
    if source.is_dir():
        return "rosbag2"
    raise DatasetError(f"cannot tell the format of {source}; pass --format=robomimic or --format=rosbag2.")


def _info(root: Path) -> int:
    from ember.data.dataset import EmberDataset

    ds = EmberDataset(root, strict=False)
    info = ds.meta.info
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and ".cache" not in p.parts)
    print(f"{root}: LeRobot {info['codebase_version']} dataset, robot {info.get('robot_type')}")
    print(f"  {ds.num_episodes} episodes, {ds.num_frames} frames at {ds.fps} fps "
          f"({ds.num_frames / max(ds.fps, 1):.1f} s), {len(ds.meta.tasks)} task(s), {size / 1e6:.1f} MB")  # fmt: skip
    print(f"  splits: {json.dumps(info.get('splits', {}))}")
    for key, ft in ds.features.items():
        extra = ""
        if ft["dtype"] == "video":
            extra = f"  {ft.get('info', {}).get('video.codec')}"
        elif key in ds.depth_keys:
            extra = f"  depth ({ft['info'].get('depth_unit')})"
        print(f"  {key:<36} {ft['dtype']:<8} {tuple(ft['shape'])}{extra}")
    for i, task in enumerate(ds.meta.tasks[:10]):
        print(f"  task {i}: {task}")
    if len(ds.meta.tasks) > 10:
        print(f"  ... {len(ds.meta.tasks) - 10} more tasks")
    if ds.bad_episodes:
        print(f"  {len(ds.bad_episodes)} unreadable episode(s); run `ember data verify --root={root}`")
    return 0


def _import(cfg: DataConfig, root: Path) -> int:
    from ember.data.importers import import_robomimic, import_rosbag2

    if not cfg.source:
        raise DatasetError("import needs --source=<robomimic .hdf5 | rosbag2 folder>.")
    source = Path(cfg.source)
    fmt = cfg.format or _guess_format(source)
    if fmt not in FORMATS:
        raise DatasetError(f"--format must be one of {FORMATS}, not {fmt!r}.")
    if fmt == "robomimic":
        result = import_robomimic(source, root, task=cfg.task or None, fps=cfg.fps or None,
                                  use_videos=cfg.use_videos, max_episodes=cfg.max_episodes or None)  # fmt: skip
    else:
        if not cfg.yaml:
            raise DatasetError("--format=rosbag2 needs --yaml=<topic mapping file> (see docs/datasets.md).")
        from ember.data.importers.rosbag2 import Rosbag2Mapping

        mapping = Rosbag2Mapping.from_yaml(cfg.yaml)
        if cfg.task:
            mapping.task = cfg.task
        mapping.use_videos = mapping.use_videos and cfg.use_videos
        result = import_rosbag2(source, root, mapping)
    print(f"imported {result.episodes} episodes, {result.frames} frames from {source} into {root} "
          f"in {result.seconds:.1f} s ({result.frames_per_second:.0f} frames/s)")  # fmt: skip
    for note in result.notes:
        print(f"  {note}")
    return 0


def run_data(cfg: DataConfig) -> int:
    """Run one ``ember data`` action; return the process exit code."""
    if cfg.action not in ACTIONS:
        print(
            f"ember data: --action must be one of {', '.join(ACTIONS)} (got {cfg.action!r})", file=sys.stderr
        )
        return 2
    if not cfg.root:
        print("ember data: --root=<dataset folder> is required", file=sys.stderr)
        return 2
    root = Path(cfg.root)
    try:
        if cfg.action == "info":
            return _info(root)
        if cfg.action == "verify":
            from ember.data.verify import verify

            report = verify(root, deep=cfg.deep)
            print(report.summary())
            return 0 if report.ok else 1
        if cfg.action == "repair":
            from ember.data.repair import repair
            from ember.data.verify import verify

            actions = repair(root)
            for line in actions:
                print(f"  {line}")
            report = verify(root)
            print(("nothing to repair; " if not actions else "") + report.summary())
            return 0 if report.ok else 1
        if cfg.action == "viz":
            from ember.data.dataset import EmberDataset
            from ember.data.viz import visualize

            result = visualize(EmberDataset(root), cfg.episode, Path(cfg.out) if cfg.out else root.parent / f"{root.name}-viz",
                               backend=cfg.viz_backend)  # fmt: skip
            for path in result.files:
                print(f"wrote {path}")
            if result.backend == "rerun":
                print(f"open it with: rerun {result.files[0]}")
            return 0
        return _import(cfg, root)
    except DatasetError as exc:
        print(f"ember data {cfg.action}: {exc}", file=sys.stderr)
        return 1
