"""SIGKILL a recording process at arbitrary moments: every saved episode must survive intact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from crash_recorder import LENGTH, expected_episode

from ember.data import EmberDataset, repair
from ember.data.video import probe_duration

RECORDER = Path(__file__).with_name("crash_recorder.py")


def start_recorder(tmp_path: Path, name: str, mode: str) -> tuple[Path, subprocess.Popen]:
    """Start ``crash_recorder.py`` recording into ``tmp_path / name`` (see its docstring for ``mode``)."""
    root = tmp_path / name
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, str(RECORDER), str(root), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    return root, proc


def run_and_kill(tmp_path: Path, name: str, wait_for: str, delay_s: float) -> tuple[Path, int]:
    """Start the recorder, SIGKILL it ``delay_s`` after it prints ``wait_for``; return (root, saved)."""
    root, proc = start_recorder(tmp_path, name, "kill")
    saved = 0
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            if line.startswith("saved"):
                saved = int(line.split()[1]) + 1
            if line.strip() == wait_for:
                break
            assert time.monotonic() < deadline, "recorder too slow"
        else:
            pytest.fail(f"recorder exited early: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(delay_s)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return root, saved


def check_intact(root: Path, at_least: int) -> int:
    ds = EmberDataset(root)  # strict: any torn file would raise here
    assert ds.num_episodes >= at_least
    assert ds.num_frames == ds.num_episodes * LENGTH
    assert ds.frame_table().num_rows == ds.num_frames  # partial episode rows are not served
    for e in range(ds.num_episodes):
        state, action, img = expected_episode(e)
        got = ds.episode(e)
        np.testing.assert_array_equal(got["observation.state"], state)
        np.testing.assert_array_equal(got["action"], action)
        assert np.abs(got["observation.images.cam"].astype(int) - img).mean() < 3.0
        assert got["task"][0] == f"task {e % 3}"
    for path in root.rglob("*"):  # only committed shards, metadata and hidden temp files remain
        if path.is_file():
            assert path.suffix in {".parquet", ".mp4", ".json"} or ".tmp-" in path.name, path
    return ds.num_episodes


def test_sigkill_in_the_middle_of_an_episode(tmp_path):
    root, saved = run_and_kill(tmp_path, "mid", "mid 3", 0.0)
    assert saved == 3
    assert check_intact(root, 3) in (3, 4)


@pytest.mark.parametrize("delay_s", [0.0, 0.004, 0.011, 0.023, 0.037])
def test_sigkill_at_arbitrary_moments(tmp_path, delay_s):
    """Killing right after a save lands in add_frame or in the next save_episode (any of its writes)."""
    root, saved = run_and_kill(tmp_path, "any", "saved 4", delay_s)
    assert saved == 5
    n = check_intact(root, 5)
    check_repaired(root, n)


def check_repaired(root: Path, n: int) -> None:
    """After repair() nothing of the killed episode is left, so LeRobot's glob-everything loader is safe."""
    repair(root)
    assert not [p for p in root.rglob("*") if ".tmp-" in p.name]
    rows = [pq.read_table(p) for p in sorted((root / "data").rglob("*.parquet"))]
    assert sum(t.num_rows for t in rows) == n * LENGTH
    assert max(max(t.column("episode_index").to_pylist()) for t in rows) == n - 1
    ds = EmberDataset(root)
    eps = ds.meta.episodes.to_pydict()
    ends: dict[str, float] = {}
    for c, f, to in zip(eps["videos/observation.images.cam/chunk_index"], eps["videos/observation.images.cam/file_index"],
                        eps["videos/observation.images.cam/to_timestamp"], strict=True):  # fmt: skip
        ends[f"chunk-{c:03d}/file-{f:03d}.mp4"] = to
    for path in (root / "videos/observation.images.cam").rglob("*.mp4"):
        assert abs(probe_duration(path) - ends[f"{path.parent.name}/{path.name}"]) < 1e-6
    stats = json.loads((root / "meta/stats.json").read_text())
    assert stats["index"]["count"] == [n * LENGTH]
    actions = np.concatenate([expected_episode(e)[1] for e in range(n)]).astype(np.float64)
    np.testing.assert_array_equal(stats["action"]["mean"], actions.mean(0))
    check_intact(root, n)
    assert repair(root) == []  # idempotent


def run_and_signal(tmp_path: Path, mode: str, sig: int, delay_s: float) -> tuple[Path, int, subprocess.Popen]:
    """Run the recorder inside ``with DatasetWriter(...)``; send ``sig`` ``delay_s`` after episode 2 is saved."""
    root, proc = start_recorder(tmp_path, f"sig-{mode}", mode)
    saved = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("saved"):
            saved = int(line.split()[1]) + 1
        if line.strip() == "saved 2":
            break
    time.sleep(delay_s)
    proc.send_signal(sig)
    try:
        proc.wait(timeout=90)  # generous: a loaded 2-core machine closes the video encoder slowly
    finally:
        proc.kill()
    return root, saved, proc


@pytest.mark.parametrize(
    "mode,sig,delay_s",
    [("plain", signal.SIGTERM, 0.0), ("plain", signal.SIGTERM, 0.013), ("plain", signal.SIGINT, 0.007),
     ("graceful", signal.SIGTERM, 0.0), ("graceful", signal.SIGTERM, 0.021)],
)  # fmt: skip
def test_sigterm_and_ctrl_c_close_cleanly(tmp_path, mode, sig, delay_s):
    """SIGTERM / Ctrl-C at any moment: finished episodes intact and nothing left for repair to do (a
    signal that lands inside save_episode waits until the episode is committed)."""
    root, saved, proc = run_and_signal(tmp_path, mode, sig, delay_s)
    if mode == "graceful":
        assert proc.returncode == 128 + signal.SIGTERM  # unwound through `with w:` and exited
    elif sig == signal.SIGINT:
        assert proc.returncode in (1, -signal.SIGINT)  # KeyboardInterrupt unwound through `with w:`
        assert "KeyboardInterrupt" in (proc.stderr.read() if proc.stderr else "")
    else:
        assert proc.returncode == -signal.SIGTERM
    n = check_intact(root, saved)
    assert n >= 3
    assert not [p for p in root.rglob("*") if ".tmp-" in p.name]
    assert repair(root) == []
