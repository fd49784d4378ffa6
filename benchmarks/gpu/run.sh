#!/usr/bin/env bash
# The GPU path in one go: the GPU-marked tests, then benchmarks/gpu/bench.py (CLIP ViT-B/32
# training step, polymodal vs open_clip, bf16, eager and torch.compile; encode throughput).
#
#   bash benchmarks/gpu/run.sh              # on a CUDA machine; budgeted at 7.5 min (--budget)
#   bash benchmarks/gpu/run.sh --dry-run    # CPU, tiny sizes, seconds (CI runs this)
#
#   --out PATH     result JSON (default benchmarks/gpu/result.json; a dry run writes to a temp
#                  folder instead, so it never overwrites a GPU result)
#   --budget S     seconds for the whole script (default 450); compiled runs share what is left
#   --skip-tests   benchmark only
#   other flags (--no-compile, --compile, --compile-cap S, --batch N, --steps N) go to bench.py
#
# Python: $PYTHON, else .venv/bin/python, else python3; src/ goes on PYTHONPATH when
# polymodal is not installed (a GPU machine may run the tree as it is, without a venv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

start=$(date +%s)
dry=0
out=""
budget=450
skip_tests=0
bench_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1; bench_args+=("$1") ;;
    --out) out="$2"; shift ;;
    --out=*) out="${1#--out=}" ;;
    --budget) budget="$2"; shift ;;
    --skip-tests) skip_tests=1 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) bench_args+=("$1") ;;
  esac
  shift
done

if [ -n "${PYTHON:-}" ]; then
  py=$PYTHON
elif [ -x .venv/bin/python ]; then
  py=.venv/bin/python
else
  py=python3
fi
# find_spec does not import polymodal (and torch with it): this check costs milliseconds
if ! "$py" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("polymodal") is None)'; then
  export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ -z "$out" ]; then
  if [ "$dry" = 1 ]; then out="${TMPDIR:-/tmp}/polymodal-gpu-dry-run/result.json"; else out=benchmarks/gpu/result.json; fi
fi

tests_rc=0
if [ "$dry" = 1 ]; then
  echo "dry run: GPU tests not run (without CUDA they skip)"
elif [ "$skip_tests" = 1 ]; then
  echo "--skip-tests: GPU tests not run"
else
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  echo "GPU tests: $py -m pytest -q -m gpu tests/gpu"
  # a failing test must not cost the benchmark figures: record it, report it, exit non-zero at the end
  set +e
  timeout 300 "$py" -m pytest -q -m gpu tests/gpu 2>&1 | tee "$log"
  tests_rc=${PIPESTATUS[0]}
  set -e
  bench_args+=(--tests-rc "$tests_rc" --tests-log "$log")
fi

left=$((budget - ($(date +%s) - start)))
set +e
"$py" benchmarks/gpu/bench.py "${bench_args[@]}" --budget-s "$left" --out "$out"
bench_rc=$?
set -e
# bench.py: 0 written, 3 written with failed measurements (recorded in it), else nothing written
if [ "$bench_rc" = 0 ] || [ "$bench_rc" = 3 ]; then echo "results written to $out"; fi
if [ "$tests_rc" != 0 ]; then
  echo "GPU tests failed (exit $tests_rc); see above" >&2
  exit "$tests_rc"
fi
exit "$bench_rc"
