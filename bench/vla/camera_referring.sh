#!/usr/bin/env bash
# PickPlace from joints + front/wrist cameras + the instruction (issue #31), the goal decoded by REFERRING
# KEYPOINTS: per goal entity (the named cube, the named pad) the instruction's words (attention over MiniLM's
# contextual tokens, conditioning.language_tokens) become a query, its match with every pixel of the front
# camera's feature map one heat map, and the heat map's expected image point, through a small MLP, the entity's
# x-y-z (policies/referring_keypoints.py). The simulator's state is a TRAINING-ONLY target: every dim of
# observation.environment_state is masked, the flow head acts on the decoded goal as state (the true one while
# training). The checkpoint's inputs at run time are observation.state + the two cameras + the task string.
#   [EPISODES=200] [SIZE=64] [DATASET=...] bash bench/vla/camera_referring.sh [STEPS] [OUT]
# Resumable: rerunning with the same OUT continues training from OUT/train/checkpoints/last (ember train --resume).
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS="${1:-6000}"
OUT="${2:-outputs/bench_vla/camera_referring}"
SIZE="${SIZE:-64}"
DATASET="${DATASET:-$OUT/dataset}"
EMBER=.venv/bin/ember
export MUJOCO_GL=egl HF_HUB_OFFLINE=1
if [ ! -f "$DATASET/meta/info.json" ]; then
  $EMBER collect --task=PickPlace --num_episodes="${EPISODES:-200}" --obs_mode=pixels --cameras=front,wrist --image_size="$SIZE" \
    --seed=0 --out="$DATASET" --executor=process --num_workers=2
fi
$EMBER train --dataset="$DATASET" --out="$OUT/train" --policy.type=flow --steps="$STEPS" --batch_size=64 \
  --resume=true --save_every=1000 \
  --obs_keys=observation.state,observation.environment_state,observation.images.front,observation.images.wrist \
  --policy.n_obs_steps=1 --policy.encoder.vision_backbone=small_cnn --policy.encoder.crop_shape=null \
  --policy.conditioning.kinds=language --policy.conditioning.language_film=true --policy.conditioning.language_tokens=true \
  --mask_state_names='ee.*,gripper_closure,object_*,pad_*,goal_*' \
  --hidden_state_names='goal_object.*,goal_pad.*' \
  --policy.hidden_state_weight=1.0 --policy.conditioning_as_state=true \
  --policy.hidden_state_decoder=referring_keypoints --policy.hidden_state_camera=front ${TRAIN_ARGS:-}
for split in train heldout; do
  $EMBER eval --task=PickPlace --policy_path="$OUT/train" --num_episodes=50 --seed=100000 --batch_size=25 \
    --instructions="$split" --num_videos=3 --out="$OUT/eval_$split" --overwrite=true
done
