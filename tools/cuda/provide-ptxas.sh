#!/usr/bin/env bash
# Provides NVIDIA's PTX assembler (ptxas) and SASS dumpers (cuobjdump, nvdisasm) without a GPU or a CUDA install:
# Debian trixie's non-free nvidia-cuda-toolkit (CUDA 12.4: PTX ISA <= 8.4, sm_80 and sm_90) is downloaded through a
# private apt configuration — its own sources list, lists and cache directories; the machine's apt setup is untouched —
# and only those three binaries are unpacked into a cache directory. They need nothing beyond libc, libm and pthread.
# Only the first run downloads (~90 MB); later runs reuse the cache.
#
# Usage:
#   ptxas_env="$(bash tools/cuda/provide-ptxas.sh --env)"; eval "$ptxas_env"   # in scripts (see README.md)
#   bash tools/cuda/provide-ptxas.sh [--refetch]                                # provide, then print the export lines
#
# Environment (all optional):
#   PTXAS_CACHE_ROOT     cache root (default: $HOME/.cache/gpuattention/cuda-ptxas-12.4)
#   PTXAS_DEBIAN_MIRROR  Debian archive URL (default: the deb.debian.org-style URI of this machine's apt sources)
#
# Stdout carries only `export ...` lines (so it can be eval'd); everything else goes to stderr. Any failure exits
# non-zero, and in --env mode makes the eval'ing shell fail too.
set -euo pipefail

readonly RECIPE_REV=1
readonly SUITE=trixie
readonly PACKAGE=nvidia-cuda-toolkit
readonly CUDA_SERIES=12.4
readonly TOOLS=(ptxas cuobjdump nvdisasm)

MODE=print
REFETCH=0
for arg in "$@"; do
  case "$arg" in
    --env) MODE=env ;;
    --refetch) REFETCH=1 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "provide-ptxas.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

exec 3>&1 1>&2
on_exit() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "provide-ptxas.sh: FAILED with exit code $rc" >&2
    [[ "$MODE" == env ]] && echo "echo 'provide-ptxas.sh failed; ptxas environment NOT set' >&2; return $rc 2>/dev/null || exit $rc" >&3
  fi
  # An if, not `[[ … ]] && rm`: a false test as the handler's last command would turn a successful exit into 1 under set -e.
  if [[ -n "${WORK:-}" && -d "${WORK:-}" ]]; then rm -rf "$WORK"; fi
}
trap on_exit EXIT
log() { echo "[provide-ptxas] $*" >&2; }
die() { echo "[provide-ptxas] ERROR: $*" >&2; exit 1; }

CACHE_ROOT="${PTXAS_CACHE_ROOT:-${HOME:-/root}/.cache/gpuattention/cuda-ptxas-${CUDA_SERIES}}"
BIN="$CACHE_ROOT/bin"
STAMP="$CACHE_ROOT/.provide-ptxas.stamp"
STAMP_KEY="package=${PACKAGE} suite=${SUITE} series=${CUDA_SERIES} recipe=${RECIPE_REV} arch=$(uname -m)"

emit_env() {
  {
    printf 'export GPUATTENTION_PTXAS=%q\n' "$BIN/ptxas"
    printf 'export GPUATTENTION_CUOBJDUMP=%q\n' "$BIN/cuobjdump"
    printf 'export GPUATTENTION_NVDISASM=%q\n' "$BIN/nvdisasm"
  } >&3
}

check_tools() {
  local tool
  for tool in "${TOOLS[@]}"; do
    [[ -x "$BIN/$tool" ]] || die "$BIN/$tool is missing"
  done
  local version
  version="$("$BIN/ptxas" --version)" || die "$BIN/ptxas does not run"
  [[ "$version" == *"release ${CUDA_SERIES},"* ]] || die "$BIN/ptxas is not CUDA ${CUDA_SERIES}: $version"
}

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"
flock 9

if [[ $REFETCH -eq 0 && -f "$STAMP" && "$(head -n1 "$STAMP")" == "$STAMP_KEY" ]]; then
  check_tools
  log "using cached $(sed -n 2p "$STAMP") in $BIN"
  emit_env
  exit 0
fi

detect_mirror() {
  local uri
  uri="$( { grep -hs '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}';
            grep -hs '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
              | sed -E 's/\[[^]]*\]//' | awk '{print $2}'; } \
          | grep -E '^https?://[^ ]+/debian/?$' | head -n1 || true)"
  echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR="${PTXAS_DEBIAN_MIRROR:-$(detect_mirror)}"
MIRROR="${MIRROR%/}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -f "$KEYRING" ]] || die "$KEYRING missing (package debian-archive-keyring)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/provide-ptxas.XXXXXX")"
chmod 755 "$WORK"
APTDIR="$WORK/apt"
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$WORK/deb" "$WORK/unpacked"
echo "deb [signed-by=$KEYRING] $MIRROR $SUITE main contrib non-free" >"$APTDIR/sources.list"
APT_PRIVATE=(-o "Dir::Etc::SourceList=$APTDIR/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
             -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache"
             -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=/dev/null")
log "fetching the signed '$SUITE' package index from $MIRROR (private apt configuration)"
apt-get -q "${APT_PRIVATE[@]}" update >"$WORK/apt.log" 2>&1 || { tail -n 40 "$WORK/apt.log" >&2; die "apt-get update failed"; }
VERSION="$(apt-cache "${APT_PRIVATE[@]}" show "$PACKAGE" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n1)"
[[ "$VERSION" == "${CUDA_SERIES}."* ]] || die "$SUITE's $PACKAGE is '${VERSION:-absent}', expected ${CUDA_SERIES}.x; update this script deliberately"
log "downloading $PACKAGE $VERSION (apt checks it against the signed index)"
if id _apt >/dev/null 2>&1; then chown _apt "$WORK/deb" 2>/dev/null || true; fi
(cd "$WORK/deb" && apt-get -q "${APT_PRIVATE[@]}" download "$PACKAGE=$VERSION" >>"$WORK/apt.log" 2>&1) \
  || { tail -n 40 "$WORK/apt.log" >&2; die "apt-get download $PACKAGE failed"; }
DEB="$(ls "$WORK"/deb/*.deb | head -n1)"
dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$WORK/unpacked" $(printf './usr/bin/%s ' "${TOOLS[@]}") \
  || die "could not unpack ${TOOLS[*]} from $DEB"
rm -rf "$BIN"
mkdir -p "$BIN"
for tool in "${TOOLS[@]}"; do
  install -m 755 "$WORK/unpacked/usr/bin/$tool" "$BIN/$tool"
done
check_tools
printf '%s\n%s %s (Debian %s non-free), fetched %s\n' "$STAMP_KEY" "$PACKAGE" "$VERSION" "$SUITE" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$STAMP.tmp"
mv "$STAMP.tmp" "$STAMP"
log "installed ${TOOLS[*]} of $PACKAGE $VERSION in $BIN"
emit_env
