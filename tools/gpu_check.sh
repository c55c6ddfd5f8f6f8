#!/usr/bin/env bash
# GPU acceptance check for the TensorRT half of srdeploy. Run on a machine with an NVIDIA GPU, its
# driver and TensorRT 10 or 11 (pip install 'srdeploy[tensorrt-cu12]' or '[tensorrt-cu13]' by the driver's
# CUDA major, see the README; no CUDA build of torch is needed: Polygraphy loads the CUDA runtime itself):
#
#   tools/gpu_check.sh            # builds into builds/gpu_check (GPU_CHECK_OUT to change)
#
# For each default recipe (recipes/int8_edsr_x4.yaml, and recipes/int4_adabm.yaml when present):
# build with tensorrt.required=true, lint every trt graph, compare each engine with the plan
# (precision and 2:4 per conv) and its output with ONNX Runtime on the same graph (Polygraphy's
# Comparator: PSNR >= 30 dB and SNR >= 20 dB on every batch), run `srdeploy validate`; then
# `pytest -m gpu`. Prints one summary table. Exit 0 when everything passed, 1 when a step failed,
# 2 when this machine cannot run the check (no nvidia-smi/GPU, no tensorrt, no CUDA device for it).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
OUT=${GPU_CHECK_OUT:-builds/gpu_check}

cannot() {
  echo "gpu_check: cannot run here: $1" >&2
  echo "gpu_check: $2" >&2
  exit 2
}

command -v nvidia-smi >/dev/null 2>&1 ||
  cannot "nvidia-smi not found (no NVIDIA driver on this machine)" "run it on a machine with an NVIDIA GPU"
nvidia-smi -L >/dev/null 2>&1 ||
  cannot "nvidia-smi lists no GPU: $(nvidia-smi -L 2>&1 | head -n 1)" "check the NVIDIA driver and the GPU"
"$PY" -c "import tensorrt" >/dev/null 2>&1 ||
  cannot "tensorrt is not importable with $PY" "pip install 'srdeploy[tensorrt-cu12]' or '[tensorrt-cu13]' (README: TensorRT)"
WHY=$("$PY" -c "from srdeploy.backends.tensorrt import capabilities as c; k = c(); print('' if k.available else k.reason)" 2>&1)
[ -z "$WHY" ] || cannot "$WHY" "see the reason above (srdeploy.backends.tensorrt.capabilities)"

mkdir -p "$OUT/logs"
ROWS=()
FAILED=0

step() {  # step NAME COMMAND...: run, log to $OUT/logs/NAME.log, record PASS/FAIL and seconds
  local name=$1 log start status
  shift
  log="$OUT/logs/${name//[^A-Za-z0-9_.-]/_}.log"
  start=$(date +%s)
  if "$@" >"$log" 2>&1; then status=PASS; else status=FAIL; FAILED=1; fi
  ROWS+=("$name|$status|$(($(date +%s) - start))s|$log")
  echo "gpu_check: $name: $status"
}

lint_folder() {  # every trt graph of a build folder passes lint_trt (warnings allowed)
  "$PY" - "$1" <<'PY'
import sys
from pathlib import Path
from srdeploy.passes.lint_trt import lint_trt_main
graphs = sorted((Path(sys.argv[1]) / "trt").glob("*.onnx"))
if not graphs:
    sys.exit(f"no trt graph under {sys.argv[1]}/trt")
sys.exit(max(lint_trt_main(g) for g in graphs))
PY
}

check_engines() {  # each engine: built as planned, and its output agrees with ONNX Runtime
  "$PY" - "$1" <<'PY'
import json
import sys
from pathlib import Path
import numpy as np
from srdeploy.backends.comparator import compare_runners
from srdeploy.backends.ort import OrtRunner
from srdeploy.backends.tensorrt import TrtRunner, inspect_engine
from srdeploy.backends.trt_config import file_sha256, read_engine_metadata
from srdeploy.backends.trt_report import compare_engine_to_plan, summarize
from srdeploy.quant.plan_io import load_plan

root = Path(sys.argv[1])
plan = load_plan(root / "plan.json")
engines = sorted(root.rglob("*.plan"))
if not engines:
    sys.exit(f"no TensorRT engine (*.plan) under {root}: tensorrt.required=true should have built one")
onnx_by_sha = {file_sha256(p): p for p in root.rglob("*.onnx")}
bad = 0
for engine in engines:
    meta = read_engine_metadata(engine) or {}
    rows = compare_engine_to_plan(inspect_engine(engine), plan, meta.get("sparsity"))
    summary = summarize(rows)
    print(engine, json.dumps(summary))
    for r in rows:
        print(f"  [{r['status']}] {r['text']}")
    bad += not summary["ok"]
    source = onnx_by_sha.get(meta.get("onnx_sha256", ""))
    if source is None:
        print(f"  no ONNX with the engine's onnx_sha256 in {root}: output check skipped")
        bad += 1
        continue
    lo, opt = meta["profiles"][0]["min"], meta["profiles"][0]["opt"]
    h, w = max(lo[2], min(opt[2], 64)), max(lo[3], min(opt[3], 48))
    rng = np.random.default_rng(0)
    batches = [rng.random((1, 3, h, w), dtype=np.float32) for _ in range(3)]
    with TrtRunner(engine) as runner:
        agreement = compare_runners(OrtRunner(source, name="onnxruntime"), runner, batches, psnr_db=30.0, snr_db=20.0)
        latency = runner.latency(batches[0])
    print(f"  {agreement.text()} ({source.name}, {h}x{w}); {latency.median_ms:.2f} ms median host time")
    bad += not agreement.passed
sys.exit(1 if bad else 0)
PY
}

RECIPES=(recipes/int8_edsr_x4.yaml)
[ -f recipes/int4_adabm.yaml ] && RECIPES+=(recipes/int4_adabm.yaml)
for recipe in "${RECIPES[@]}"; do
  name=$(basename "$recipe" .yaml)
  folder="$OUT/$name"
  rm -rf "$folder"
  step "build:$name" "$PY" -m srdeploy.cli build --recipe "$recipe" --set tensorrt.required=true --out "$folder"
  if [ -d "$folder" ]; then
    step "lint-trt:$name" lint_folder "$folder"
    step "engine:$name" check_engines "$folder"
    step "validate:$name" "$PY" -m srdeploy.cli validate "$folder"
  fi
done
step "pytest -m gpu" "$PY" -m pytest -m gpu -q -rs

echo
echo "GPU: $(nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader | head -n 1)"
echo "TensorRT: $("$PY" -c 'import tensorrt; print(tensorrt.__version__)')"
printf '%-32s %-6s %7s  %s\n' STEP RESULT TIME LOG
for row in "${ROWS[@]}"; do
  IFS='|' read -r name status secs log <<<"$row"
  printf '%-32s %-6s %7s  %s\n' "$name" "$status" "$secs" "$log"
done
if [ "$FAILED" -ne 0 ]; then
  echo "gpu_check: FAILED (see the logs above)"
  exit 1
fi
echo "gpu_check: all passed"
