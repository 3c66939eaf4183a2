"""Learned reward models: a success/progress classifier (RoboFuME-style) and a Bradley-Terry reward model.

Both read only camera frames and the instruction, are saved like policies (``config.json`` + ``model.safetensors``)
and are labelers of ``ember label`` (``--labeler=success_model`` / ``--labeler=bradley_terry`` with
``--labeler.path=<folder>``); ``ember train-reward`` trains them (:mod:`ember.rewards.models.train`).
"""

from ember.rewards.models.bradley_terry import BradleyTerryLabeler, BradleyTerryModel, bradley_terry_loss
from ember.rewards.models.network import RewardModel, RewardModelConfig
from ember.rewards.models.success import SuccessModel, SuccessModelLabeler

__all__ = [
    "BradleyTerryLabeler",
    "BradleyTerryModel",
    "RewardModel",
    "RewardModelConfig",
    "SuccessModel",
    "SuccessModelLabeler",
    "bradley_terry_loss",
]
