#!/usr/bin/env bash
# The GPU tables of docs/performance.md, in one run (< 8 minutes on one H100/H200).
#
#   benchmarks/gpu.sh [OUT.md]               # on a GPU machine (default OUT: gpu_tables.md)
#   benchmarks/gpu.sh --cpu-smoke [OUT.md]   # every piece at tiny sizes on CPU (~3 min)
#
# Pieces (each under its own time limit, so one that hangs loses only its table):
#   1. step_overhead.py at depth 2/32/128 (+ its compute-bound 4096x1024 MLP row)
#   2. models.py --models mlp: the compute-bound MLP (width 4096, batch 1024), float32,
#      and bf16 (--amp: raw bf16 and float32 rows, jaxmod's when jaxmod.amp exists);
#      achieved TFLOP/s and fraction of peak
#   3. models.py at GPU sizes: ResNet-50 (224x224, batch 64) and GPT 12x768, block 1024,
#      batch 8, with TFLOP/s from XLA's cost analysis
# Logs of every piece go next to OUT (OUT.log).
set -uo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
if [[ "${1:-}" == "--cpu-smoke" ]]; then
  SMOKE=1
  shift
fi
OUT=${1:-gpu_tables.md}
LOG="$OUT.log"
PY=${PYTHON:-python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [[ $SMOKE == 1 ]]; then
  export JAX_PLATFORMS=cpu
fi

: >"$OUT"
: >"$LOG"
{
  echo "## GPU tables ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
  echo
  if command -v nvidia-smi >/dev/null; then
    echo '```text'
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    echo '```'
  fi
  $PY -c "import jax, jaxmod, platform; print(f'jax {jax.__version__}, jaxmod {jaxmod.__version__}, Python {platform.python_version()}, devices {jax.devices()}')"
  echo
} >>"$OUT" 2>>"$LOG"

# run LIMIT_S TITLE CMD...: runs CMD under a time limit, its stdout into the log; the
# Markdown table it prints (from its first '### ' line on) goes into OUT.
run() {
  local limit=$1 title=$2
  shift 2
  echo "== $title: $*" | tee -a "$LOG"
  local t0=$SECONDS tmp
  tmp=$(mktemp)
  timeout "$limit" "$@" >"$tmp" 2>>"$LOG"
  local rc=$?
  cat "$tmp" >>"$LOG"
  if [[ $rc == 0 ]]; then
    { echo "#### $title"; echo; sed -n '/^### /,$p' "$tmp" | grep -v '^total '; echo; } >>"$OUT"
  else
    { echo "#### $title"; echo; echo "(failed or timed out after $((SECONDS - t0)) s, rc $rc: see $LOG)"; echo; } >>"$OUT"
  fi
  echo "   $((SECONDS - t0)) s, rc $rc" | tee -a "$LOG"
  rm -f "$tmp"
}

HAS_AMP=$($PY -c "import jaxmod; print(int(hasattr(jaxmod, 'amp')))" 2>/dev/null || echo 0)
if [[ $HAS_AMP == 1 ]]; then
  AMP_NOTE="jaxmod through jaxmod.amp"
else
  AMP_NOTE="jaxmod.amp does not exist yet: raw bf16 and raw float32 rows only"
fi

if [[ $SMOKE == 1 ]]; then
  run 120 "step overhead (smoke)" $PY benchmarks/step_overhead.py --depths 2 --rounds 2 \
    --first-reps 1 --no-peers --no-compute-bound
  run 120 "compute-bound MLP, float32 (smoke)" $PY benchmarks/models.py --tiny --models mlp \
    --rounds 2 --peak-tflops 1
  run 120 "compute-bound MLP, bf16 (smoke; $AMP_NOTE)" $PY benchmarks/models.py --tiny \
    --models mlp --rounds 2 --amp --peak-tflops 1 --no-torch
  run 300 "models (smoke)" $PY benchmarks/models.py --tiny --models cnn,gpt --rounds 1
else
  run 120 "step overhead" $PY benchmarks/step_overhead.py --depths 2 32 128 --rounds 20 \
    --first-reps 2
  run 45 "compute-bound MLP, float32" $PY benchmarks/models.py --gpu-sizes --models mlp \
    --rounds 20
  run 45 "compute-bound MLP, bf16 ($AMP_NOTE)" $PY benchmarks/models.py --gpu-sizes \
    --models mlp --rounds 20 --amp
  run 150 "ResNet-50, batch 64, 224x224" $PY benchmarks/models.py --gpu-sizes \
    --models resnet50 --rounds 10
  run 100 "GPT 12x768, block 1024, batch 8" $PY benchmarks/models.py --gpu-sizes \
    --models gpt --rounds 10
fi
echo "wrote $OUT (log: $LOG)"
