#!/usr/bin/env bash
# GPU timings in one call of at most 8 minutes: install the CUDA build of JAX if the Python in
# use has none, check that JAX sees a GPU, then run benchmarks/bench_gpu.py (the paper-size
# conv-ReLU grid, the CPU-preset grid, the balancedness and diagonal-nets sweeps) and write a
# small JSON of timings.
#
# usage: benchmarks/gpu.sh [--out FILE] [--budget-s S] [--python PY] [--cuda 12|13]
#                          [--wheelhouse DIR] [--dry-run]
#   --out FILE        timings (default: $OUT/gpu.json when OUT is set, else results/gpu.json)
#   --budget-s S      seconds for the benchmarks themselves (default 360; the install and the
#                     checks come on top, so the whole call stays under 8 minutes)
#   --python PY       interpreter (default: .venv/bin/python if present, else python3)
#   --cuda N          CUDA major version of the JAX plugin to install (default 12)
#   --wheelhouse DIR  install from these wheels only (machines without network access)
#   --dry-run         print what would be installed and run, then run the benchmark at toy
#                     sizes on the CPU (no install, no GPU needed): checks this script
set -euo pipefail
cd "$(dirname "$0")/.."

out="" budget=360 python="" cuda=12 wheelhouse="" dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --budget-s) budget="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --cuda) cuda="$2"; shift 2 ;;
    --wheelhouse) wheelhouse="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "gpu.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$cuda" in 12|13) ;; *) echo "gpu.sh: --cuda $cuda: expected 12 or 13" >&2; exit 2 ;; esac
case "$budget" in ''|*[!0-9]*) echo "gpu.sh: --budget-s $budget: expected whole seconds" >&2; exit 2 ;; esac
if [ -z "$python" ]; then
  if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi
if [ -z "$out" ]; then out="${OUT:-results}/gpu.json"; fi
mkdir -p "$(dirname "$out")"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

has_gpu() {
  "$python" -c "import jax, sys; sys.exit(0 if any(d.platform == 'gpu' for d in jax.devices()) else 1)" \
    2>/dev/null
}

jax_version=$("$python" -c "import jax; print(jax.__version__)")
pip_args=(install -q "jax[cuda${cuda}]==${jax_version}")
if [ -n "$wheelhouse" ]; then pip_args+=(--no-index --find-links "$wheelhouse"); fi

if [ "$dry_run" = 1 ]; then
  echo "gpu.sh: python $python, jax $jax_version"
  echo "gpu.sh: would run, if JAX saw no GPU: $python -m pip ${pip_args[*]}"
  echo "gpu.sh: would run: $python benchmarks/bench_gpu.py --out $out --budget-s $budget"
  echo "gpu.sh: dry run: the benchmark at toy sizes on the CPU"
  JAX_PLATFORMS=cpu "$python" benchmarks/bench_gpu.py --out "$out" --budget-s 60 --smoke
  exit $?
fi

if ! has_gpu; then
  echo "gpu.sh: JAX sees no GPU; installing the CUDA $cuda build of jax $jax_version" >&2
  "$python" -m pip "${pip_args[@]}"
fi
if ! has_gpu; then
  echo "gpu.sh: JAX still sees no GPU (nvidia-smi below); nothing was timed" >&2
  nvidia-smi >&2 || true
  exit 3
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2 || true
# The benchmark stops itself within its budget; timeout is the hard stop (its JSON is written
# after every part, so what finished is kept).
timeout --signal=TERM --kill-after=20 $((budget + 60)) \
  "$python" benchmarks/bench_gpu.py --out "$out" --budget-s "$budget"
echo "gpu.sh: wrote $out"
