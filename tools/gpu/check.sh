#!/usr/bin/env bash
# The GPU check: the one command to run first on a machine with an NVIDIA GPU, no .NET SDK and no network (the device
# tool's machine: CUDA 13 driver, python3 with PyTorch). It runs the self-contained bundle that tools/gpu/pack.sh builds
# and writes everything under the output folder, in four steps, each under its own time limit (9 minutes at most, under
# the device tool's 10 a command):
#   1. smoke    list the devices, then create the CUDA accelerator and launch one kernel (checked against the reference):
#               the first risk is ILGPU 1.5.3 on a CUDA 13 driver, and its failure is printed at once
#   2. tests    the test suite's cases on the device (GPUATTENTION_REQUIRE_DEVICES names it, so a missing device fails)
#   3. compare  ours and PyTorch on the same GPU and the same inputs (tools/gpu/torch_compare.py, TF32 off): the tiled
#               matmul, bf16 and f16 matmul (tensor cores, 1024³–8192³), fused and unfused attention at d 64, the encoder
#               layer, a BERT encoder of all-MiniLM-L6-v2's configuration with random weights against transformers'
#               BertModel (fp32 and bf16; 1 × 16, 32 × 128, 32 × 128 padded); speed ratio, difference, scratch memory
#   4. bench    every benchmark case on the device, with its check, time and device memory
# A failing step does not stop the later ones; summary.md lists each step's exit code and time.
#
# Usage, from the project root, after `bash tools/gpu/pack.sh` (device tool: carry [".device"]):
#   bash tools/gpu/check.sh                     # on the GPU machine; results in $OUT (or .device/gpu-check-out)
#   PYTHON=/usr/bin/python3 bash tools/gpu/check.sh --stand-in
#       the rehearsal: ILGPU's CPU accelerator stands in for CUDA and PyTorch runs on the CPU, at small sizes, to prove
#       every path and file here (PYTHON: a python3 with PyTorch, when the first on PATH has none)
set -uo pipefail
cd "$(dirname "$0")/../.."

STAND_IN=0
for arg in "$@"; do
  case "$arg" in
    --stand-in) STAND_IN=1 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check.sh: unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

readonly ARCHIVE=.device/gpu-check.tar.xz
# The Python with PyTorch (on the GPU machine the first python3; here Debian's, /usr/bin/python3).
PYTHON="${PYTHON:-python3}"
OUT_DIR="${OUT:-$PWD/.device/gpu-check-out}"
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
[[ -f "$ARCHIVE" ]] || { echo "check.sh: $ARCHIVE is missing: run 'bash tools/gpu/pack.sh' first and carry .device" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
tar xJf "$ARCHIVE" -C "$WORK"
BUNDLE="$WORK/gpu-check"
APP="$BUNDLE/app"

if [[ $STAND_IN -eq 1 ]]; then
  DEVICE=cpu-accelerator; TORCH_DEVICE=cpu; SECONDS_PER_CASE=0.02
  SMOKE_FILTER=(--filter "matmul tiled 64x64x64")
  # bf16 only among the 16-bit cases: PyTorch 1.13's CPU has no f16 matmul.
  COMPARE_FILTER=(--filter "matmul tiled 64x64x64" --filter "matmul tiled linear" --filter "matmul bf16 64x64x64"
                  --filter "matmul bf16 linear" --filter "attention fused d64 B1 H2 L64 " --filter "attention fused causal d64 B1 H2 L64 "
                  --filter "attention unfused d64 B1 H2 L64 " --filter "attention unfused causal d64 B1 H2 L64 "
                  --filter "attention bf16 fused d64 B1 H2 L64 " --filter "attention bf16 fused causal d64 B1 H2 L64 "
                  --filter "encoder layer" --filter "bert encoder")
  BENCH_FILTER=(--filter "64x64x64" --filter "L64 " --filter "softmax unmasked B1 H2 L64" --filter "layer norm plain 256x256")
else
  DEVICE=cuda; TORCH_DEVICE=cuda; SECONDS_PER_CASE=0.25
  SMOKE_FILTER=(--filter "matmul tiled 256x256x256")
  # fp32 attention at B2 H8 (fused and unfused); 16-bit attention at B4 H16 L1024 only, whose saved operands stay ~130 MB
  # a case (L4096 and L16384 are timed in step 4).
  COMPARE_FILTER=(--filter "matmul tiled" --filter "matmul bf16" --filter "matmul f16" --filter "fused d64 B2 H8"
                  --filter "fused causal d64 B2 H8" --filter "fused d64 B4 H16 L1024 " --filter "fused causal d64 B4 H16 L1024 "
                  --filter "fused d128 B4 H16 L1024 " --filter "fused causal d128 B4 H16 L1024 " --filter "encoder layer"
                  --filter "bert encoder")
  BENCH_FILTER=()
fi

SUMMARY="$OUT_DIR/summary.md"
{
  echo "# GPU check — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo '```'
  cat "$BUNDLE/BUNDLE"
  echo "device: $DEVICE$([[ $STAND_IN -eq 1 ]] && echo ' (stand-in rehearsal: no GPU involved)')"
  (nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none")
  "$PYTHON" -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1
  echo '```'
  echo
  echo "| step | exit code | seconds |"
  echo "| --- | ---: | ---: |"
} > "$SUMMARY"
cat "$SUMMARY"

# run_step NAME LIMIT_SECONDS COMMAND...: runs it with its output shown and kept in NAME.log, and adds a row to the summary.
failures=0
run_step() {
  local name=$1 limit=$2; shift 2
  echo; echo "=== $name (limit ${limit} s): $*"
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT_DIR/$name.log"
  local rc=${PIPESTATUS[0]}
  local took=$((SECONDS - start))
  [[ $rc -eq 124 || $rc -eq 137 ]] && echo "=== $name: stopped at its limit of ${limit} s"
  echo "=== $name: exit code $rc after ${took} s"
  echo "| $name | $rc$([[ $rc -eq 124 || $rc -eq 137 ]] && echo ' (time limit)') | $took |" >> "$SUMMARY"
  [[ $rc -eq 0 ]] || failures=$((failures + 1))
}

CLI="$APP/GpuAttention.Cli"

# 1. One accelerator, one kernel, before anything costs time.
run_step smoke-devices 30 "$CLI" devices
run_step smoke-kernel 60 "$CLI" bench --device "$DEVICE" --seconds 0.05 "${SMOKE_FILTER[@]}"

# 2. The suite's cases on the device: the theories whose device argument is this device, plus the check that it is present.
run_step tests 150 env GPUATTENTION_REQUIRE_DEVICES="$DEVICE" "$APP/GpuAttention.Tests" -noColor -noLogo -preEnumerateTheories \
  -displayName "*\"$DEVICE\"*" -displayName "*EveryRequiredDeviceKindIsPresent*" -result-xml "$OUT_DIR/tests.xml"

# 3. Ours and PyTorch on the same inputs. The operands stay in the work folder: only the tables come back.
run_step compare-ours 90 "$CLI" bench --device "$DEVICE" --seconds "$SECONDS_PER_CASE" "${COMPARE_FILTER[@]}" \
  --save "$WORK/compare" --with-tensors
mkdir -p "$OUT_DIR/compare"
cp "$WORK/compare/results.json" "$OUT_DIR/compare/ours.json" 2>/dev/null
run_step compare-pytorch 90 "$PYTHON" "$BUNDLE/torch_compare.py" --results "$WORK/compare/results.json" --out "$OUT_DIR/compare" \
  --device "$TORCH_DEVICE" --seconds "$SECONDS_PER_CASE"

# 4. Every case, ours only.
run_step bench 120 "$CLI" bench --device "$DEVICE" --seconds "$SECONDS_PER_CASE" "${BENCH_FILTER[@]}" --save "$OUT_DIR/bench"

echo; cat "$SUMMARY"
[[ -f "$OUT_DIR/compare/comparison.md" ]] && { echo; cat "$OUT_DIR/compare/comparison.md"; }
echo; echo "Results: $OUT_DIR"
exit $((failures > 0))
