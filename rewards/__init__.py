"""rewards: labels for recorded episodes (reward, success, preferences) and learned reward models.

- :mod:`ember.rewards.base`: the contract (EpisodeView -> FrameLabels; Segment pairs -> Preference; LabelError).
- :mod:`ember.rewards.label`: ``ember label`` (reads only what a labeler declares, batches, caches by content, writes
  columns additively through ``ember.data.add_columns``, or a preference file); its config and run record are
  :mod:`ember.rewards.label_config`, the two paths :mod:`ember.rewards.label_frames` and
  :mod:`ember.rewards.label_pairs`.
- Labelers: :mod:`ember.rewards.ground_truth` (the simulator's progress/success, with seeded noise),
  :mod:`ember.rewards.clip` (zero-shot CLIP/SigLIP, VLM-RMs projection), :mod:`ember.rewards.vlm_preference` (RL-VLM-F
  preferences from a generative VLM), :mod:`ember.rewards.models` (learned success / Bradley-Terry reward models).
- Helpers: :mod:`ember.rewards.reading` (dataset -> EpisodeView / Segment), :mod:`ember.rewards.cache` (the content cache),
  :mod:`ember.data.preferences` (the preference file format).

See docs/rewards.md. Nothing here is imported by ``ember/``, ``policies/`` or ``vla/``.
"""
