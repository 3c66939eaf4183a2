"""Hold Ctrl-C / SIGTERM back while an episode is being committed.

Why: every file is replaced atomically, so even SIGKILL cannot tear a saved episode. But a
KeyboardInterrupt raised halfway through ``save_episode`` leaves the *new* episode half-written
(its rows in a shard, its info.json not yet committed) and the writer unusable, and SIGTERM's
default action kills the process at the same point. Deferring both signals for the few
milliseconds of a save turns every stop into "the episode either committed completely or never
started"; the signal is re-delivered to the previous handler right afterwards, so the
application's own Ctrl-C/SIGTERM handling (rclpy, tqdm, the default) still runs.

Only the main thread can install handlers; elsewhere this is a no-op (the atomic writes alone
still guarantee that saved episodes survive).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

DEFERRED = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def deferred_signals(signals: tuple[int, ...] = DEFERRED) -> Iterator[None]:
    """Run the body with ``signals`` held back; re-raise the first one that arrived afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    previous: dict[int, Any] = {}
    try:
        for sig in signals:
            previous[sig] = signal.signal(sig, hold)
    except ValueError:  # e.g. an embedded interpreter without signal support
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if pending:
            signal.raise_signal(pending[0])


class Stop(SystemExit):
    """Raised by :func:`stop_on_sigterm` when SIGTERM arrives: a SystemExit with the conventional
    status 143 (128 + SIGTERM), so ``except Exception`` in a recording loop does not swallow it and an
    uncaught one ends the process with that status after every ``with`` block has closed."""


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into :class:`Stop` inside the body, so ``with DatasetWriter(...)`` blocks unwind and
    close the dataset cleanly (as Ctrl-C does) instead of the process dying on the spot."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_stop(signum: int, frame: FrameType | None) -> None:
        raise Stop(128 + signum)

    previous = signal.signal(signal.SIGTERM, raise_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
