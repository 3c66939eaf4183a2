"""Test-wide environment: headless MuJoCo, no hub access, ROS 2 discovery kept on loopback."""

import os
import random

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
# One intra-op thread: on 2 shared cores torch's spin-waiting OpenMP threads slow 10-100x as soon as another
# process (a ROS node, a data worker) competes; one thread is slower by far less on a quiet machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))

# Mesa's llvmpipe (MuJoCo EGL rendering on a CPU) and triton (imported by torch/diffusers) each carry LLVM;
# loading triton after a GL context exists segfaults, so load it first (see sims' renderer for the same).
try:
    import triton  # noqa: F401
except ImportError:
    pass


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def one_torch_thread():
    """OMP_NUM_THREADS above is only a default; keep every test on one torch thread whatever the caller set."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
