"""Instruction phrasings of the tabletop tasks: the training templates, a held-out set, and a user's own file.

Why a held-out set: a language-conditioned policy that scores well on the phrasings it was trained on may only have
memorised them. :data:`HELDOUT_TEMPLATES` are other wordings of the same goals (same slots), never drawn by
``reset`` unless asked for (``instructions="heldout"``) and so never in a dataset ``ember collect`` records: evaluate
on them, never tune on them. The scene and goal of episode ``s`` are the same under every phrasing set (the
template is the last draw of ``Task.sample``), so a drop in success is the wording's alone.

A user's templates (``instruction_templates``, ``ember eval --instruction_templates=FILE``) use the task's slots
(``{obj}``, ``{target}``, ...: see :func:`task_slots`); an unknown slot, a template lacking one, or text the
observation space cannot hold is a :class:`~sims.errors.SimError` naming the template.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path

from ember.sims.errors import SimError

INSTRUCTION_SETS = ("train", "heldout")
"""``train``: each task's own ``templates``; ``heldout``: :data:`HELDOUT_TEMPLATES`."""
MAX_INSTRUCTION_CHARS = 128
"""The ``task`` observation's ``max_length`` (a filled template must fit)."""
TEXT_CHARSET = frozenset(string.ascii_letters + string.digits + " -,.'")
"""Characters the ``task`` observation space allows."""
SLOT_EXAMPLES = {
    "obj": "purple cylinder",
    "target": "yellow",
    "top": "orange cylinder",
    "bottom": "green cylinder",
    "value": "100",
}
"""Longest values the slots take, used to check a template's length and characters before any episode runs."""

HELDOUT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "Reach": (
        "bring the hand over to the {obj}",
        "your gripper should end up at the {obj}",
        "head for the {obj}",
    ),
    "PickPlace": (
        "grab the {obj} and drop it onto the {target} patch",
        "the {obj} belongs on the {target} spot",
        "carry the {obj} over to the {target} tile and leave it there",
        "transfer the {obj} so it rests on the {target} marker",
    ),
    "Stack": (
        "the {top} goes on top of the {bottom}",
        "balance the {top} on the {bottom}",
        "make a stack, {bottom} below and {top} above",
    ),
    "Lift": (
        "get the {obj} {value} cm off the table",
        "keep the {obj} up at {value} cm",
        "the {obj} should float {value} cm over the table",
    ),
    "Drawer": (
        "drag the drawer to {value} percent open",
        "leave the drawer {value} percent open",
        "the drawer should be open {value} percent",
    ),
}
"""Per task: wordings disjoint from its training templates (checked by the tests), with the same slots."""


def template_slots(template: str) -> set[str]:
    """The named slots of ``template``; positional ``{}``, attribute access and format specs are errors."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise SimError(
            f"instruction template {template!r}: {err} (write slots as {{obj}}; a literal brace as "
            "{{ or }})."
        ) from None
    slots: set[str] = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise SimError(
                f"instruction template {template!r}: slot {{{name}}} is not a plain name like {{obj}}."
            )
        if spec or conversion:
            raise SimError(
                f"instruction template {template!r}: slot {{{name}}} may not carry a format spec or "
                "conversion."
            )
        slots.add(name)
    return slots


def task_slots(train_templates: Sequence[str]) -> set[str]:
    """The slots a task fills: those of its training templates."""
    return set().union(*(template_slots(t) for t in train_templates))


def check_templates(
    task: str, templates: Sequence[str], train_templates: Sequence[str], where: str = "instruction_templates"
) -> tuple[str, ...]:
    """``templates`` as a tuple, each using exactly the task's slots and fitting the ``task`` observation."""
    if isinstance(templates, str):
        raise SimError(f"{where}: a sequence of templates is needed, not one string ({templates!r}).")
    templates = tuple(t.strip() for t in templates)
    if not templates or not all(templates):
        raise SimError(
            f"{where}: no templates (or an empty one) for {task}; give one template a line, e.g. "
            f"{train_templates[0]!r}."
        )
    want = task_slots(train_templates)
    for t in templates:
        slots = template_slots(t)
        unknown, missing = sorted(slots - want), sorted(want - slots)
        if unknown:
            raise SimError(
                f"{where}: template {t!r} uses unknown slot(s) {['{' + s + '}' for s in unknown]}; "
                f"{task} fills {['{' + s + '}' for s in sorted(want)]}."
            )
        if missing:
            raise SimError(
                f"{where}: template {t!r} lacks slot(s) {['{' + s + '}' for s in missing]}: without them "
                f"the instruction does not say the goal of a {task} episode."
            )
        text = t.format(**{s: SLOT_EXAMPLES.get(s, "x" * 16) for s in slots})
        bad = sorted(set(text) - TEXT_CHARSET)
        if bad:
            raise SimError(
                f"{where}: template {t!r} has character(s) {bad} the task observation cannot hold "
                "(letters, digits, spaces and - , . ' only)."
            )
        if len(text) > MAX_INSTRUCTION_CHARS:
            raise SimError(
                f"{where}: template {t!r} gives instructions up to {len(text)} characters; the limit is "
                f"{MAX_INSTRUCTION_CHARS}."
            )
    return templates


def load_templates(path: str | Path) -> tuple[str, ...]:
    """One template a line; blank lines and lines starting with ``#`` are skipped. An empty file is an error."""
    p = Path(path)
    if not p.is_file():
        raise SimError(f"instruction templates file {p} does not exist.")
    lines = [line.strip() for line in p.read_text(encoding="utf-8").splitlines()]
    templates = tuple(line for line in lines if line and not line.startswith("#"))
    if not templates:
        raise SimError(
            f"instruction templates file {p} is empty: write one template a line, e.g. "
            "'put the {obj} on the {target} target'."
        )
    return templates


def templates_for(
    task: str, train_templates: Sequence[str], instructions: str = "train", custom: Sequence[str] = ()
) -> tuple[str, ...]:
    """The phrasings ``reset`` draws from: ``custom`` if given, else the ``instructions`` set."""
    if instructions not in INSTRUCTION_SETS:
        raise SimError(f"unknown instructions set {instructions!r}; valid: {', '.join(INSTRUCTION_SETS)}.")
    if custom:
        if instructions != "train":
            raise SimError("give either instruction_templates or instructions='heldout', not both.")
        return check_templates(task, custom, train_templates)
    if instructions == "heldout":
        if task not in HELDOUT_TEMPLATES:
            raise SimError(
                f"{task} has no held-out instructions; tasks with them: {', '.join(HELDOUT_TEMPLATES)}."
            )
        return HELDOUT_TEMPLATES[task]
    return tuple(train_templates)
