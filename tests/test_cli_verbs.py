"""``ember``'s verb registry: ember's own verbs are registered in ``ember.cli``, other packages' verbs come from
the ``ember.verbs`` entry point group (``real`` adds ``deploy`` and ``correct``), so ember never imports them."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

import pytest

from ember.cli import main
from ember.errors import ConfigError
from ember.verbs import ENTRY_POINT_GROUP, Verb, register, unregister, verbs


@dataclass
class EchoConfig:
    word: str = "hi"
    """What to say."""
    times: int = 1


def _echo(cfg: EchoConfig) -> int:
    if cfg.times < 0:
        raise ConfigError("times must be >= 0")
    print(" ".join([cfg.word] * cfg.times))
    return 0


@pytest.fixture
def echo_verb():
    verb = register(Verb("echo", "say a word", EchoConfig, _echo))
    yield verb
    unregister("echo")


def test_a_registered_verb_runs_lists_and_explains_itself(echo_verb, capsys):
    assert main(["--help"]) == 0
    assert "echo     say a word" in capsys.readouterr().out
    assert main(["echo", "--word=ember", "--times=2"]) == 0
    assert capsys.readouterr().out.strip() == "ember ember"
    assert main(["echo", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--word='hi'  What to say." in out and "--times=1" in out
    assert main(["echo", "--times=-1"]) == 2
    assert capsys.readouterr().err.strip() == "ember echo: error: times must be >= 0"
    assert main(["ehco"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Did you mean 'echo'" in err


def test_a_second_verb_of_the_same_name_is_refused(echo_verb):
    with pytest.raises(ValueError, match="already registered"):
        register(Verb("echo", "another", EchoConfig, _echo))


def test_real_verbs_come_from_entry_points(capsys):
    names = {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    if not names:
        pytest.skip("ember is not pip-installed here (no 'ember.verbs' entry points): run pip install -e .")
    assert names == {
        "deploy": "ember.real.deploy:VERB",
        "correct": "ember.real.correct:VERB",
        "label": "ember.rewards.label:VERB",
        "train-reward": "ember.rewards.models.train:VERB",
        "motions": "ember.vla.motions_cli:VERB",
    }
    found = verbs()
    assert {"demo", "collect", "train", "eval", "info", "data", "deploy", "correct"} <= set(found)
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "deploy " in out and "correct " in out
    assert main(["deploy", "--help"]) == 0
    assert "--checkpoint=''" in capsys.readouterr().out
    assert main(["deploy"]) == 2  # no checkpoint: the domain error, one line
    assert "ember deploy: error: no checkpoint" in capsys.readouterr().err
