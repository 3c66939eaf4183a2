"""Config overrides, the saved resolved config, CLI errors and run-folder protection."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from ember.cli import main
from ember.config import apply_overrides, load_into, save_config, to_dict
from ember.errors import ConfigError, RunFolderError
from ember.runs import prepare_run_folder


@dataclass
class _Inner:
    horizon: int = 16
    lr: float = 1e-3
    name: str = "a"
    dims: tuple[int, ...] = (64, 128)
    flag: bool = False
    path: str | None = None


@dataclass
class _Outer:
    seed: int = 0
    inner: _Inner = field(default_factory=_Inner)


def test_dotted_overrides_set_typed_values():
    cfg = apply_overrides(
        _Outer(),
        [
            "--inner.horizon=8",
            "--inner.lr",
            "3e-4",
            "--seed=7",
            "--inner.dims=32,64,96",
            "--inner.flag",
            "--inner.path=none",
        ],
    )
    assert cfg.seed == 7
    assert cfg.inner.horizon == 8 and isinstance(cfg.inner.horizon, int)
    assert cfg.inner.lr == pytest.approx(3e-4)
    assert cfg.inner.dims == (32, 64, 96)
    assert cfg.inner.flag is True
    assert cfg.inner.path is None


def test_unknown_field_names_valid_choices():
    with pytest.raises(ConfigError) as err:
        apply_overrides(_Outer(), ["--inner.horizn=8"])
    message = str(err.value)
    assert "horizn" in message and "Did you mean 'horizon'" in message
    for name in ("horizon", "lr", "dims"):
        assert name in message


def test_wrong_value_type_is_a_clear_error():
    with pytest.raises(ConfigError, match="expected an integer, got 'eight'"):
        apply_overrides(_Outer(), ["--inner.horizon=eight"])
    with pytest.raises(ConfigError, match="boolean"):
        apply_overrides(_Outer(), ["--inner.flag=maybe"])
    with pytest.raises(ConfigError, match="group of settings"):
        apply_overrides(_Outer(), ["--inner=3"])


def test_saved_config_round_trips(tmp_path):
    cfg = apply_overrides(_Outer(), ["--inner.horizon=4", "--inner.dims=1,2"])
    path = save_config(cfg, tmp_path / "run")
    data = json.loads(path.read_text())
    assert data == {
        "seed": 0,
        "inner": {"horizon": 4, "lr": 1e-3, "name": "a", "dims": [1, 2], "flag": False, "path": None},
    }
    reloaded = load_into(_Outer(), data)
    assert to_dict(reloaded) == to_dict(cfg)
    # --config replays a saved run; later flags still win
    replay = apply_overrides(_Outer(), [f"--config={path}", "--seed=3"])
    assert replay.inner.horizon == 4 and replay.seed == 3


def test_policy_type_swaps_the_sub_config():
    from ember.cli import _register_factories
    from ember.train import TrainConfig

    _register_factories()
    cfg = apply_overrides(
        TrainConfig(), ["--policy.type=diffusion", "--policy.horizon=8", "--policy.n_action_steps=4"]
    )
    assert cfg.policy.type == "diffusion" and cfg.policy.horizon == 8
    with pytest.raises(Exception, match="diffusion"):
        apply_overrides(TrainConfig(), ["--policy.type=no_such_policy"])


def test_cli_unknown_verb_is_one_line(capsys):
    assert main(["trian"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "unknown verb 'trian'" in err and "Did you mean 'train'" in err
    for verb in ("demo", "collect", "train", "eval", "info"):
        assert verb in err


def test_cli_unknown_field_and_bad_type_are_one_line(capsys):
    assert main(["train", "--policy.horizn=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "horizon" in err
    assert main(["train", "--steps=many"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "expected an integer" in err
    assert main(["eval", "--num_episodes"]) == 2  # bare flag means true: not an integer
    assert "expected an integer" in capsys.readouterr().err


def test_cli_help_lists_fields(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--policy.horizon=" in out and "--optim.lr=" in out and "--seed=0" in out


def test_cli_passes_resolved_config_to_the_verb():
    seen = {}

    def fake_run(verb, cfg):  # the CLI's dispatch seam: records what the verb would run with
        seen[verb] = cfg
        return 0

    assert main(["collect", "--num_episodes=3", "--seed=5", "--task=PushT"], run=fake_run) == 0
    assert seen["collect"].num_episodes == 3 and seen["collect"].seed == 5


def test_run_folder_is_never_overwritten_silently(tmp_path):
    run = prepare_run_folder(tmp_path / "run")
    (run / "metrics.json").write_text("{}")
    with pytest.raises(RunFolderError, match="already holds a run"):
        prepare_run_folder(tmp_path / "run")
    assert (run / "metrics.json").exists()
    again = prepare_run_folder(tmp_path / "run", overwrite=True)
    assert again == run and not any(again.iterdir())
    backups = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert len(backups) == 1 and (backups[0] / "metrics.json").exists()


@pytest.mark.parametrize(
    "flag",
    [
        "--num_episodes=-3",
        "--num_episodes=0",
        "--max_attempts_factor=0.5",
        "--obs_mode=depth",
        "--max_episode_steps=-1",
    ],
)
def test_collect_refuses_counts_that_cannot_make_a_dataset(tmp_path, capsys, flag):
    out = tmp_path / "ds"
    assert main(["collect", "--task=PushT", f"--out={out}", flag]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag.split("=")[0] in err[0]
    assert not out.exists()  # nothing written
