#!/usr/bin/env bash
# Learning benchmark of issue 5 (acceptance 4): every controller x 3 tasks x 3 seeds.
# Each run is up to ~20-40M env steps: run on a GPU. Results: runs/controllers/<task>/<controller>/seed<k>/.../results.json
#   bash configs/controllers/run_learning.sh                              # everything
#   TASKS="delayed_cue_h1000" bash configs/controllers/run_learning.sh mamba2 transformer
#   EXTRA="--trainer.max_epochs 2 --data.num_envs 16 --data.minibatch_size 1024" bash configs/controllers/run_learning.sh gru  # smoke
set -euo pipefail
cd "$(dirname "$0")/../.."
controllers=("$@")
if [ ${#controllers[@]} -eq 0 ]; then
  controllers=(gru mamba2 transformer pseudo_mamba hybrid_mamba_attention cyborg_hybrid cyborg_fusion)
fi
read -r -a tasks <<< "${TASKS:-delayed_cue_h200 delayed_cue_h1000 associative_recall_medium}"
for task in "${tasks[@]}"; do
  for name in "${controllers[@]}"; do
    for seed in 0 1 2; do
      memrl fit --config "configs/controllers/${task}.yaml" --config "configs/controllers/models/${name}.yaml" \
        --data.seed "$seed" --trainer.default_root_dir "runs/controllers/${task}/${name}/seed${seed}" ${EXTRA:-}
    done
  done
done
