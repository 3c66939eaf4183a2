#!/usr/bin/env bash
# PickPlace from joints + front/wrist cameras + the instruction, with the simulator's state as a TRAINING-ONLY
# target (issue #31, "Learning by Cheating" in one network): every dim of observation.environment_state is
# masked (config.training_only_keys), the encoder decodes the end effector and the named cube's and pad's
# positions from the cameras and the instruction (hidden-state loss, language FiLM on the camera features), and
# the flow head acts on the decoded goal as state (conditioning_as_state; the true one while training).
# The checkpoint's inputs at run time are observation.state + the two cameras + the task string.
#   [EPISODES=200] [SIZE=64] bash bench/vla/camera_goal_decoder.sh [STEPS] [OUT]   (writes OUT/{dataset,train,eval_*})
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS="${1:-3000}"
OUT="${2:-outputs/bench_vla/camera_goal_decoder}"
SIZE="${SIZE:-64}"
EMBER=.venv/bin/ember
export MUJOCO_GL=egl HF_HUB_OFFLINE=1
if [ ! -f "$OUT/dataset/meta/info.json" ]; then
  $EMBER collect --task=PickPlace --num_episodes="${EPISODES:-200}" --obs_mode=pixels --cameras=front,wrist --image_size="$SIZE" \
    --seed=0 --out="$OUT/dataset" --executor=process --num_workers=2
fi
$EMBER train --dataset="$OUT/dataset" --out="$OUT/train" --policy.type=flow --steps="$STEPS" --batch_size=64 \
  --obs_keys=observation.state,observation.environment_state,observation.images.front,observation.images.wrist \
  --policy.n_obs_steps=1 --policy.encoder.vision_backbone=small_cnn --policy.encoder.crop_shape="[$((SIZE - 8)),$((SIZE - 8))]" \
  --policy.conditioning.kinds=language --policy.conditioning.language_film=true \
  --mask_state_names='ee.*,gripper_closure,object_*,pad_*,goal_*' \
  --hidden_state_names='ee.*,gripper_closure,goal_object.*,goal_pad.*' \
  --policy.hidden_state_weight=1.0 --policy.conditioning_as_state=true ${TRAIN_ARGS:-}
for split in train heldout; do
  $EMBER eval --task=PickPlace --policy_path="$OUT/train" --num_episodes=50 --seed=100000 --batch_size=25 \
    --instructions="$split" --num_videos=3 --out="$OUT/eval_$split" --overwrite=true
done
