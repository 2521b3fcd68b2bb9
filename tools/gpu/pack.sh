#!/usr/bin/env bash
# Builds, here, everything the GPU check needs on a machine with no .NET SDK and no network: the CLI and the test suite
# (an xunit v3 executable) published self-contained for linux-x64 into one folder, with the scripts that run there and
# the commit they came from, packed as .device/gpu-check.tar.xz (git-ignored; the device tool carries up to 64 MiB).
#
# Usage, from the project root:
#   bash tools/gpu/pack.sh
# then on the GPU machine (the device tool's run, carry [".device"]), see tools/gpu/check.sh:
#   bash tools/gpu/check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

readonly BUNDLE=.device/gpu-check
readonly ARCHIVE=.device/gpu-check.tar.xz
readonly LIMIT_MIB=60

rm -rf "$BUNDLE" "$ARCHIVE"
mkdir -p "$BUNDLE/app"
for project in src/GpuAttention.Cli tests/GpuAttention.Tests; do
  echo "[pack] publishing $project (self-contained, linux-x64)"
  # Both apps share one folder and one runtime: each app host reads its own .deps.json and .runtimeconfig.json.
  # No PDBs in the bundle, so no sources embedded in them either (Directory.Build.props embeds them for packages).
  dotnet publish "$project" -c Release -r linux-x64 --self-contained true \
    -p:InvariantGlobalization=true -p:DebugType=none -p:EmbedAllSources=false -o "$BUNDLE/app" >".device/publish.log" 2>&1 \
    || { grep -E "error|Error" .device/publish.log >&2; echo "[pack] ERROR: publishing $project failed" >&2; exit 1; }
done
for required in GpuAttention.Cli GpuAttention.Tests fixtures samples; do
  [[ -e "$BUNDLE/app/$required" ]] || { echo "[pack] ERROR: $BUNDLE/app/$required is missing after publishing" >&2; exit 1; }
done
cp tools/gpu/check.sh tools/gpu/torch_compare.py "$BUNDLE/"
{
  echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!.device' || echo ' (with uncommitted changes)')"
  echo "packed: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "dotnet: $(dotnet --version)"
} > "$BUNDLE/BUNDLE"
tar cJf "$ARCHIVE" -C .device gpu-check
rm -rf "$BUNDLE"
size=$(du -m "$ARCHIVE" | cut -f1)
echo "[pack] $ARCHIVE: ${size} MiB"
[[ "$size" -lt "$LIMIT_MIB" ]] || { echo "[pack] ERROR: too large to carry (limit ${LIMIT_MIB} MiB of the device tool's 64)" >&2; exit 1; }
