"""Preference files of the preference labelers (``ember label --labeler=<preference labeler>``).

The format (JSON Lines, or one JSON list with ``a`` / ``b`` spans for ``ember train-reward``), its reader and its
writer live in :mod:`ember.data.preferences`, the one place every reader uses (reward models here, preference
alignment in ``ember.policies.align.pairs``); the names stay importable from here, where docs/rewards.md points
users of the labelers.
"""

from __future__ import annotations

from ember.data.preferences import (
    LABEL_OF,
    PreferenceRecord,
    as_pair_row,
    read_preferences,
    write_preferences,
)

__all__ = ["LABEL_OF", "PreferenceRecord", "as_pair_row", "read_preferences", "write_preferences"]
