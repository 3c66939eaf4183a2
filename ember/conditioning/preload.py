"""Load triton's native library before any OpenGL (EGL) context exists in the process.

Measured here (torch 2.14.1, MuJoCo EGL): importing ``triton`` *after* MuJoCo has rendered offscreen segfaults
inside ``libtriton``; importing it first is fine. torch imports triton lazily (``torch._dynamo``, e.g. on the first
``torch.optim.AdamW``), so a process that records pixel episodes and then trains (a test, a benchmark, the demo)
crashes unless triton is already loaded. The modules that train or roll out call :func:`preload_triton` at import.
"""

from __future__ import annotations


def preload_triton() -> None:
    """Imports triton if installed (about 0.2 s); a no-op when it is absent or already loaded."""
    try:
        import triton  # noqa: F401
    except Exception:  # not installed, or unusable on this machine: torch then never imports it either
        pass
