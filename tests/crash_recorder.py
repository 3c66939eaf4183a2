"""The recorder that tests/test_data_crash.py kills or signals: ``python crash_recorder.py ROOT MODE``.

It records episodes of :data:`LENGTH` frames (:func:`expected_episode`) into tiny shards, so files roll over while
it is being killed, and prints ``mid <e>`` halfway through episode ``e`` and ``saved <e>`` once it is saved, until
it is stopped. MODE ``graceful`` installs :func:`ember.data.signals.stop_on_sigterm`; ``kill`` and ``plain`` do not.
"""

from __future__ import annotations

import contextlib
import signal
import sys

import numpy as np

LENGTH = 15
FEATURES = {
    "observation.state": {"dtype": "float32", "shape": [6], "names": None},
    "action": {"dtype": "float32", "shape": [2], "names": None},
    "observation.images.cam": {"dtype": "video", "shape": [16, 16, 3], "names": None},
}
MODES = ("kill", "plain", "graceful")


def expected_episode(e: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """State, action and camera frames of episode ``e`` (seeded by ``e``)."""
    rng = np.random.default_rng(e)
    state = rng.standard_normal((LENGTH, 6)).astype(np.float32)
    action = rng.standard_normal((LENGTH, 2)).astype(np.float32)
    img = np.zeros((LENGTH, 16, 16, 3), np.uint8)
    img[..., 0] = (np.arange(LENGTH) * 15)[:, None, None]
    img[..., 1] = e * 7 % 256
    return state, action, img


def record(root: str, mode: str) -> None:
    from ember.data import DatasetWriter

    # Ctrl-C as in a terminal: a process started in the background by a non-interactive shell (CI runners,
    # `cmd &`) inherits SIGINT *ignored*, and Python keeps it ignored, so the test's SIGINT would never arrive
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from ember.data.signals import stop_on_sigterm

    guard = stop_on_sigterm() if mode == "graceful" else contextlib.nullcontext()
    with (
        guard,
        DatasetWriter.create(
            root,
            fps=15,
            features=FEATURES,
            data_files_size_in_mb=0.02,
            video_files_size_in_mb=0.02,
            chunks_size=3,
        ) as w,
    ):
        for e in range(10_000):
            state, action, img = expected_episode(e)
            for t in range(LENGTH):
                w.add_frame(
                    {
                        "observation.state": state[t],
                        "action": action[t],
                        "observation.images.cam": img[t],
                        "task": f"task {e % 3}",
                    }
                )
                if t == LENGTH // 2:
                    print(f"mid {e}", flush=True)
            w.save_episode()
            print(f"saved {e}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in MODES:
        raise SystemExit(f"usage: python crash_recorder.py ROOT {{{'|'.join(MODES)}}}")
    record(sys.argv[1], sys.argv[2])
