"""rewards: labels for recorded episodes (reward, success, preferences) and learned reward models.

- :mod:`rewards.base`: the contract (EpisodeView -> FrameLabels; Segment pairs -> Preference; LabelError).
- :mod:`rewards.label`: ``ember label`` (reads only what a labeler declares, batches, caches by content, writes
  columns additively through ``ember.data.add_columns``, or a preference file).
- Labelers: :mod:`rewards.ground_truth` (the simulator's progress/success, with seeded noise),
  :mod:`rewards.clip` (zero-shot CLIP/SigLIP, VLM-RMs projection), :mod:`rewards.vlm_preference` (RL-VLM-F
  preferences from a generative VLM), :mod:`rewards.models` (learned success / Bradley-Terry reward models).
- Helpers: :mod:`rewards.reading` (dataset -> EpisodeView / Segment), :mod:`rewards.cache` (the content cache),
  :mod:`rewards.preferences` (the preference file format).

See docs/rewards.md. Nothing here is imported by ``ember/``, ``policies/`` or ``vla/``.
"""
