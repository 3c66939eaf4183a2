"""Where rollout work runs: in this process (``serial``), in a spawn pool on this machine (``process``), or on a Ray
cluster (``ray``).

An executor runs a picklable, module-level function on arguments and hands back a :class:`Task` whose
``result()`` waits for it. :func:`map_ordered` maps a function over work items with at most ``max_in_flight``
submitted at once and yields the results **in item order** as they become available, so a caller can write
episode ``i`` while episodes ``i+1 ...`` still run, and memory stays bounded by the window, not the run.

The work itself must not depend on where it runs: a worker builds what it needs (an env, an expert, a policy
loaded from a checkpoint path) from the item, never from objects pickled out of the caller. That is what makes
``ember collect`` and ``ember eval`` give the same results under every executor (see docs/distributed.md).

Ray is optional (``pip install 'ember[distributed]'``) and imported only when the ``ray`` executor is made; with
no ``ray_address`` it starts a local instance with ``num_workers`` CPUs and shuts it down on :meth:`close`;
with one it joins that cluster, and an instance already started in this process (a test's) is reused as is.
"""

from __future__ import annotations

import collections
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from ember.errors import ConfigError, EmberError

EXECUTORS = ("serial", "process", "ray")


class Task(Protocol):
    """A submitted call: ``result()`` waits for its value (re-raising the worker's exception)."""

    def result(self) -> Any: ...

    def cancel(self) -> Any: ...


class _Deferred:
    """The serial executor's task: the call runs when its result is first asked for (the caller's order)."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._call: tuple[Callable[..., Any], tuple[Any, ...]] | None = (fn, args)
        self._value: Any = None

    def result(self) -> Any:
        if self._call is not None:
            fn, args = self._call
            self._value, self._call = fn(*args), None
        return self._value

    def cancel(self) -> bool:
        self._call = None
        return True


class Executor:
    """Runs ``fn(*args)`` somewhere; :attr:`num_workers` calls at a time."""

    name = "serial"

    def __init__(self, num_workers: int = 1) -> None:
        self.num_workers = max(1, int(num_workers))

    def submit(self, fn: Callable[..., Any], *args: Any) -> Task:
        return _Deferred(fn, args)

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _PoolTask:
    """A pool future whose worker dying (a segfault, the OOM killer) is an error that says what happened."""

    def __init__(self, future: Future) -> None:
        self._future = future

    def result(self) -> Any:
        try:
            return self._future.result()
        except BrokenProcessPool as e:
            raise EmberError(
                f"a worker process died ({e}); rerun with --executor=serial to see the failure in "
                "this process, or with fewer --num_workers if memory ran out."
            ) from e

    def cancel(self) -> bool:
        return self._future.cancel()


class ProcessExecutor(Executor):
    """A pool of ``num_workers`` spawned processes on this machine (spawn: MuJoCo/EGL and torch state are not
    fork-safe); each worker keeps what it builds (envs, policies) between calls."""

    name = "process"

    def __init__(self, num_workers: int) -> None:
        super().__init__(num_workers)
        self._pool = ProcessPoolExecutor(
            max_workers=self.num_workers, mp_context=multiprocessing.get_context("spawn")
        )

    def submit(self, fn: Callable[..., Any], *args: Any) -> _PoolTask:
        return _PoolTask(self._pool.submit(fn, *args))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class _RayTask:
    def __init__(self, ray: Any, ref: Any) -> None:
        self._ray, self._ref = ray, ref

    def result(self) -> Any:
        return self._ray.get(self._ref)

    def cancel(self) -> None:
        self._ray.cancel(self._ref)


class RayExecutor(Executor):
    """Ray tasks of one CPU each; a local instance of ``num_workers`` CPUs unless ``address`` names a cluster."""

    name = "ray"

    def __init__(self, num_workers: int, address: str = "") -> None:
        super().__init__(num_workers)
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "--executor=ray needs Ray: pip install 'ember[distributed]' (or use "
                "--executor=process on one machine)."
            ) from None
        self._ray = ray
        self._owned = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(num_cpus=self.num_workers, include_dashboard=False, log_to_driver=False)
            self._owned = True
        self._remotes: dict[Callable[..., Any], Any] = {}

    def submit(self, fn: Callable[..., Any], *args: Any) -> _RayTask:
        remote = self._remotes.get(fn)
        if remote is None:
            remote = self._remotes[fn] = self._ray.remote(num_cpus=1, max_retries=0)(fn)
        return _RayTask(self._ray, remote.remote(*args))

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()
        self._owned = False


def check_executor(kind: str, num_workers: int) -> None:
    """A one-line ConfigError for an unknown executor or a worker count below 1."""
    if kind not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {kind!r}.")
    if num_workers < 1:
        raise ConfigError(f"--num_workers must be a positive number of worker processes, got {num_workers}.")


def make_executor(kind: str, num_workers: int = 1, ray_address: str = "") -> Executor:
    """``serial`` | ``process`` | ``ray`` (see the module docstring); close it (or use ``with``) when done."""
    check_executor(kind, num_workers)
    if ray_address and kind != "ray":
        raise ConfigError(f"--ray_address is read only with --executor=ray (got --executor={kind}).")
    if kind == "process":
        return ProcessExecutor(num_workers)
    if kind == "ray":
        return RayExecutor(num_workers, ray_address)
    return Executor(1)


def map_ordered(
    executor: Executor, fn: Callable[..., Any], items: Iterable[tuple[Any, ...]], max_in_flight: int = 0
) -> Iterator[Any]:
    """``fn(*item)`` for each item, at most ``max_in_flight`` (default twice the workers) submitted at a time,
    yielded in item order; leaving the loop early cancels what has not started."""
    window = max_in_flight or 2 * executor.num_workers
    pending: collections.deque[Task] = collections.deque()
    items = iter(items)
    try:
        for item in items:
            pending.append(executor.submit(fn, *item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for task in pending:
            task.cancel()
