"""The same frames encode to the same MP4 bytes, whatever the process did before.

Workers and the serial loop hand the writer identical uint8 frames; the datasets they write must then be equal byte
for byte (tests/test_executors.py). x264's macroblock-tree rate control broke that: it reads memory it never wrote,
so an episode's first GOP came out different once the heap held other data (the executor test failed about one run
in five in the full suite). Here the heap is dirtied on purpose between encodes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import random

import numpy as np
import pytest

from ember.data.video import EpisodeEncoder, choose_codec


def _dirty_heap(rng: random.Random) -> None:
    """Fill and free blocks large enough to raise glibc's mmap threshold, so later large allocations reuse them."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    blocks = []
    for _ in range(60):
        size = rng.choice([4096, 65536, 200_000, 500_000, 1_000_000, 3_000_000])
        ptr = libc.malloc(size)
        if ptr:
            libc.memset(ptr, rng.randrange(256), size)
            blocks.append(ptr)
    for ptr in blocks:
        libc.free(ptr)


def _episode(size: int, seed: int) -> np.ndarray:
    """Three textured frames that move a little, like a short camera episode."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size, size, 3)).astype(np.int16)
    return np.stack(
        [np.clip(np.roll(base, shift, axis=1) + 10 * shift, 0, 255) for shift in range(3)]
    ).astype(np.uint8)


def _encode(frames: np.ndarray) -> str:
    encoder = EpisodeEncoder(choose_codec("libx264"), fps=10, height=frames.shape[1], width=frames.shape[2])
    for frame in frames:
        encoder.add(frame)
    return hashlib.sha256(encoder.finish()).hexdigest()


@pytest.mark.parametrize("size", [16, 32, 96])
def test_the_same_frames_encode_to_the_same_bytes_on_a_dirty_heap(size: int) -> None:
    rng = random.Random(size)
    episodes = [_episode(size, seed) for seed in range(3)]
    reference = [_encode(frames) for frames in episodes]
    for _ in range(40):
        _dirty_heap(rng)
        assert [_encode(frames) for frames in episodes] == reference


def test_the_default_x264_options_turn_macroblock_tree_off() -> None:
    encoder = EpisodeEncoder(choose_codec("libx264"), fps=10, height=16, width=16)
    for frame in _episode(16, 0):
        encoder.add(frame)
    assert b"mbtree=0" in encoder.finish()  # x264 writes its settings into the stream (SEI)
