"""A learned success / progress model (RoboFuME-style reward classifier) and its labeler ``success_model``.

RoboFuME fine-tunes a VLM as a success classifier on labelled frames and uses its probability as the reward. Here
the same idea at the scale that trains on a CPU: :class:`~rewards.models.network.FrameRewardNet` (ember's policy
image encoder per camera, trained from scratch, + the frozen MiniLM instruction embedding) with two heads per frame:

- success logit, trained with binary cross-entropy on a boolean column (``sim.success``: is the task done in the
  state this frame shows; or LeRobot's ``next.success``);
- progress in [0, 1] (a sigmoid), trained by regression (MSE) on ``sim.progress``.

The labeler writes ``reward`` = predicted progress (``--labeler.reward=progress``, the default) or the success
probability (``--labeler.reward=success``), and ``success`` = the success probability.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from ember.rewards.base import EpisodeView, FrameLabels, LabelerConfig, LabelError
from ember.rewards.models.network import RewardModel, RewardModelLabeler


class SuccessModel(RewardModel):
    """Outputs (B, 2): success logit, progress logit."""

    model_type = "success"

    def init_success_rate(self, rate: float) -> None:
        """Start the success logit at the data's base rate (RetinaNet's prior initialisation): with ~1% success
        frames the first steps otherwise spend the BCE gradient pushing every feature toward "never", which
        stalled the shared encoder (and the progress head with it) for hundreds of steps."""
        rate = float(min(max(rate, 1e-4), 1 - 1e-4))
        with torch.no_grad():
            self.net.heads[0][-1].bias.fill_(float(np.log(rate / (1 - rate))))

    def loss(
        self,
        images: Mapping[str, Tensor],
        language: Tensor,
        success: Tensor,
        progress: Tensor | None,
        progress_weight: float = 1.0,
        pos_weight: float | None = None,
    ) -> dict[str, Tensor]:
        out = self.raw(images, language)
        weight = None if pos_weight is None else torch.as_tensor(pos_weight, device=out.device)
        bce = F.binary_cross_entropy_with_logits(out[:, 0], success.float(), pos_weight=weight)
        losses = {"success_loss": bce}
        total = bce
        if progress is not None:
            mse = F.mse_loss(torch.sigmoid(out[:, 1]), progress.float())
            losses["progress_loss"] = mse
            total = total + progress_weight * mse
        losses["loss"] = total
        return losses

    @torch.no_grad()
    def predict(
        self, images: Mapping[str, np.ndarray], instruction: str, batch_size: int = 256
    ) -> tuple[np.ndarray, np.ndarray]:
        """(success probability (T,), progress (T,)) for one episode's uint8 frames per camera."""
        out = self.predict_episode(images, instruction, batch_size)
        p = torch.sigmoid(out.float()).cpu().numpy()
        return p[:, 0].astype(np.float32), p[:, 1].astype(np.float32)


@dataclass
class SuccessModelLabelerConfig(LabelerConfig):
    type: str = "success_model"
    path: str = ""
    """Folder written by ``ember train-reward --kind=success`` (its run folder or its ``model/``)."""
    reward: str = "progress"
    """What the reward column holds: ``progress`` (predicted progress) or ``success`` (success probability)."""
    batch_size: int = 256
    device: str = "cpu"


class SuccessModelLabeler(RewardModelLabeler):
    """``--labeler=success_model --labeler.path=DIR``: reads only the cameras the model was trained on and the
    instruction."""

    config_class = SuccessModelLabelerConfig
    needs_instruction = True
    what = "the success model"

    def __init__(self, config: SuccessModelLabelerConfig | None = None) -> None:
        config = config or SuccessModelLabelerConfig()
        super().__init__(config)
        if config.reward not in ("progress", "success"):
            raise LabelError(f"--labeler.reward must be 'progress' or 'success', got {config.reward!r}")
        self._load(SuccessModel, config.path, config.device)

    def label(self, episode: EpisodeView) -> FrameLabels:
        instruction = self.instruction(episode)
        success, progress = self.model.predict(episode.images, instruction, self.config.batch_size)
        reward = progress if self.config.reward == "progress" else success
        return FrameLabels(reward=reward, success=success)
