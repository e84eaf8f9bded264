#!/usr/bin/env bash
# Acceptance 3 of issue 4 on a GPU: env-only throughput of all nine tasks at 65,536 envs, every
# difficulty, with the ATen ops and host reads (device syncs) per step. The runs share one GPU, so
# they run one after another (in parallel they would time each other). Writes one JSON per difficulty.
#   OUT_DIR=runs/bench_envs_gpu bash configs/benchmarks/run_envs_gpu.sh [extra memrl bench envs flags]
set -euo pipefail
out="${OUT_DIR:-runs/bench_envs_gpu}"
mkdir -p "${out}"
export OMP_NUM_THREADS=1
# first the tasks' GPU tests (oracle success 1.0 and chance level on CUDA)
python -m pytest -q -m gpu tests/envs | tee "${out}/gpu_tests.txt" || echo "GPU tests FAILED: see ${out}/gpu_tests.txt"
for difficulty in easy medium hard extreme; do
  python -m lightning_memrl bench envs --device cuda --num-envs 65536 --difficulty "${difficulty}" \
    --threads 1 --count-ops --json "${out}/envs_${difficulty}.json" "$@" | tee "${out}/envs_${difficulty}.txt"
done
