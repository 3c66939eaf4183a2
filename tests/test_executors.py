"""Rollouts past one process (``ember.executors``): ``ember collect`` and ``ember eval`` spread over spawned worker
processes and over a local Ray instance of 2 workers give exactly the serial run's results for the same seeds:
the same dataset, table for table (failed expert attempts shifting a behaviour mix included), and the same
per-episode returns and successes."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import ember.collect_attempts as collect_attempts
import ember.executors as executors
from ember.collect import CollectConfig, collect
from ember.errors import ConfigError, EmberError
from ember.executors import Executor, make_executor, map_ordered

RUN_FIELDS = ("out", "executor", "num_workers", "ray_address", "record", "num_videos")
"""Config fields that say where a run went and ran, not what it recorded."""


def slow_square(x: int) -> int:
    """Later items finish first, so an in-order result is the executor's doing, not the timing's."""
    time.sleep(0.05 * (4 - x))
    return x * x


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance of 2 CPUs for every Ray test here (start-up takes seconds); shut down after."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def dataset_tables(root: Path) -> dict[str, object]:
    """Every parquet table and JSON file of a dataset (the run's own config without where it ran)."""
    out: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.suffix == ".parquet":
            out[rel] = pq.read_table(path)
        elif path.suffix == ".json":
            data = json.loads(path.read_text())
            if path.name in ("ember_collect_config.json", "ember_eval_config.json"):
                data = {k: v for k, v in data.items() if k not in RUN_FIELDS}
            out[rel] = data
        elif path.suffix == ".mp4":
            out[rel] = path.read_bytes()
    return out


def assert_same_dataset(a: Path, b: Path) -> None:
    ta, tb = dataset_tables(a), dataset_tables(b)
    assert sorted(ta) == sorted(tb)
    for key in ta:
        if hasattr(ta[key], "equals"):
            assert ta[key].equals(tb[key]), key
        else:
            assert ta[key] == tb[key], key


def reach(tmp: Path, name: str, **kwargs) -> CollectConfig:
    """Reach cut to 4 steps: the expert fails about half its attempts (6 episodes take 13 attempts)."""
    base = dict(
        task="Reach",
        num_episodes=6,
        max_episode_steps=4,
        max_attempts_factor=3.0,
        seed=0,
        out=str(tmp / name),
    )
    return CollectConfig(**(base | kwargs))


@pytest.fixture(scope="module")
def serial_reach(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serial")
    result = collect(reach(tmp, "serial"), quiet=True)
    assert result.episodes == 6 and result.attempts == 13  # failures are dropped: the case that shifts seeds
    return result


def test_map_ordered_yields_in_item_order_with_a_bounded_window() -> None:
    with make_executor("process", 2) as ex:
        assert list(map_ordered(ex, slow_square, [(x,) for x in range(5)], max_in_flight=3)) == [
            0,
            1,
            4,
            9,
            16,
        ]
    calls: list[int] = []

    def record(x: int) -> int:
        calls.append(x)
        return x

    window = map_ordered(Executor(2), record, [(x,) for x in range(10)], max_in_flight=3)
    assert next(window) == 0 and calls == [0]  # serial: each call runs when its result is asked for
    assert list(window) == list(range(1, 10))
    with pytest.raises(ConfigError, match="must be one of serial, process, ray"):
        make_executor("threads", 2)
    with pytest.raises(ConfigError, match="positive number of worker"):
        make_executor("process", 0)


def die(x: int) -> int:
    import os

    os._exit(3)  # a worker killed mid-task (segfault, OOM killer)


def test_a_dead_worker_is_an_error_that_says_what_to_do() -> None:
    with make_executor("process", 1) as ex, pytest.raises(EmberError, match="a worker process died.*serial"):
        ex.submit(die, 1).result()


def test_ray_executor_says_how_to_install_ray_when_missing(monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ConfigError, match=r"pip install 'ember\[distributed\]'"):
        make_executor("ray", 2)


def test_collect_in_worker_processes_equals_serial(serial_reach, tmp_path) -> None:
    result = collect(reach(tmp_path, "process", executor="process", num_workers=2), quiet=True)
    assert (result.episodes, result.frames, result.attempts) == (6, serial_reach.frames, 13)
    assert result.behaviors == serial_reach.behaviors
    assert_same_dataset(serial_reach.root, result.root)


def test_collect_on_ray_equals_serial(serial_reach, ray_instance, tmp_path) -> None:
    result = collect(reach(tmp_path, "ray", executor="ray", num_workers=2), quiet=True)
    assert ray_instance.is_initialized()  # a running instance is joined, not shut down
    assert (result.episodes, result.frames, result.attempts) == (6, serial_reach.frames, 13)
    assert_same_dataset(serial_reach.root, result.root)


def test_a_failed_expert_shifting_a_behaviour_mix_is_recomputed_and_equals_serial(
    tmp_path, monkeypatch
) -> None:
    """In a mixed dataset a dropped expert attempt gives every later attempt the next slot's behaviour: those
    already running with the old one are run again, and the dataset is the serial run's."""
    mixed = dict(behavior="mixed", mix="expert:0.5,noisy:0.5", num_episodes=8, seed=3)
    serial = collect(reach(tmp_path, "serial", **mixed), quiet=True)
    assert serial.behaviors["expert"]["attempts"] > serial.behaviors["expert"]["saved"] == 4
    submitted: list[tuple[int, str]] = []

    class Counting(Executor):
        """In-process, 2 workers' window: tasks run when the writer reaches them; records every submission."""

        def submit(self, fn, *args):
            submitted.append(args[1:])
            return super().submit(fn, *args)

    monkeypatch.setattr(executors, "make_executor", lambda kind, n, address="": Counting(n))
    inline = collect(reach(tmp_path, "inline", executor="process", **mixed), quiet=True)
    assert_same_dataset(serial.root, inline.root)
    assert inline.behaviors == serial.behaviors and inline.attempts == serial.attempts
    assert (
        len({a for a, _ in submitted}) == serial.attempts < len(submitted)
    )  # some ran again with a new slot
    for attempt in {a for a, _ in submitted}:  # an attempt runs again only when its behaviour changed
        names = [n for a, n in submitted if a == attempt]
        assert all(x != y for x, y in zip(names, names[1:], strict=False)), (attempt, names)
    monkeypatch.undo()
    spread = collect(reach(tmp_path, "process", executor="process", num_workers=2, **mixed), quiet=True)
    assert_same_dataset(serial.root, spread.root)


def test_a_failing_worker_keeps_every_episode_written_before_it(tmp_path, monkeypatch) -> None:
    """Attempt 3 raises in its worker: the error reaches the caller and the dataset holds episodes 0-2, readable."""
    from ember.data import EmberDataset

    real = collect_attempts.attempt_in_worker

    def third_fails(cfg, attempt, name):
        if attempt == 3:
            raise RuntimeError("simulator crashed on attempt 3")
        return real(cfg, attempt, name)

    monkeypatch.setattr(executors, "make_executor", lambda kind, n, address="": Executor(n))
    monkeypatch.setattr(collect_attempts, "attempt_in_worker", third_fails)
    cfg = reach(tmp_path, "crash", executor="process", max_episode_steps=0)
    with pytest.raises(RuntimeError, match="attempt 3"):
        collect(cfg, quiet=True)
    assert EmberDataset(cfg.out).num_episodes == 3


def test_collect_with_cameras_in_workers_equals_serial(tmp_path) -> None:
    """Camera frames travel back as uint8 arrays and are encoded here: the same videos, byte for byte."""
    pixels = dict(obs_mode="pixels", cameras=("front",), image_size=16, num_episodes=3)
    serial = collect(reach(tmp_path, "serial", **pixels), quiet=True)
    spread = collect(reach(tmp_path, "process", executor="process", num_workers=2, **pixels), quiet=True)
    assert any(p.suffix == ".mp4" for p in spread.root.rglob("*"))
    assert (spread.root / "meta" / "ember_cameras.json").exists()
    assert_same_dataset(serial.root, spread.root)


def test_collect_refuses_bad_executor_settings(tmp_path, capsys) -> None:
    with pytest.raises(ConfigError, match="--executor must be one of"):
        collect(reach(tmp_path, "a", executor="dask"), quiet=True)
    with pytest.raises(ConfigError, match="--num_workers must be a positive"):
        collect(reach(tmp_path, "b", executor="process", num_workers=0), quiet=True)
    with pytest.raises(ConfigError, match="--ray_address is read only with --executor=ray"):
        collect(reach(tmp_path, "c", ray_address="auto"), quiet=True)
    assert not (tmp_path / "a").exists()
    from ember.cli import main

    assert main(["collect", "--task=Reach", "--executor=threads", f"--out={tmp_path / 'd'}"]) == 2
    assert "--executor must be one of serial, process, ray, got 'threads'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def checkpoint(serial_reach, tmp_path_factory) -> Path:
    """A tiny diffusion policy trained a few steps with ``ember train`` on the serial Reach dataset: stochastic
    (DDPM noise from torch's RNG), so equal results need each batch seeded the same wherever it runs."""
    from ember.train import TrainConfig, train

    cfg = TrainConfig(
        dataset=str(serial_reach.root),
        out=str(tmp_path_factory.mktemp("train") / "run"),
        steps=10,
        batch_size=16,
        seed=0,
        log_every=5,
    )
    cfg.optim.warmup_steps = 2
    cfg.policy.denoiser.down_dims = (16, 32)
    cfg.policy.horizon = 8
    cfg.policy.n_action_steps = 4
    return train(cfg, quiet=True).checkpoint


def eval_config(checkpoint: Path, **kwargs):
    from ember.eval import EvalConfig

    base = dict(
        policy_path=str(checkpoint),
        task="Reach",
        num_episodes=5,
        batch_size=2,
        max_episode_steps=6,
        num_videos=0,
        seed=700,
        num_threads=1,
    )
    return EvalConfig(**(base | kwargs))


@pytest.fixture(scope="module")
def serial_rollout(checkpoint):
    from ember.eval import rollout
    from ember.eval.config import freeze_if_asked
    from ember.policies import load_policy

    cfg = eval_config(checkpoint)  # frozen as ember eval's serial run and every worker freeze it
    return rollout(freeze_if_asked(load_policy(checkpoint), cfg), cfg, keep_observations=False, quiet=True)


def assert_same_trajectories(a: list, b: list) -> None:
    assert [t.seed for t in a] == [t.seed for t in b] == list(range(700, 705))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.actions, y.actions)
        np.testing.assert_array_equal(x.rewards, y.rewards)
        assert [i.get("is_success") for i in x.infos] == [i.get("is_success") for i in y.infos]


def test_eval_in_worker_processes_equals_serial(checkpoint, serial_rollout) -> None:
    """Batches of 2, 2 and 1 episodes on two spawned workers: the same actions, returns and successes per seed,
    handed over in seed order."""
    from ember.eval.parallel import rollout_parallel
    from ember.policies import load_policy

    seen: list[list[int]] = []
    spread = rollout_parallel(
        load_policy(checkpoint),
        eval_config(checkpoint, executor="process"),
        keep_observations=False,
        on_batch=lambda batch: seen.append([t.seed for t in batch]),
        quiet=True,
    )
    assert seen == [[700, 701], [702, 703], [704]]
    assert_same_trajectories(serial_rollout, spread)
    assert len({tuple(t.actions[0]) for t in spread}) > 1  # the episodes differ: a real comparison


def test_ember_eval_on_ray_equals_serial(checkpoint, serial_rollout, ray_instance, tmp_path) -> None:
    """``ember eval --executor=ray --record=DIR`` on the local 2-worker instance: the per-episode results it writes
    equal the serial rollout's, the video comes from a worker's frames, and the recorded dataset (observations,
    actions, rewards per frame) is the serial recording's."""
    from ember.eval import run_eval, summarize

    record = dict(num_videos=1, executor="ray", record=str(tmp_path / "ray_record"))
    result, out = run_eval(eval_config(checkpoint, out=str(tmp_path / "ray"), **record), quiet=True)
    serial = summarize(serial_rollout, 0.0, "train")
    assert [dataclasses.replace(e, video=None) for e in result.episodes] == serial.episodes
    assert result.episodes[0].video and (out / result.episodes[0].video).stat().st_size > 0
    written = json.loads((out / "metrics.json").read_text())
    assert [e["total_reward"] for e in written["episodes"]] == [e.total_reward for e in serial.episodes]
    run_eval(
        eval_config(
            checkpoint, out=str(tmp_path / "serial"), num_videos=1, record=str(tmp_path / "serial_record")
        ),
        quiet=True,
    )
    assert_same_dataset(tmp_path / "serial_record", tmp_path / "ray_record")


def test_eval_on_workers_needs_a_checkpoint_path(checkpoint) -> None:
    from ember.eval import rollout
    from ember.eval.parallel import rollout_parallel
    from ember.policies import load_policy

    with pytest.raises(ConfigError, match="loads the policy in each worker from --policy_path"):
        rollout_parallel(
            load_policy(checkpoint), eval_config(checkpoint, policy_path="", executor="process"), quiet=True
        )
    with pytest.raises(ConfigError, match="--executor must be one of"):
        rollout_parallel(load_policy(checkpoint), eval_config(checkpoint, executor="dask"), quiet=True)
    with pytest.raises(ConfigError, match="rollout_parallel"):  # the serial loop never ignores an executor
        rollout(load_policy(checkpoint), eval_config(checkpoint, executor="process"), quiet=True)
