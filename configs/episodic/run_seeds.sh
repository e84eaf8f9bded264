#!/usr/bin/env bash
# Learning benchmark of issue 7: episodic agent vs the same agent without episodic memory, 3 seeds.
# Each run writes results.json under runs/episodic/<config>/...; compare val/success_rate.
#   bash configs/episodic/run_seeds.sh [extra memrl fit flags, e.g. --trainer.max_epochs 50]
set -euo pipefail
for config in gru_baseline gru_episodic; do
  for seed in 0 1 2; do
    memrl fit --config "configs/episodic/${config}.yaml" --data.seed "${seed}" \
      --trainer.default_root_dir "runs/episodic/${config}/seed${seed}" "$@"
  done
done
