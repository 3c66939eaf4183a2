"""The language planner: a small causal LM mapping (instruction, text scene summary) to the next language motion.

``model`` loads the LM and scores motions, ``data`` builds SFT examples and correction preferences from an ember
dataset's language columns, ``train`` runs TRL's SFTTrainer then DPOTrainer. See docs/alignment.md.
"""
