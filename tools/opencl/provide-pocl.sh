#!/usr/bin/env bash
# Provides an OpenCL CPU device (PoCL 6.0) for ILGPU 1.5.3 on Debian 12 (bookworm).
#
# Debian 12's own pocl (3.1) is rejected by ILGPU's OpenCL backend ("GenericAddressSpace feature is
# not supported"), so this script builds PoCL 6.0 from Debian trixie's *source* package (fetched with
# `apt-get source` through a private apt configuration; the machine's own apt sources are untouched)
# against Debian 12's LLVM 16, installs it into a cache directory and prints the environment that makes
# the OpenCL ICD loader see only this PoCL.  Only the first run builds; later runs reuse the install.
#
# Usage:
#   pocl_env="$(bash tools/opencl/provide-pocl.sh --env)"; eval "$pocl_env"   # in scripts (see README.md)
#   source tools/opencl/provide-pocl.sh                  # same, in the current shell
#   bash tools/opencl/provide-pocl.sh [--rebuild]        # provide, then print the export lines
#
# Environment (all optional):
#   POCL_CACHE_ROOT      cache root; install prefix is $POCL_CACHE_ROOT/install
#                        (default: $HOME/.cache/gpuattention/pocl-6.0)
#   POCL_CACHE_DIR       PoCL kernel cache (default: ${TMPDIR:-/tmp}/gpuattention-pocl-kcache-$UID)
#   POCL_BUILD_JOBS      ninja -j value    (default: 2)
#   POCL_DEBIAN_MIRROR   Debian archive URL for the trixie source package
#                        (default: the deb.debian.org-style URI found in this machine's apt sources)
#   POCL_KEEP_BUILD=1    keep the temporary build directory
#
# Stdout carries only `export ...` lines (so it can be eval'd); everything else goes to stderr.
# Any failure exits non-zero with the relevant log on stderr.

# --- When sourced: run as a child process and eval its output in the caller's shell. ---------------
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
  __pocl_env="$(bash "${BASH_SOURCE[0]}" --env)" || {
    echo "provide-pocl.sh: FAILED (see messages above)" >&2
    unset __pocl_env
    return 1
  }
  eval "$__pocl_env"
  unset __pocl_env
  return 0
fi

set -euo pipefail

# Revision of this recipe: bump it whenever the build recipe below changes, so cached installs are redone.
readonly RECIPE_REV=1
readonly POCL_SERIES=6.0            # accept any 6.0.x from trixie
readonly LLVM_MAJOR=16
readonly SOURCE_SUITE=trixie

MODE=print
REBUILD=0
for arg in "$@"; do
  case "$arg" in
    --env) MODE=env ;;
    --rebuild) REBUILD=1 ;;
    -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "provide-pocl.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

# Stdout is reserved for the export lines (fd 3); all other output goes to stderr.
exec 3>&1 1>&2

# If anything fails in --env mode, make the eval'ing shell fail too: `eval "$(cmd)"` ignores cmd's exit
# status, so emit a line that aborts the caller (exit in a script; return if eval'd inside a function).
on_exit() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "provide-pocl.sh: FAILED with exit code $rc" >&2
    if [[ "$MODE" == env ]]; then
      echo "echo 'provide-pocl.sh failed; OpenCL (PoCL) environment NOT set' >&2; return $rc 2>/dev/null || exit $rc" >&3
    fi
  fi
  if [[ -n "${WORK:-}" && -d "${WORK:-}" && "${POCL_KEEP_BUILD:-0}" != 1 && $rc -eq 0 ]]; then
    rm -rf "$WORK"
  fi
}
trap on_exit EXIT

log() { echo "[provide-pocl] $*" >&2; }
die() { echo "[provide-pocl] ERROR: $*" >&2; exit 1; }

# Runs "$@" with output to a log file; on failure shows the log tail and fails.
run_logged() {
  local logfile="$1"; shift
  if ! "$@" >>"$logfile" 2>&1; then
    echo "[provide-pocl] ERROR: command failed: $*" >&2
    echo "----- last 150 lines of $logfile -----" >&2
    tail -n 150 "$logfile" >&2 || true
    echo "----- end of $logfile -----" >&2
    return 1
  fi
}

CACHE_ROOT="${POCL_CACHE_ROOT:-${HOME:-/root}/.cache/gpuattention/pocl-${POCL_SERIES}}"
PREFIX="$CACHE_ROOT/install"
STAMP="$PREFIX/.provide-pocl.stamp"
VENDORS_DIR="$PREFIX/etc/OpenCL/vendors"
KCACHE_DIR="${POCL_CACHE_DIR:-${TMPDIR:-/tmp}/gpuattention-pocl-kcache-$(id -u)}"
JOBS="${POCL_BUILD_JOBS:-2}"
STAMP_KEY="pocl-series=${POCL_SERIES} llvm=${LLVM_MAJOR} source=debian-${SOURCE_SUITE} recipe=${RECIPE_REV} arch=$(uname -m)"

# --- Packages ------------------------------------------------------------------------------------------
# Needed at run time by libpocl: LLVM/Clang 16 shared libs and clang's resource dir; /usr/bin/ld plus
# gcc's crtbegin.o/libgcc (libpocl links every compiled kernel into a .so with them); the ICD loader and
# the unversioned libOpenCL.so that ILGPU's P/Invoke opens (ocl-icd-opencl-dev).  Then the build deps.
RUNTIME_PKGS=(libllvm16 libclang-cpp16 libclang-common-16-dev gcc binutils libc6-dev ocl-icd-libopencl1 ocl-icd-opencl-dev clinfo)
BUILD_PKGS=(llvm-16-dev clang-16 libclang-16-dev libclang-cpp16-dev ocl-icd-opencl-dev ocl-icd-dev
            cmake ninja-build pkg-config dpkg-dev xz-utils gcc g++ make)

missing_pkgs() {
  local p status
  for p in "$@"; do
    status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)"
    [[ "$status" == "ii"* ]] || echo "$p"
  done
}

ensure_pkgs() {
  local -a missing
  mapfile -t missing < <(missing_pkgs "$@" | sort -u)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "installing from Debian 12 apt: ${missing[*]}"
  local -a sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo; install as root: ${missing[*]}"
    sudo=(sudo)
  fi
  local aptlog; aptlog="$(mktemp "${TMPDIR:-/tmp}/provide-pocl-apt.XXXXXX.log")"
  local -a install=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q
                    --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}")
  if ! "${install[@]}" >"$aptlog" 2>&1; then
    log "apt-get install failed; running apt-get update and retrying"
    run_logged "$aptlog" "${sudo[@]}" apt-get update -q
    run_logged "$aptlog" "${install[@]}"
  fi
  rm -f "$aptlog"
  local -a still; mapfile -t still < <(missing_pkgs "$@")
  [[ ${#still[@]} -eq 0 ]] || die "packages still missing after apt-get install: ${still[*]}"
}

# --- ICD registration + environment ----------------------------------------------------------------------
write_icd() {
  local lib="$PREFIX/lib/libpocl.so"
  [[ -e "$lib" ]] || lib="$(ls "$PREFIX"/lib/libpocl.so* 2>/dev/null | head -n1 || true)"
  [[ -n "$lib" && -e "$lib" ]] || die "libpocl.so not found under $PREFIX/lib"
  mkdir -p "$VENDORS_DIR"
  # The vendors dir must contain only pocl.icd (OCL_ICD_VENDORS points at it).
  find "$VENDORS_DIR" -mindepth 1 -maxdepth 1 ! -name pocl.icd -exec rm -rf {} +
  if [[ "$(cat "$VENDORS_DIR/pocl.icd" 2>/dev/null || true)" != "$lib" ]]; then
    printf '%s\n' "$lib" >"$VENDORS_DIR/pocl.icd"
  fi
}

emit_env() {
  mkdir -p "$KCACHE_DIR"
  [[ -w "$KCACHE_DIR" ]] || die "POCL_CACHE_DIR $KCACHE_DIR is not writable"
  {
    printf 'export OCL_ICD_VENDORS=%q\n' "$VENDORS_DIR"
    printf 'export POCL_CACHE_DIR=%q\n' "$KCACHE_DIR"
    printf 'export POCL_DEVICES=cpu\n'
    # ILGPU 1.5.3's OpenCL backend keeps the dynamic shared-memory pointer in a program-scope variable
    # (one for all work-groups); PoCL runs work-groups concurrently on its threads, each with its own local
    # memory, so they overwrite each other's pointer. One PoCL thread runs the work-groups one at a time.
    printf 'export POCL_MAX_PTHREAD_COUNT=1\n'
    # PoCL's default work-group method (loopvec) miscompiled the fused attention kernel when several
    # work-items share a query row (NaN); continuation-based barriers (cbs) compile it correctly.
    printf 'export POCL_WORK_GROUP_METHOD=cbs\n'
    printf 'export GPUATTENTION_POCL_PREFIX=%q\n' "$PREFIX"
  } >&3
}

# Quick functional check: the ICD loader, restricted to our vendors dir, must see the PoCL CPU device.
check_device() {
  local out
  if ! out="$(OCL_ICD_VENDORS="$VENDORS_DIR" POCL_CACHE_DIR="$KCACHE_DIR" POCL_DEVICES=cpu clinfo -l 2>&1)"; then
    echo "$out" >&2; die "clinfo failed with the PoCL environment"
  fi
  grep -q 'Portable Computing Language' <<<"$out" || { echo "$out" >&2; die "clinfo does not list the PoCL platform"; }
  log "$(tr '\n' ' ' <<<"$out")"
}

# --- Fast path: cached install ----------------------------------------------------------------------------
ensure_pkgs "${RUNTIME_PKGS[@]}"
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"
flock 9   # serialise concurrent runs sharing the cache

if [[ $REBUILD -eq 0 && -f "$STAMP" && "$(head -n1 "$STAMP")" == "$STAMP_KEY" ]]; then
  write_icd
  check_device
  log "using cached PoCL: $(sed -n 2p "$STAMP" | cut -d, -f1) in $PREFIX"
  emit_env
  exit 0
fi

# --- Slow path: fetch trixie source, build, install -------------------------------------------------------
T0=$SECONDS
log "no usable cached install at $PREFIX; building PoCL ${POCL_SERIES} from Debian ${SOURCE_SUITE} source (a few minutes)"
ensure_pkgs "${BUILD_PKGS[@]}"
[[ -x /usr/bin/llvm-config-${LLVM_MAJOR} ]] || die "/usr/bin/llvm-config-${LLVM_MAJOR} missing"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/provide-pocl.XXXXXX")"
chmod 755 "$WORK"
BUILDLOG="$WORK/build.log"
: >"$BUILDLOG"

# Mirror: reuse the host of this machine's Debian apt sources (deb822 or one-line format).
detect_mirror() {
  local uri
  uri="$( { grep -hs '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}';
            grep -hs '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
              | sed -E 's/\[[^]]*\]//' | awk '{print $2}'; } \
          | grep -E '^https?://[^ ]+/debian/?$' | head -n1 || true)"
  echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR="${POCL_DEBIAN_MIRROR:-$(detect_mirror)}"
MIRROR="${MIRROR%/}"

KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -f /usr/share/keyrings/debian-archive-trixie-stable.gpg ]] || {
  log "updating debian-archive-keyring (trixie keys needed)"
  run_logged "$BUILDLOG" apt-get install -y -q --only-upgrade debian-archive-keyring || true
}
[[ -f "$KEYRING" ]] || die "$KEYRING missing (package debian-archive-keyring)"

APTDIR="$WORK/apt"
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$WORK/src"
echo "deb-src [signed-by=$KEYRING] $MIRROR $SOURCE_SUITE main" >"$APTDIR/sources.list"
APT_PRIVATE=(-o "Dir::Etc::SourceList=$APTDIR/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
             -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache"
             -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=/dev/null"
             -o "APT::Get::Only-Source=true")
log "fetching the '$SOURCE_SUITE' source package index from $MIRROR (signed, private apt config)"
run_logged "$BUILDLOG" apt-get -q "${APT_PRIVATE[@]}" update

SRC_VERSION="$(apt-cache "${APT_PRIVATE[@]}" showsrc pocl 2>>"$BUILDLOG" | sed -n 's/^Version: //p' | sort -V | tail -n1)"
[[ -n "$SRC_VERSION" ]] || die "pocl source package not found in $SOURCE_SUITE"
[[ "$SRC_VERSION" =~ ^${POCL_SERIES//./\\.}([.~+][^-]*)?- ]] \
  || die "trixie pocl is $SRC_VERSION, expected ${POCL_SERIES}.x; update this script (RECIPE) deliberately"
log "fetching pocl $SRC_VERSION source package (apt verifies its checksums against the signed index)"
if id _apt >/dev/null 2>&1; then chown _apt "$WORK/src" 2>/dev/null || true; fi
(cd "$WORK/src" && run_logged "$BUILDLOG" apt-get -q "${APT_PRIVATE[@]}" source "pocl=$SRC_VERSION")
SRCDIR="$(find "$WORK/src" -mindepth 1 -maxdepth 1 -type d -name 'pocl-*' | head -n1)"
[[ -n "$SRCDIR" && -f "$SRCDIR/CMakeLists.txt" ]] || die "unpacked pocl source not found in $WORK/src"

CMAKE_OPTS=(
  -G Ninja
  -DCMAKE_BUILD_TYPE=Release
  -DENABLE_IPO=OFF                       # with GCC 12 LTO the libpocl link fails (non-PIC object libs)
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON
  -DCMAKE_INSTALL_PREFIX="$PREFIX"
  -DWITH_LLVM_CONFIG=/usr/bin/llvm-config-${LLVM_MAJOR}
  -DENABLE_ICD=ON
  -DENABLE_HWLOC=OFF
  -DENABLE_SPIRV=OFF
  -DLLVM_SPIRV=LLVM_SPIRV-NOTFOUND
  -DENABLE_LEVEL0=OFF
  -DENABLE_TESTS=OFF
  -DENABLE_EXAMPLES=OFF
  -DENABLE_POCLCC=OFF
  -DENABLE_HOST_CPU_DEVICES=ON
  -DLLC_HOST_CPU=GENERIC
  -DKERNELLIB_HOST_CPU_VARIANTS=distro
  -DPOCL_ICD_ABSOLUTE_PATH=ON
  -DINSTALL_OPENCL_HEADERS=OFF
)
log "configuring (cmake ${CMAKE_OPTS[*]})"
rm -rf "$PREFIX"
# Run from the build dir: pocl's configure-time clang probes write compile_test_* files into the CWD.
mkdir -p "$WORK/build"
cd "$WORK/build"
run_logged "$BUILDLOG" cmake -S "$SRCDIR" -B "$WORK/build" "${CMAKE_OPTS[@]}"
log "building with ninja -j$JOBS (log: $BUILDLOG)"
run_logged "$BUILDLOG" ninja -C "$WORK/build" -j"$JOBS"
run_logged "$BUILDLOG" ninja -C "$WORK/build" install

write_icd
check_device
printf '%s\npocl %s (Debian %s source) built %s against %s, cmake: %s\n' \
  "$STAMP_KEY" "$SRC_VERSION" "$SOURCE_SUITE" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  "$(/usr/bin/llvm-config-${LLVM_MAJOR} --version)" "${CMAKE_OPTS[*]}" >"$STAMP.tmp"
mv "$STAMP.tmp" "$STAMP"
log "PoCL $SRC_VERSION installed in $PREFIX in $((SECONDS - T0)) s"
emit_env
