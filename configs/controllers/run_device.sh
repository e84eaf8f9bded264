#!/usr/bin/env bash
# Issue 5, acceptance 4, as one parallel batch on a GPU machine: every controller x task x seed at once,
# each run one background `memrl fit` (one CPU thread) on the GPUs in turn, all stopped at MAX_TIME, then the
# table of configs/memory/summarize.py (final success, and the env steps at which 0.95 was first reached at
# the full horizon, from each run's curriculum.json). SEQUENTIAL=1 runs the grid one run at a time instead
# (all threads, each run to its own budget unless MAX_TIME is set).
#   GPUS="0 1" bash configs/controllers/run_device.sh                          # everything
#   SEQUENTIAL=1 CONTROLLERS="mamba2 transformer" TASKS=delayed_cue_h1000 bash configs/controllers/run_device.sh
#   TASKS=delayed_cue_h200 SEEDS=0 CONTROLLERS="gru mamba2" bash configs/controllers/run_device.sh
#   MAX_TIME=00:00:00:30 ACCEL=cpu OUT_DIR=/tmp/mini EXTRA="--data.num_envs 8 --data.minibatch_size 512 \
#     --data.eval_envs 8 --data.eval_episodes 8" TASKS=delayed_cue_h200 SEEDS=0 bash configs/controllers/run_device.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
SEQUENTIAL=${SEQUENTIAL:-0}
if [ "$SEQUENTIAL" = 1 ]; then
  MAX_TIME=${MAX_TIME:-null}
else
  export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
  MAX_TIME=${MAX_TIME:-00:00:09:00}
fi
OUT_DIR=${OUT_DIR:-runs/controllers/device}
ACCEL=${ACCEL:-gpu}
read -r -a gpu_ids <<< "${GPUS:-0}"
read -r -a tasks <<< "${TASKS:-delayed_cue_h200 delayed_cue_h1000 associative_recall_medium}"
read -r -a controllers <<< "${CONTROLLERS:-gru mamba2 transformer pseudo_mamba hybrid_mamba_attention cyborg_hybrid cyborg_fusion}"
read -r -a seeds <<< "${SEEDS:-0 1 2}"
launched=0
for task in "${tasks[@]}"; do
  for name in "${controllers[@]}"; do
    for seed in "${seeds[@]}"; do
      dir="$OUT_DIR/$task/$name/seed$seed"
      mkdir -p "$dir"
      CUDA_VISIBLE_DEVICES="${gpu_ids[launched % ${#gpu_ids[@]}]}" python -m lightning_memrl fit \
        --config "configs/controllers/$task.yaml" --config "configs/controllers/models/$name.yaml" \
        --data.seed "$seed" --trainer.accelerator "$ACCEL" --trainer.max_time "$MAX_TIME" \
        --trainer.enable_progress_bar false --trainer.default_root_dir "$dir" ${EXTRA:-} > "$dir/fit.log" 2>&1 &
      launched=$((launched + 1))
      [ "$SEQUENTIAL" = 1 ] && wait
    done
  done
done
echo "run_device.sh: $launched runs launched by $(date -u +%H:%M:%S) UTC, writing $OUT_DIR"
wait
grep -l -E "Error|Traceback" "$OUT_DIR"/*/*/seed*/fit.log 2>/dev/null | sed 's/^/failed (see log): /'
python configs/memory/summarize.py "$OUT_DIR"
