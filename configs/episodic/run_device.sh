#!/usr/bin/env bash
# Learning benchmark of issue 7 on the 16-core GPU machine: the agent without episodic memory (baseline),
# with a global one (episodic: a read sees every env's earlier entries) and with an episode-scoped one
# (episodic_scoped: only its own episode's) on associative_recall (horizon 19), seeds 0 1 2, all nine runs
# at once (one process each, one CPU thread each), then a markdown table. Each run trains a fixed env-step
# budget (max_epochs in the configs); TRAINER_MAX_TIME is only a guard so the whole script ends in time.
#   RESULTS_TO=$OUT/episodic bash configs/episodic/run_device.sh    # on the device: tables + logs to $OUT
#   OUT_DIR=/tmp/mini ARMS=episodic_scoped SEEDS=0 bash configs/episodic/run_device.sh --trainer.max_epochs 2  # one run
# Extra arguments go to every `memrl fit`. Runs live in $OUT_DIR (default runs/episodic/device):
# <arm>/seed<k>/log.txt and results.json below it; RESULTS_TO gets a copy of everything but checkpoints.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT_DIR:-runs/episodic/device}"
read -r -a seeds <<< "${SEEDS:-0 1 2}"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
pids=()
read -r -a arms <<< "${ARMS:-baseline episodic episodic_scoped}"
for arm in "${arms[@]}"; do
  for seed in "${seeds[@]}"; do
    dir="$out/$arm/seed$seed"
    mkdir -p "$dir"
    python -m lightning_memrl fit --config "configs/episodic/assoc_gru_${arm}.yaml" \
      --data.seed "$seed" --trainer.default_root_dir "$dir" \
      --trainer.max_time "${TRAINER_MAX_TIME:-00:00:06:40}" "$@" > "$dir/log.txt" 2>&1 &
    pids+=("$!")
  done
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
python configs/episodic/summarise.py "$out" | tee "$out/table.md"
if [ -n "${RESULTS_TO:-}" ]; then
  mkdir -p "$RESULTS_TO"
  (cd "$out" && find . -type f \( -name results.json -o -name log.txt -o -name config.yaml -o -name table.md \
    -o -name 'events.out.tfevents.*' \) -exec cp --parents {} "$RESULTS_TO" \;)
fi
exit "$status"
