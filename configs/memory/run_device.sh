#!/usr/bin/env bash
# Issue 6, acceptance 3, in one ~9-minute parallel batch for a 16-core machine with one GPU:
#   - associative_recall medium and copy_memory medium: bare GRU vs GRU + memory, same env-step budget;
#   - delayed_cue horizon 200 / 8 cues: GRU + KV / Ring memory without a curriculum, and KV with one,
#     each stopping once greedy success reaches 0.95 (results.json then holds the env steps it took).
# Every run is one background process with OMP_NUM_THREADS=1, writing <OUT_DIR>/<task>/<model>/seed<k>/
# (logs, checkpoints, results.json, and for delayed_cue curriculum.json with the success every 5 iterations).
# The memory runs default to the GPU (attention over 256 stored steps is cheap there), the bare GRU to the
# CPU; every run also stops at MAX_TIME, so a run cut short shows fewer env steps in the table.
#   bash configs/memory/run_device.sh                       # everything, then the summary table
#   SEEDS=0 PAIR_EPOCHS=1 CUE_EPOCHS=5 MEM_ACCEL=cpu OUT_DIR=/tmp/mini \
#     EXTRA="--data.num_envs 8 --data.minibatch_size 512 --data.eval_envs 16 --data.eval_episodes 16" \
#     bash configs/memory/run_device.sh                     # miniature
set -uo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT_DIR=${OUT_DIR:-runs/memory/device}
SEEDS=${SEEDS:-"0 1 2"}
PAIR_EPOCHS=${PAIR_EPOCHS:-100}     # x 16,384 = 1.64M env steps for every associative_recall / copy_memory run
CUE_EPOCHS=${CUE_EPOCHS:-400}       # x 16,384 = 6.6M env steps at most for delayed_cue (stops at 0.95)
MAX_TIME=${MAX_TIME:-00:00:07:15}   # wall-clock stop of every run (DD:HH:MM:SS)
GRU_ACCEL=${GRU_ACCEL:-cpu}       # skip: no bare-GRU arm
MEM_ACCEL=${MEM_ACCEL:-gpu}
PAIR_TASKS=${PAIR_TASKS-"associative_recall_medium copy_memory_medium"}
PAIR_MEMORIES=${PAIR_MEMORIES-"kv ring"}
RECALL_EXTRA_MEMORIES=${RECALL_EXTRA_MEMORIES-"miras"}  # associative memory: associative_recall only
CUE_RUNS=${CUE_RUNS-"kv ring kv+curriculum"}
read -r -a GPU_IDS <<< "${GPUS:-}"  # e.g. GPUS="0 1": runs take these GPUs in turn (default: every run on the first)
launched=0

launch() {  # launch <task config> <model name or none> <accelerator> <epochs> <seed> [extra config]
  local task=$1 model=$2 accel=$3 epochs=$4 seed=$5 extra=${6:-}
  local name=$model${extra:++curriculum}
  local dir="$OUT_DIR/$task/$name/seed$seed"
  local args=(--config "configs/memory/$task.yaml")
  [ "$model" != none ] && args+=(--config "configs/memory/models/$model.yaml")
  [ -n "$extra" ] && args+=(--config "$extra")
  mkdir -p "$dir"
  local gpu_env=()
  [ "${#GPU_IDS[@]}" -gt 0 ] && gpu_env=(env CUDA_VISIBLE_DEVICES="${GPU_IDS[launched % ${#GPU_IDS[@]}]}")
  launched=$((launched + 1))
  "${gpu_env[@]}" python -m lightning_memrl fit "${args[@]}" --data.seed "$seed" --trainer.max_epochs "$epochs" \
    --trainer.max_time "$MAX_TIME" --trainer.accelerator "$accel" --trainer.enable_progress_bar false \
    --trainer.default_root_dir "$dir" ${EXTRA:-} > "$dir/fit.log" 2>&1 &
}

for seed in $SEEDS; do
  for task in $PAIR_TASKS; do
    [ "$GRU_ACCEL" != skip ] && launch "$task" none "$GRU_ACCEL" "$PAIR_EPOCHS" "$seed"
    memories=$PAIR_MEMORIES
    [ "$task" = associative_recall_medium ] && memories="$memories $RECALL_EXTRA_MEMORIES"
    for model in $memories; do launch "$task" "$model" "$MEM_ACCEL" "$PAIR_EPOCHS" "$seed"; done
  done
  for run in $CUE_RUNS; do
    case $run in
      *+curriculum) launch delayed_cue_h200 "${run%+curriculum}" "$MEM_ACCEL" "$CUE_EPOCHS" "$seed" configs/memory/curriculum.yaml ;;
      *) launch delayed_cue_h200 "$run" "$MEM_ACCEL" "$CUE_EPOCHS" "$seed" ;;
    esac
  done
done
echo "run_device.sh: $(jobs -p | wc -l) runs started at $(date -u +%H:%M:%S) UTC, writing $OUT_DIR"
wait
echo "run_device.sh: all runs ended at $(date -u +%H:%M:%S) UTC"
grep -l -E "Error|Traceback" "$OUT_DIR"/*/*/seed*/fit.log 2>/dev/null | sed 's/^/failed (see log): /'
python configs/memory/summarize.py "$OUT_DIR"
