#!/usr/bin/env bash
# GPU check for a lent CUDA machine (torch + CUDA, transformers, no trl, no vLLM, no network): installs the wheels
# scripts/gpu_wheels.sh put in .whl/ (offline), then runs, each step under its own timeout so one hung step cannot
# use up the machine: goodhart doctor, the lab world's default run on CUDA (the world built there), a 16 × 65,536
# lab pool sampled and scored on CUDA, 200 RLOO steps against the run's weakest proxy, and the lab sampling
# benchmark. Each step's exit status and wall time go to $OUT/gpu_times.txt (OUT defaults to ./gpu_out).
#
#     bash scripts/gpu_wheels.sh                 # here, once: .whl/ (~30 MB)
#     bash benchmarks/gpu_check.sh               # there: the device tool with carry [.whl]
#     bash benchmarks/gpu_check.sh --dry-run     # any CPU: the same steps on lab-tiny at test size (fast tier)
#
# vLLM is used for the pool when it is importable there, else the fast engine on CUDA. Not run by CI on a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
OUT="${OUT:-gpu_out}"
mkdir -p "$OUT"
TIMES="$OUT/gpu_times.txt"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 GOODHART_CACHE="${GOODHART_CACHE:-$OUT/cache}"
: > "$TIMES"
PY="${PYTHON:-python3}"

if [ -d .whl ] && ! "$PY" -c "import pydantic, vaderSentiment" 2>/dev/null; then  # the image lacks them
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/goodhart-site .whl/*.whl
    export PYTHONPATH="/tmp/goodhart-site${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! "$PY" -c "import importlib.metadata as m; m.version('goodhart')" 2>/dev/null; then  # goodhart from this tree
    "$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e . || exit 1
fi

step() {  # step NAME SECONDS COMMAND...: run it, record exit status and wall time, keep its log
    local name=$1 limit=$2
    shift 2
    local start end rc
    start=$(date +%s.%N)
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    end=$(date +%s.%N)
    printf '%-24s rc=%-3s %8.1f s\n' "$name" "$rc" "$(awk "BEGIN {print $end - $start}")" | tee -a "$TIMES"
    tail -n 3 "$OUT/$name.log" | sed 's/^/    /' >> "$TIMES"
}

GH=("$PY" -m goodhart.cli)
if [ "$DRY" = 1 ]; then  # the same commands at test size on the CPU
    WORLD=lab-tiny DEVICE=cpu POOL_K=256 RL_STEPS=2 BENCH=(--world lab-tiny --skip-smollm2 --pool-prompts 2 --pool-k 64 --rl-steps 1)
    RUN=(--set data.train_prompts=24 --set data.eval_prompts=4 --set data.eval_samples_per_prompt=64 \
         --set rm.max_pairs=256 --set "family_pairs=[64]")
    LIMIT=300
else
    WORLD=lab DEVICE=cuda POOL_K=65536 RL_STEPS=200 BENCH=(--skip-smollm2) RUN=() LIMIT=420
fi
ENGINE=fast
"$PY" -c "import vllm" 2>/dev/null && [ "$DRY" = 0 ] && ENGINE=vllm

{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi";
  "$PY" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__)"
  echo "world $WORLD, device $DEVICE, pool engine $ENGINE"; } >> "$TIMES" 2>&1
step doctor 120 "${GH[@]}" doctor
step default_run "$LIMIT" "${GH[@]}" run --world "$WORLD" --set device="$DEVICE" "${RUN[@]}" --out "$OUT/run" --overwrite
step pool "$LIMIT" "${GH[@]}" run --world "$WORLD" --set device="$DEVICE" "${RUN[@]}" --set sampling.engine="$ENGINE" \
    --set data.eval_prompts=16 --set data.eval_samples_per_prompt="$POOL_K" --set "family_pairs=[]" \
    --set bon.bootstrap=50 --out "$OUT/pool" --overwrite
WEAK=$(ls -d "$OUT"/run/proxy_rm_* 2>/dev/null | head -n 1)
step rloo "$LIMIT" "${GH[@]}" policy train --world "$WORLD" --set device="$DEVICE" --set reward_model="${WEAK:-$OUT/run/proxy_rm}" \
    --set method=rloo --set steps="$RL_STEPS" --set eval_every="$RL_STEPS" --out "$OUT/rloo" --overwrite
step sampling_benchmark "$LIMIT" "$PY" benchmarks/lab_world.py "${BENCH[@]}"
echo "times in $TIMES"
! grep -v "^doctor" "$TIMES" | grep -q "rc=[1-9]"  # doctor reports what the image lacks (trl, the SmolLM2 wheels): not a failure
