#!/usr/bin/env bash
# Packs the library, its kernels and the command-line tool, then proves the packages are complete the way a user meets
# them: a small application (tests/PackageConsumer, copied outside the repository) is built from the local package folder
# alone (no project reference) and run, and the tool is installed from that folder into a temporary tool path and run.
# Also checks each package's metadata and contents and that the public API matches its baseline (the build does that).
#   bash tools/package/check.sh [OUTPUT_DIR]     # packages are left in OUTPUT_DIR (default: a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$PWD"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
feed="${1:-$work/feed}"
mkdir -p "$feed"
# A package cache of its own, so the packages restored are the ones packed now, never an older build of the same version.
export NUGET_PACKAGES="$work/nuget-cache"

version="$(dotnet msbuild src/GpuAttention/GpuAttention.csproj -getProperty:Version)"
echo "== packing version $version into $feed"
dotnet pack GpuAttention.sln -c Release -o "$feed" -p:ContinuousIntegrationBuild=true --nologo -v quiet

fail() { echo "package check: $*" >&2; exit 1; }

echo "== metadata and contents"
for id in GpuAttention GpuAttention.Kernels GpuAttention.Tool; do
  nupkg="$feed/$id.$version.nupkg"
  [[ -f $nupkg ]] || fail "$nupkg was not produced"
  [[ -f $feed/$id.$version.snupkg ]] || fail "no symbols package for $id"
  nuspec="$(unzip -p "$nupkg" "$id.nuspec")"
  for field in '<description>' '<license type="expression">MIT</license>' '<readme>README.md</readme>' '<projectUrl>' \
               '<tags>' '<repository type="git"'; do
    grep -qF "$field" <<<"$nuspec" || fail "$id.nuspec lacks $field"
  done
  grep -qE '<repository [^>]*commit="[0-9a-f]{40}"' <<<"$nuspec" || fail "$id.nuspec does not record the commit"
  listing="$(unzip -Z1 "$nupkg")"
  grep -qx 'README.md' <<<"$listing" || fail "$id has no README.md"
  echo "$id $version:"; sed 's/^/    /' <<<"$listing" | grep -vE '_rels|Content_Types|psmdcp|/[a-zA-Z-]+/System.CommandLine.resources.dll$'
done
for id in GpuAttention GpuAttention.Kernels; do
  listing="$(unzip -Z1 "$feed/$id.$version.nupkg")"
  grep -qx "lib/net10.0/$id.dll" <<<"$listing" || fail "$id has no lib/net10.0/$id.dll"
  grep -qx "lib/net10.0/$id.xml" <<<"$listing" || fail "$id has no XML documentation"
  # The sample model belongs to the repository, not to the library packages.
  ! grep -qE 'safetensors|config.json' <<<"$listing" || fail "$id carries model files"
done
unzip -Z1 "$feed/GpuAttention.Tool.$version.nupkg" | grep -qx 'tools/net10.0/any/DotnetToolSettings.xml' \
  || fail "GpuAttention.Tool is not a .NET tool package"

echo "== a consumer application built from the local package folder"
cp -r tests/PackageConsumer "$work/consumer"
# Our packages come from the local folder only (a same-named package elsewhere can never stand in), the rest from nuget.org.
cat > "$work/nuget.config" <<CONFIG
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="gpuattention-local" value="$feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
  </packageSources>
  <packageSourceMapping>
    <packageSource key="gpuattention-local"><package pattern="GpuAttention" /><package pattern="GpuAttention.*" /></packageSource>
    <packageSource key="nuget.org"><package pattern="*" /></packageSource>
  </packageSourceMapping>
</configuration>
CONFIG
dotnet run --project "$work/consumer" -c Release -p:GpuAttentionVersion="$version" -- "$repo/samples/reverse-digits"

echo "== the tool, installed from the local package folder"
dotnet tool install GpuAttention.Tool --version "$version" --tool-path "$work/tools" --configfile "$work/nuget.config"
"$work/tools/gpuattention" devices
"$work/tools/gpuattention" generate --model "$repo/samples/reverse-digits" "3141592"
echo "package check passed: $version"
