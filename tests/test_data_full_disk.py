"""A full disk (ENOSPC on a small tmpfs) during ``save_episode``: no earlier episode is lost, the error says what
happened, the disk holds exactly what it held after the last good episode, and recording goes on once space is
freed. Needs root (to mount the tmpfs); skipped otherwise."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ember.data import DatasetWriter, EmberDataset, repair, verify
from ember.data.errors import DatasetError, DiskFullError

FPS = 10
PAGE = 4096


def features(side: int) -> dict[str, dict]:
    return {
        "observation.state": {"dtype": "float32", "shape": [6], "names": None},
        "action": {"dtype": "float32", "shape": [6], "names": None},
        "observation.images.cam": {"dtype": "video", "shape": [side, side, 3], "names": None},
    }


def episode(e: int, side: int, length: int) -> list[dict]:
    """Frames of episode ``e`` (seeded by ``e``); pixel noise, so the mp4s are big and fill the disk fast."""
    rng = np.random.default_rng(e)
    return [{"observation.state": rng.standard_normal(6).astype(np.float32),
             "action": rng.standard_normal(6).astype(np.float32),
             "observation.images.cam": rng.integers(0, 256, (side, side, 3), dtype=np.uint8),
             "task": f"task {e}"} for _ in range(length)]  # fmt: skip


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs at ``tmp_path / 'disk'``, unmounted afterwards whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill up needs root")
    if shutil.which("mount") is None:
        pytest.skip("no `mount` command on this machine")
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (a container without CAP_SYS_ADMIN?): {done.stderr.strip()}")
    yield disk
    if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def free(disk: Path) -> int:
    st = os.statvfs(disk)
    return st.f_bavail * st.f_frsize


def leave_free(disk: Path, nbytes: int) -> None:
    """(Re)write ``disk/filler`` so that exactly ``nbytes`` (a multiple of the page size) stay free."""
    filler = disk / "filler"
    filler.unlink(missing_ok=True)
    size = free(disk) - nbytes
    assert size >= 0, f"only {free(disk)} bytes free, wanted {nbytes}"
    with open(filler, "wb") as f:
        f.write(b"\0" * size)
    assert free(disk) == nbytes


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden temp files included) and a hash of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


def decoded(root: Path) -> list[str]:
    """Per saved episode, a hash of its rows and decoded video frames (a strict open: a torn file raises)."""
    ds = EmberDataset(root)
    out = []
    for e in range(ds.num_episodes):
        ep = ds.episode(e)
        h = hashlib.sha256()
        for key in ("observation.state", "action", "observation.images.cam", "index", "timestamp"):
            h.update(np.ascontiguousarray(ep[key]).tobytes())
        out.append(h.hexdigest())
    return out


def check_episode(root: Path, e: int, frames: list[dict]) -> None:
    ep = EmberDataset(root).episode(e)
    np.testing.assert_array_equal(ep["observation.state"], np.stack([f["observation.state"] for f in frames]))
    np.testing.assert_array_equal(ep["action"], np.stack([f["action"] for f in frames]))
    assert ep["observation.images.cam"].shape == (len(frames), *frames[0]["observation.images.cam"].shape)
    assert set(ep["task"]) == {frames[0]["task"]}


def assert_clean(root: Path, episodes: int) -> None:
    report = verify(root, deep=True)
    assert report.ok and not report.problems, report.summary()
    assert report.episodes == episodes
    assert not [p for p in root.rglob("*") if ".tmp-" in p.name]


def test_a_full_disk_during_save_loses_no_episode_and_the_save_succeeds_once_space_is_freed(small_disk):
    """Record big-video episodes until the disk fills in save_episode; then free space and go on."""
    root, side, length = small_disk / "ds", 128, 15
    (small_disk / "filler").write_bytes(b"\0" * (1024 * 1024))  # what gets deleted to free space
    w = DatasetWriter.create(root, fps=FPS, features=features(side))
    good: dict[str, str] = {}
    hashes: list[str] = []
    for e in range(30):
        frames = episode(e, side, length)
        for f in frames:
            w.add_frame(f)
        try:
            w.save_episode()
        except DiskFullError as exc:
            error = exc
            break
        good, hashes = snapshot(root), decoded(root)
    else:
        pytest.fail("3 MiB never filled up")
    full_at = e
    assert 2 <= full_at <= 10, "the disk should fill after a few episodes"
    msg = str(error)
    assert isinstance(error, DatasetError) and error.__cause__.errno == errno.ENOSPC
    assert "no space left on the device" in msg and str(root) in msg and "free there" in msg
    assert (
        f"Episodes 0..{full_at - 1} are intact" in msg
        and "free some space" in msg
        and "save_episode()" in msg
    )
    assert error.path.is_relative_to(root) and error.free_bytes == free(small_disk)
    # the disk holds exactly the state after the last good episode: same files, same bytes, no temp file left
    assert snapshot(root) == good
    assert decoded(root) == hashes and len(hashes) == full_at
    assert_clean(root, full_at)
    assert repair(root) == []
    with pytest.raises(DatasetError, match="could not be saved"):
        w.add_frame(frames[0])  # the failed episode is complete and waits for a retry, not for more frames

    (small_disk / "filler").unlink()
    assert w.save_episode() == full_at  # the buffered episode, retried
    for f in episode(full_at + 1, side, length):
        w.add_frame(f)
    assert w.save_episode() == full_at + 1
    w.finalize()
    assert decoded(root)[:full_at] == hashes
    for e in (full_at, full_at + 1):
        check_episode(root, e, episode(e, side, length))
    assert_clean(root, full_at + 2)
    assert EmberDataset(root).meta.info["total_frames"] == (full_at + 2) * length


def test_running_out_of_space_at_every_write_of_a_save_leaves_the_disk_as_it_was(small_disk):
    """Leave 0, 4, 8, ... KiB free and retry the same save: every write of it (data shard, video shard, episodes
    shard, tasks, stats, info.json) meets the full disk once; each time the disk is left byte for byte as it was,
    and the save that finally fits stores the episode exactly once."""
    root, side, length = small_disk / "ds", 32, 8
    w = DatasetWriter.create(root, fps=FPS, features=features(side), chunks_size=2,
                             data_files_size_in_mb=0.02, video_files_size_in_mb=0.1)  # fmt: skip
    for e in range(3):
        for f in episode(e, side, length):
            w.add_frame(f)
        w.save_episode()
    good, hashes = snapshot(root), decoded(root)
    frames = episode(3, side, length)  # a new task too: tasks.parquet is rewritten
    for f in frames:
        w.add_frame(f)
    failed_on: list[str] = []
    for step in range(200):
        leave_free(small_disk, step * PAGE)
        try:
            assert w.save_episode() == 3
            break
        except DiskFullError as exc:
            assert "Episodes 0..2 are intact and nothing of episode 3 was kept on disk" in str(exc)
            failed_on.append(str(exc.path.relative_to(root)))
        assert snapshot(root) == good, f"after running out of space writing {failed_on[-1]}"
        assert w.num_episodes == 3 and w.episode_length == length
    else:
        pytest.fail("the save never fitted")
    kinds = {p.split("/chunk-")[0] for p in failed_on}
    assert kinds == {"data", "videos/observation.images.cam", "meta/episodes", "meta/tasks.parquet",
                     "meta/stats.json", "meta/info.json"}, failed_on  # fmt: skip
    (small_disk / "filler").unlink()
    w.finalize()
    assert decoded(root)[:3] == hashes
    check_episode(root, 3, frames)
    assert_clean(root, 4)
    assert EmberDataset(root).meta.tasks == [f"task {e}" for e in range(4)]


def recorder(root: Path, side: int):
    from ember.real.language import LanguageState
    from ember.real.recorder_logic import EpisodeRecorder

    names = tuple(f"j{i}" for i in range(6))
    return EpisodeRecorder(root, fps=FPS, robot="panda", state_names=names, cameras=("cam",),
                           language=LanguageState("pick"), use_videos=True, hold_s=0.0)  # fmt: skip


def record(rec, e: int, side: int, length: int, t0: float) -> None:
    for i, f in enumerate(episode(e, side, length)):
        obs = {
            "observation.state": f["observation.state"],
            "observation.images.cam": f["observation.images.cam"],
        }
        rec.add_frame(obs, f["action"], sampled=t0 + i / FPS)


def test_the_recorder_reports_a_full_disk_drops_that_episode_and_keeps_recording(small_disk):
    root, side, length = small_disk / "ds", 32, 8
    rec = recorder(root, side)
    record(rec, 0, side, length, 0.0)
    assert rec.save_episode() == 0
    good = snapshot(root)
    leave_free(small_disk, 0)
    record(rec, 1, side, length, 10.0)
    assert rec.save_episode() is None  # reported, not raised: the robot session goes on
    assert rec.stats.failed == 1 and "no space left on the device" in rec.stats.last_error
    assert rec.stats.episodes == 1 and rec.episode_frames == 0 and rec.stopped is None
    assert snapshot(root) == good
    (small_disk / "filler").unlink()
    record(rec, 2, side, length, 20.0)
    assert rec.save_episode() == 1
    record(rec, 3, side, length, 30.0)
    leave_free(small_disk, 0)
    rec.close(save=True)  # the episode in progress cannot be saved: dropped, still a clean close
    assert rec.stats.failed == 2 and rec.stats.episodes == 2
    (small_disk / "filler").unlink()
    check_episode(root, 1, [{**f, "task": "pick"} for f in episode(2, side, length)])
    assert_clean(root, 2)


def test_the_recorder_stops_cleanly_when_a_failed_save_cannot_be_undone(small_disk, monkeypatch):
    """Without hard links (FAT, some network filesystems) the writer cannot put the shards back: it refuses to go
    on, the recorder stops with a RealError and closes cleanly, and `ember data repair` cuts the leftovers."""
    from ember.real.errors import RealError

    root, side, length = small_disk / "ds", 32, 8
    rec = recorder(root, side)
    record(rec, 0, side, length, 0.0)
    assert rec.save_episode() == 0
    hashes = decoded(root)

    def no_links(src, dst, *args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted", str(src))

    monkeypatch.setattr(os, "link", no_links)
    record(rec, 1, side, length, 10.0)
    real_replace = os.replace

    def full_after_the_data_shard(
        src, dst, *args, **kwargs
    ):  # the data shard goes in, the video shard fills up
        if str(dst).endswith(".mp4"):
            raise OSError(errno.ENOSPC, "No space left on device", str(src))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full_after_the_data_shard)
    assert rec.save_episode() is None
    monkeypatch.setattr(os, "replace", real_replace)
    assert rec.stopped and "ember data repair" in rec.stats.last_error and rec.writer.failed
    with pytest.raises(RealError, match="stopped"):
        record(rec, 2, side, length, 20.0)
    rec.close(save=True)
    assert decoded(root) == hashes  # the reader ignores the uncommitted rows
    report = verify(root)
    assert report.ok and report.repairable, report.summary()
    assert repair(root)
    assert_clean(root, 1)
