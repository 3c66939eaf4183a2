"""Offline RL for ember policies: IQL and robust IQL as ``ember train --algorithm=iql|riql``, critics over action
chunks, and V-GPS (``--policy.type=vgps``), value-guided selection among chunks sampled from any chunk policy.

Registered through the ``ember.algorithms`` / ``ember.policies`` entry points; nothing here is imported by
``policies/`` or ``ember/``. See docs/offline-rl.md.
"""
