#!/usr/bin/env bash
# Issue 8, acceptance 2: the three CartPole configs x seeds 0 1 2, all nine runs in parallel
# (one process per run, OMP_NUM_THREADS=1, CPU: CartPole steps on the CPU and the nets are tiny).
# Each run stops at greedy return 500 (EarlyStopping in the config) and writes
#   $OUT_DIR/<config>/seed<k>.jsonl   (one `memrl bench learning` record: return, env steps, wall time)
# then a markdown table of all runs is printed and written to $OUT_DIR/table.md.
#   OUT_DIR=runs/cartpole bash configs/run_cartpole.sh
#   OUT_DIR=runs/cartpole bash configs/run_cartpole.sh cartpole_gru      # a subset of configs
#   EXTRA="--trainer.max_epochs 2" OUT_DIR=/tmp/smoke bash configs/run_cartpole.sh   # smoke test
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${OUT_DIR:-runs/cartpole}
SEEDS=${SEEDS:-"0 1 2"}
configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then configs=(cartpole_gru cartpole_masked_gru infinity_cartpole); fi
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
pids=()
for config in "${configs[@]}"; do
  mkdir -p "$OUT_DIR/$config"
  for seed in $SEEDS; do
    python -m lightning_memrl bench learning --config "configs/${config}.yaml" --seeds "$seed" \
      --root "$OUT_DIR/$config/runs" --out "$OUT_DIR/$config/seed${seed}.jsonl" \
      -- --trainer.accelerator cpu ${EXTRA:-} > "$OUT_DIR/$config/seed${seed}.log" 2>&1 &
    pids+=($!)
  done
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
python - "$OUT_DIR" "${configs[@]}" <<'PY' | tee "$OUT_DIR/table.md"
import json, pathlib, sys
out, configs = pathlib.Path(sys.argv[1]), sys.argv[2:]
print("| config | seed | greedy return | env steps | wall time (s) |")
print("|---|---|---|---|---|")
for config in configs:
    for path in sorted((out / config).glob("seed*.jsonl")):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            print(f"| `configs/{config}.yaml` | {r['seed']} | {r['return_mean']:.1f} | {r['env_steps']:,} | {r['wall_s']:.0f} |")
PY
exit $status
