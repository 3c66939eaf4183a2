"""The ``ember`` command: ``ember <verb> [--field=value ...]``.

Each verb owns one config dataclass; every field (nested ones with dots) can be
set on the command line, ``--config=<saved config.json>`` replays a run, and
``ember <verb> --help`` lists every field with its default and meaning.

ember's own verbs are registered below; other packages add theirs through the ``ember.verbs`` entry point
group (``real`` adds ``deploy`` and ``correct``), so ember never imports them (see ``ember.verbs``).
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from ember.config import apply_overrides, register_choice_factory
from ember.errors import ConfigError
from ember.verbs import ENTRY_POINT_GROUP, Verb, register, verbs

DATA_ACTIONS = ("info", "verify", "repair", "viz", "import")


@dataclasses.dataclass
class InfoConfig:
    dataset: str = ""
    """A dataset root to summarise."""
    policy_path: str = ""
    """A checkpoint folder to summarise."""


def _register_factories() -> None:
    from ember.algorithms import AlgorithmConfig, make_algorithm_config
    from ember.policies import make_policy_config
    from ember.policies.base import PolicyConfig

    register_choice_factory(PolicyConfig, make_policy_config)
    register_choice_factory(AlgorithmConfig, make_algorithm_config)


# ------------------------------------------------------------------------------------------ ember's own verbs
# (other packages add theirs through the "ember.verbs" entry point group: see ember.verbs)
def _demo_config() -> Any:
    from ember.demo import DemoConfig

    return DemoConfig()


def _run_demo(cfg: Any) -> int:
    from ember.demo import run_demo

    summary = run_demo(cfg)
    lo, hi = summary["success_ci95"]
    key, name = (
        ("mean_max_coverage", "coverage") if summary["task"] == "PushT" else ("mean_max_progress", "progress")
    )
    print(
        f"\n{summary['task']}: trained {summary['policy']} policy: success {summary['success_rate']:.0%} "
        f"(95% CI {lo:.0%}-{hi:.0%}) over {summary['eval_episodes']} episodes, mean max {name} {summary[key]:.3f}\n"
        f"untrained baseline: success {summary['untrained_success_rate']:.0%} over "
        f"{summary['baseline_episodes']} episodes, mean max {name} {summary['untrained_' + key]:.3f}\n"
        f"report: {summary['report']}  ({summary['total_seconds']:.0f} s)"
    )
    return 0


def _collect_config() -> Any:
    from ember.collect import CollectConfig

    return CollectConfig()


def _run_collect(cfg: Any) -> int:
    from ember.collect import collect

    result = collect(cfg)
    if set(result.behaviors) <= {"expert"}:
        how = f"expert success {result.expert_success_rate:.0%}"
    else:  # what each behaviour made, successes out of attempts
        how = ", ".join(
            f"{name} {c['saved']} ({c['successes']}/{c['attempts']} succeeded)"
            for name, c in result.behaviors.items()
        )
    print(
        f"saved {result.episodes} episodes ({result.frames} frames) to {result.root} ({how}, "
        f"{result.seconds:.0f} s)"
    )
    return 0


def _train_config() -> Any:
    from ember.train import TrainConfig

    return TrainConfig()


def _run_train(cfg: Any) -> int:
    from ember.train import train

    result = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun / accelerate launch, the main process reports
        print(
            f"loss {result.first_loss:.4f} -> {result.final_loss:.4f} in {result.steps} steps "
            f"({result.seconds:.0f} s); checkpoint: {result.checkpoint}"
        )
    return 0


def _eval_config() -> Any:
    from ember.eval import EvalConfig

    return EvalConfig()


def _run_eval(cfg: Any) -> int:
    from ember.eval import run_eval

    result, out = run_eval(cfg)
    lo, hi = result.success_ci95
    print(
        f"success {result.success_rate:.0%} (95% CI {lo:.0%}-{hi:.0%}), mean max coverage "
        f"{result.mean_max_coverage:.3f} over {result.num_episodes} episodes; report: {out / 'report.md'}"
    )
    return 0


def _run_info(cfg: Any) -> int:
    from ember.info import run_info

    return run_info(cfg)


def _data_config() -> Any:
    from ember.data.cli import DataConfig

    return DataConfig()


def _run_data(cfg: Any) -> int:
    from ember.data.cli import run_data

    return run_data(cfg)


def _data_positionals(rest: list[str]) -> list[str] | None:
    """``ember data verify <root>`` -> ``--action=verify --root=<root>``."""
    positionals = []
    while rest and not rest[0].startswith("-") and len(positionals) < 2:
        positionals.append(rest.pop(0))
    if positionals:
        action = positionals[0]
        if action not in DATA_ACTIONS:
            close = difflib.get_close_matches(action, DATA_ACTIONS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            print(
                f"ember data: error: unknown action '{action}'.{hint} Valid actions: {', '.join(DATA_ACTIONS)}.",
                file=sys.stderr,
            )
            return None
        rest = [f"--action={action}"] + ([f"--root={positionals[1]}"] if len(positionals) > 1 else []) + rest
    return rest


for _builtin in (
    Verb(
        "demo",
        "collect expert demos, train a policy, evaluate it: the whole loop in minutes",
        _demo_config,
        _run_demo,
    ),
    Verb(
        "collect",
        "record scripted-expert demonstrations into a LeRobot v3 dataset",
        _collect_config,
        _run_collect,
    ),
    Verb("train", "train a policy on a dataset", _train_config, _run_train),
    Verb(
        "eval",
        "roll a trained policy out in simulation: success rate, videos, report",
        _eval_config,
        _run_eval,
    ),
    Verb(
        "info",
        "versions, registered tasks and policies; or a summary of --dataset / --policy_path",
        InfoConfig,
        _run_info,
    ),
    Verb(
        "data",
        "dataset tools: ember data info|verify|repair|viz|import <root> [--field=value ...]",
        _data_config,
        _run_data,
        positionals=_data_positionals,
    ),
):
    register(_builtin, replace=True)


def _verb(name: str) -> Verb:
    return verbs()[name]


def _config_for(verb: str) -> Any:
    return _verb(verb).config()


def _field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (the string literal under a field) of a dataclass, read from its source."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, nxt in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if (
                isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _help_lines(cfg: Any, prefix: str = "") -> list[str]:
    lines: list[str] = []
    docs = {}
    for klass in reversed(type(cfg).__mro__):
        if dataclasses.is_dataclass(klass):
            docs.update(_field_docs(klass))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            lines.append(f"  [{name}]  {type(value).__name__}")
            lines.extend(_help_lines(value, name + "."))
            continue
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        doc = f"  {docs[f.name]}" if f.name in docs else ""
        lines.append(f"  --{name}={shown}{doc}")
    return lines


def _print_help(verb: str | None) -> None:
    if verb is None:
        print("usage: ember <verb> [--field=value ...]   (ember <verb> --help lists the fields)\n\nverbs:")
        for name, v in verbs().items():
            print(f"  {name:<8} {v.help}")
        return
    cfg = _config_for(verb)
    print(f"usage: ember {verb} [--field=value ...]\n\n{_verb(verb).help}\n\nfields (defaults shown):")
    print("\n".join(_help_lines(cfg)))
    print("\n  --config=<path/config.json>  start from a saved config; later flags still apply")


def _run_verb(verb: str, cfg: Any) -> int:
    return _verb(verb).run(cfg)


def _domain_errors() -> tuple[type[BaseException], ...]:
    from ember.errors import EmberError

    errors: list[type[BaseException]] = [EmberError]
    for module, name in (
        ("ember.policies.errors", "PolicyError"),
        ("ember.data.errors", "DatasetError"),
        ("ember.sims.errors", "SimError"),
        ("ember.robots.errors", "RobotError"),
    ):
        try:
            errors.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def _preload_triton() -> None:
    """Load triton (pulled in by torch/diffusers) before any EGL context: Mesa's llvmpipe and triton both
    bundle LLVM, and triton loaded second segfaults the process."""
    import importlib.util

    if importlib.util.find_spec("triton") is not None:
        import triton  # noqa: F401


def main(argv: Sequence[str] | None = None, *, run: Callable[[str, Any], int] = _run_verb) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    _preload_triton()
    if not args or args[0] in ("-h", "--help", "help"):
        _print_help(None)
        return 0
    verb, rest = args[0], args[1:]
    known = verbs()
    if verb not in known:
        close = difflib.get_close_matches(verb, list(known), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        print(
            f"ember: error: unknown verb '{verb}'.{hint} Valid verbs: {', '.join(known)}. (Verbs of other "
            f"packages come from their '{ENTRY_POINT_GROUP}' entry points: reinstall with `pip install -e .` "
            "if one is missing.)",
            file=sys.stderr,
        )
        return 2
    if known[verb].positionals is not None:
        rest = known[verb].positionals(rest)
        if rest is None:
            return 2
    errors = _domain_errors()
    try:
        _register_factories()
        if any(a in ("-h", "--help") for a in rest):
            _print_help(verb)
            return 0
        cfg = apply_overrides(_config_for(verb), rest)
        return run(verb, cfg)
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"ember {verb}: interrupted; finished episodes and checkpoints are kept.", file=sys.stderr)
        return 130
    except (ConfigError, *errors) as err:
        print(f"ember {verb}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
