#!/usr/bin/env bash
# Learning benchmark of issue 6 (acceptance 3): every memory config x 3 seeds on delayed_cue medium.
# Each run is ~13M env steps (GPU recommended). Results land in runs/memory/<config>/seed<k>/.../results.json.
#   bash configs/memory/run_learning.sh                # all configs
#   bash configs/memory/run_learning.sh kv miras       # a subset (names after delayed_cue_)
#   EXTRA="--trainer.max_epochs 2 --data.num_envs 16 --data.minibatch_size 1024" bash configs/memory/run_learning.sh kv  # smoke
set -euo pipefail
cd "$(dirname "$0")/../.."
names=("$@")
if [ ${#names[@]} -eq 0 ]; then names=(gru kv ring pseudo_mode pmm slot miras); fi
for name in "${names[@]}"; do
  for seed in 0 1 2; do
    memrl fit --config "configs/memory/delayed_cue_${name}.yaml" --data.seed "$seed" \
      --trainer.default_root_dir "runs/memory/delayed_cue_${name}/seed${seed}" ${EXTRA:-}
  done
done
