"""Look at an episode: a rerun recording when ``rerun-sdk`` is installed, else a PNG contact sheet + MP4.

Why both: rerun is the best way to scrub through cameras, joints and language together (LeRobot's
``lerobot-dataset-viz`` uses it), but it is an optional 100 MB dependency; a contact sheet and a
side-by-side MP4 need only Pillow, matplotlib and PyAV, which ember already has, and they open
anywhere (a PR, a chat, a headless server).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ember.data.dataset import EmberDataset
from ember.data.errors import DatasetError


@dataclass
class VizResult:
    files: list[Path] = field(default_factory=list)
    backend: str = ""


def has_rerun() -> bool:
    return importlib.util.find_spec("rerun") is not None


def _depth_to_rgb(depth: np.ndarray) -> np.ndarray:
    """``(T, H, W, 1)`` depth -> uint8 grey (near = bright), scaled over the episode's valid range."""
    d = depth[..., 0].astype(np.float64)
    valid = d[d > 0]
    lo, hi = (float(valid.min()), float(valid.max())) if valid.size else (0.0, 1.0)
    g = np.where(d > 0, 1.0 - (d - lo) / max(hi - lo, 1e-9), 0.0)
    return np.repeat((g * 255).round().astype(np.uint8)[..., None], 3, axis=-1)


def episode_frames(ds: EmberDataset, episode: int) -> dict[str, np.ndarray]:
    """Every camera of ``episode`` as uint8 ``(T, H, W, 3)`` (depth rendered as grey)."""
    out = {}
    for key in ds.camera_keys:
        frames = ds.frames(key, episode)
        out[key] = _depth_to_rgb(frames) if key in ds.depth_keys else frames
    return out


def contact_sheet(ds: EmberDataset, episode: int, path: Path, columns: int = 8) -> Path:
    """One row per camera with ``columns`` evenly spaced frames, plus the state/action curves below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cams = episode_frames(ds, episode)
    data = ds.episode(episode)
    n = ds.episode_length(episode)
    picks = np.unique(np.linspace(0, n - 1, min(columns, n)).round().astype(int))
    numeric = [k for k in ("observation.state", "action") if k in data]
    rows = len(cams) + (1 if numeric else 0)
    fig = plt.figure(figsize=(2 * len(picks), 2.2 * max(rows, 1)), dpi=80)
    for r, (key, frames) in enumerate(cams.items()):
        for c, t in enumerate(picks):
            ax = fig.add_subplot(rows, len(picks), r * len(picks) + c + 1)
            ax.imshow(frames[t])
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(key.removeprefix("observation."), fontsize=8)
            if r == 0:
                ax.set_title(f"t={t / ds.fps:.1f}s", fontsize=8)
    if numeric:
        ax = fig.add_subplot(rows, 1, rows)
        time = np.arange(n) / ds.fps
        for key in numeric:
            values = np.asarray(data[key], dtype=np.float64).reshape(n, -1)
            ax.plot(time, values, lw=1, ls="-" if key == "action" else "--")
        ax.set_xlabel("time (s)")
        ax.set_title(f"observation.state (dashed), action (solid); task: {data['task'][0]}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def side_by_side_mp4(ds: EmberDataset, episode: int, path: Path) -> Path:
    """All cameras of ``episode`` next to each other (padded to a common, even height) as H.264."""
    import av

    cams = list(episode_frames(ds, episode).values())
    if not cams:
        raise DatasetError(f"{ds.root} has no cameras to render.")
    h = max(f.shape[1] for f in cams)
    h += h % 2
    padded = [np.pad(f, ((0, 0), (0, h - f.shape[1]), (0, 0), (0, 0))) for f in cams]
    video = np.concatenate(padded, axis=2)
    if video.shape[2] % 2:
        video = np.pad(video, ((0, 0), (0, 0), (0, 1), (0, 0)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=ds.fps)
        stream.width, stream.height, stream.pix_fmt = video.shape[2], video.shape[1], "yuv420p"
        for frame in video:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def rerun_recording(ds: EmberDataset, episode: int, path: Path) -> Path:
    """A ``.rrd`` file with cameras, every numeric feature as scalars and the language rows as text."""
    import rerun as rr

    rec = rr.RecordingStream(f"ember-{ds.root.name}-episode-{episode}")
    data = ds.episode(episode)
    cams = episode_frames(ds, episode)
    lang = ds.language(episode)
    numeric = [k for k, ft in ds.features.items() if ft["dtype"] in ("float32", "float64", "int64", "bool")
               and k not in ("index", "episode_index", "task_index", "timestamp")]  # fmt: skip
    for t in range(ds.episode_length(episode)):
        rec.set_time("frame_index", sequence=t)
        rec.set_time("timestamp", duration=t / ds.fps)
        for key, frames in cams.items():
            rec.log(key, rr.Image(frames[t]))
        for key in numeric:
            values = np.asarray(data[key][t], dtype=np.float64).reshape(-1)
            for i, v in enumerate(values):
                rec.log(f"{key}/{i}", rr.Scalars(v))
        for row in lang.emitted_at(t):
            rec.log(f"language/{row.style}", rr.TextLog(row.content or ""))
        for row in lang.persistent:
            if round((row.timestamp or 0.0) * ds.fps) == t:
                rec.log(f"language/{row.style}", rr.TextLog(row.content or ""))
    path.parent.mkdir(parents=True, exist_ok=True)
    rec.save(str(path))
    return path


def visualize(ds: EmberDataset, episode: int, out: Path, backend: str = "auto") -> VizResult:
    """Write the visualization of ``episode`` under ``out``; ``backend``: auto | rerun | files."""
    if not 0 <= episode < ds.num_episodes:
        raise DatasetError(f"episode {episode} out of range: {ds.root} has {ds.num_episodes} episodes.")
    if backend not in ("auto", "rerun", "files"):
        raise DatasetError(f"viz backend must be auto, rerun or files, not {backend!r}.")
    if backend == "rerun" and not has_rerun():
        raise DatasetError(
            "the rerun backend needs rerun-sdk, which the viz extra installs: pip install 'ember[viz]' (or use "
            "--viz_backend=files)."
        )
    result = VizResult()
    if backend == "rerun" or (backend == "auto" and has_rerun()):
        result.files.append(rerun_recording(ds, episode, out / f"episode_{episode:06d}.rrd"))
        result.backend = "rerun"
        return result
    result.files.append(contact_sheet(ds, episode, out / f"episode_{episode:06d}.png"))
    if ds.camera_keys:
        result.files.append(side_by_side_mp4(ds, episode, out / f"episode_{episode:06d}.mp4"))
    result.backend = "files"
    return result
