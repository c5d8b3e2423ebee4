#!/usr/bin/env bash
# GPU check (issue 16 §3), prepared for a CUDA machine: installs the [vllm] extra, runs the sentiment default
# run with precision bf16 and sampling.engine=vllm, a 16 × 4,096 Best-of-n pool, and benchmarks/sampling.py,
# and writes each step's wall time (and the tail of its output) to $OUT/gpu_times.txt (default ./gpu_out).
#
#     bash benchmarks/gpu_check.sh            # from the repo root, after the README install line
#
# Each step runs under `timeout` so one hung step cannot use up a lent machine; a failed step is recorded
# and the script goes on. Nothing here is run by CI (no GPU there).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_out}"
mkdir -p "$OUT"
TIMES="$OUT/gpu_times.txt"
export HF_HUB_OFFLINE=1 GOODHART_CACHE="${GOODHART_CACHE:-$OUT/cache}"
: > "$TIMES"

step() {  # step NAME SECONDS COMMAND...: run it, record wall time and exit status
    local name=$1 limit=$2
    shift 2
    local start end rc
    start=$(date +%s.%N)
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    end=$(date +%s.%N)
    printf '%-28s rc=%-3s %8.1f s\n' "$name" "$rc" "$(awk "BEGIN {print $end - $start}")" | tee -a "$TIMES"
    tail -n 3 "$OUT/$name.log" | sed 's/^/    /' >> "$TIMES"
}

{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } >> "$TIMES" 2>&1
step install_vllm 900 pip install -e ".[vllm]"
step doctor 120 goodhart doctor
step default_run_bf16_vllm 1200 goodhart run --set precision=bf16 --set sampling.engine=vllm --out "$OUT/run" --overwrite
step pool_16x4096_vllm 1800 goodhart run --set precision=bf16 --set sampling.engine=vllm \
    --set data.eval_prompts=16 --set data.eval_samples_per_prompt=4096 --set bon.bootstrap=200 \
    --out "$OUT/pool4096" --overwrite
step sampling_benchmark 1200 python benchmarks/sampling.py --prompts 4 --k 512
echo "times in $TIMES"
