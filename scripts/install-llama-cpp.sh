#!/usr/bin/env bash
# Build and install a portable llama-cpp-python into a virtualenv.
#
# Usage: scripts/install-llama-cpp.sh [PYTHON_OR_PIP]
#   PYTHON_OR_PIP  the venv's python or pip (default: $PYTHON, else .venv/bin/python, else python3)
#
# Environment:
#   LLAMA_CPP_VERSION   llama-cpp-python version to build (default 0.3.36)
#   LLAMA_CPP_BUILD     dispatch (default): ggml's CPU backend built once per CPU variant as a
#                         plug-in; the best one for the running CPU is picked at run time
#                         (AVX-512/VNNI/BF16/AMX where present, never an illegal instruction);
#                       avx2: one AVX2/FMA build (smaller, faster to build; needs an AVX2 CPU);
#                       generic: no SIMD beyond SSE2 (slow, runs anywhere).
#   LLAMA_CPP_VARIANTS  dispatch mode: which x86 CPU variants to build, or "all" (default: a set
#                       that covers current x86 servers and desktops, see DEFAULT_VARIANTS below;
#                       "all" on other architectures)
#   LLAMA_CPP_JOBS      parallel compile jobs (default: nproc)
#   LLAMA_CPP_FORCE=1   rebuild even if a cached wheel exists
#   XDG_CACHE_HOME      wheels are cached in ${XDG_CACHE_HOME:-$HOME/.cache}/article-rag/wheels/
#
# The default llama-cpp-python build compiles for the build machine's newest instructions
# (-march=native) and dies with "Illegal instruction" on other CPUs; this script never does that.
# It is a no-op when the same build is already installed.
set -euo pipefail

VERSION="${LLAMA_CPP_VERSION:-0.3.36}"
MODE="${LLAMA_CPP_BUILD:-dispatch}"
JOBS="${LLAMA_CPP_JOBS:-$(nproc 2>/dev/null || echo 2)}"
# x64: any x86-64 (SSE2 only, the safety net); haswell: AVX2 (Zen 1-3, Intel 2013+);
# skylakex/cascadelake/icelake: AVX-512 Intel servers (+VNNI, +VBMI); zen4: AVX-512 with VNNI and
# BF16 (AMD Zen 4/5); alderlake: AVX-VNNI Intel desktops; sapphirerapids: AMX.
# Left out by default: sse42, sandybridge, ivybridge, piledriver (pre-AVX2 CPUs fall back to x64),
# cannonlake and cooperlake (rare). Each variant costs about half a CPU-minute to 4 CPU-minutes.
DEFAULT_VARIANTS="x64 haswell skylakex cascadelake icelake zen4 alderlake sapphirerapids"
[[ "$(uname -m)" == x86_64 ]] || DEFAULT_VARIANTS=all
VARIANTS="${LLAMA_CPP_VARIANTS:-$DEFAULT_VARIANTS}"
ALL_X86_VARIANTS="x64 sse42 sandybridge ivybridge piledriver haswell skylakex cannonlake cascadelake icelake cooperlake zen4 alderlake sapphirerapids"

say() { printf '[install-llama-cpp] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# --- which python --------------------------------------------------------------------------
TARGET="${1:-${PYTHON:-}}"
if [[ -z "$TARGET" ]]; then
    if [[ -x .venv/bin/python ]]; then TARGET=.venv/bin/python; else TARGET=python3; fi
fi
case "$(basename "$TARGET")" in
    pip|pip3|pip3.*) PY="$(dirname "$TARGET")/python" ;;
    *) PY="$TARGET" ;;
esac
command -v "$PY" >/dev/null 2>&1 || die "python not found: $PY"
"$PY" -m pip --version >/dev/null 2>&1 || die "$PY has no pip"

# --- build flags ---------------------------------------------------------------------------
# Always: no -march=native, no multimodal (mtmd) library (unused here, saves build time),
# no CUDA/Metal/Vulkan.
COMMON="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF"
case "$MODE" in
    dispatch)
        # Every CPU variant becomes libggml-cpu-<variant>.so; ggml scores them against the running
        # CPU and loads the best. They are installed next to libllama.so in llama_cpp/lib, where
        # rag.llms tells ggml to look (ggml itself only searches the python binary's folder and
        # the current directory).
        FLAGS="$COMMON -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DCMAKE_INSTALL_BINDIR=llama_cpp/lib"
        ;;
    avx2)
        grep -qw avx2 /proc/cpuinfo 2>/dev/null || say "warning: this CPU has no AVX2; the avx2 build will not run here"
        FLAGS="$COMMON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF"
        ;;
    generic)
        FLAGS="$COMMON -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_AVX512=OFF"
        ;;
    *) die "LLAMA_CPP_BUILD must be dispatch, avx2 or generic (got '$MODE')" ;;
esac

ARCH="$(uname -m)"
PYTAG="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
[[ "$MODE" == dispatch ]] || VARIANTS="-"
PATCHES="no-common-lib;variants=$VARIANTS"
KEY="$(printf '%s|%s|%s|%s|%s|%s' "$VERSION" "$MODE" "$FLAGS" "$PATCHES" "$ARCH" "$PYTAG" | sha256sum | cut -c1-12)"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/article-rag/wheels"
CACHE_DIR="$CACHE_ROOT/llama-cpp-python-$VERSION-$MODE-$KEY"

# --- already installed? --------------------------------------------------------------------
# pip records the wheel it installed from in direct_url.json; the cache folder name carries KEY.
installed_key_matches() {
    "$PY" - "$VERSION" "$KEY" <<'EOF'
import sys
from importlib import metadata
version, key = sys.argv[1], sys.argv[2]
try:
    dist = metadata.distribution("llama_cpp_python")
except metadata.PackageNotFoundError:
    sys.exit(1)
url = dist.read_text("direct_url.json") or ""
sys.exit(0 if dist.version == version and key in url else 1)
EOF
}

# Import llama_cpp, load the CPU backend(s) the way rag.llms does, report the variant.
smoke_test() {
    "$PY" - <<'EOF'
import ctypes, pathlib, re, sys
import llama_cpp
lib = pathlib.Path(llama_cpp.__file__).parent / "lib"
variants = sorted(p.name for p in lib.glob("libggml-cpu-*.so"))
if variants:
    import llama_cpp.llama_cpp as bindings
    lib_llama = bindings._lib  # resolves ggml symbols in the libggml instance libllama uses
    lib_llama.ggml_backend_reg_count.restype = ctypes.c_size_t
    lib_llama.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
    lib_llama.ggml_backend_load_all_from_path(str(lib).encode())
    if lib_llama.ggml_backend_reg_count() == 0:
        sys.exit(f"no CPU backend loaded from {lib}")
    maps = pathlib.Path("/proc/self/maps").read_text()
    found = re.search(r"libggml-cpu-([\w.]+?)\.so", maps)
    print(f"llama-cpp-python {llama_cpp.__version__}: {len(variants)} CPU variants, "
          f"this CPU uses '{found.group(1) if found else '?'}'")
else:
    llama_cpp.llama_backend_init()
    print(f"llama-cpp-python {llama_cpp.__version__}: single built-in CPU backend")
EOF
}

if [[ "${LLAMA_CPP_FORCE:-0}" != 1 ]] && installed_key_matches; then
    say "llama-cpp-python $VERSION ($MODE build $KEY) is already installed."
    smoke_test >&2
    exit 0
fi

# --- build the wheel once ------------------------------------------------------------------
WHEEL="$(ls "$CACHE_DIR"/llama_cpp_python-"$VERSION"-*.whl 2>/dev/null | head -n1 || true)"
if [[ -z "$WHEEL" || "${LLAMA_CPP_FORCE:-0}" == 1 ]]; then
    command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || die "a C/C++ compiler (gcc, g++) is needed"
    command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || die "a C++ compiler (g++) is needed"
    mkdir -p "$CACHE_ROOT"
    WORK="$(mktemp -d "$CACHE_ROOT/.build-XXXXXX")"
    trap 'rm -rf "$WORK"' EXIT
    say "Building llama-cpp-python $VERSION ($MODE) with $JOBS jobs; this takes several minutes."
    say "flags: $FLAGS; variants: $VARIANTS"
    START=$(date +%s)
    # The source is patched, so fetch the sdist (its build requirements, scikit-build-core and,
    # only if the system lacks them, cmake/ninja, come from PyPI through build isolation).
    "$PY" -m pip download --no-deps --no-binary llama-cpp-python -d "$WORK" "llama-cpp-python==$VERSION" \
        >"$WORK/download.log" 2>&1 || { tail -n 20 "$WORK/download.log" >&2; die "could not download the llama-cpp-python $VERSION source"; }
    tar -xzf "$WORK"/llama_cpp_python-"$VERSION".tar.gz -C "$WORK"
    SRC="$WORK/llama_cpp_python-$VERSION"
    [[ -d "$SRC" ]] || die "unexpected sdist layout in $WORK"
    # 1. llama-cpp-python forces llama.cpp's "common" library on, but only the multimodal
    #    library (not built here) uses it: skipping it saves a third of the build.
    sed -i -E 's/^([[:space:]]*set\(LLAMA_BUILD_COMMON) ON (CACHE BOOL)/\1 OFF \2/' "$SRC/CMakeLists.txt"
    grep -q 'set(LLAMA_BUILD_COMMON OFF' "$SRC/CMakeLists.txt" || say "warning: could not switch off the common library (slower build)"
    # 2. Build only the chosen CPU variants.
    if [[ "$MODE" == dispatch && "$VARIANTS" != all ]]; then
        GGML_CMAKE="$SRC/vendor/llama.cpp/ggml/src/CMakeLists.txt"
        for v in $VARIANTS; do
            grep -Eq "^[[:space:]]*ggml_add_cpu_backend_variant\($v[[:space:])]" "$GGML_CMAKE" || die "unknown CPU variant '$v' (known: $ALL_X86_VARIANTS)"
        done
        for v in $ALL_X86_VARIANTS; do
            [[ " $VARIANTS " == *" $v "* ]] && continue
            sed -i -E "s/^([[:space:]]*)(ggml_add_cpu_backend_variant\($v[[:space:])])/\1# \2/" "$GGML_CMAKE"
        done
        kept=$(grep -Ec '^[[:space:]]*ggml_add_cpu_backend_variant\((x64|sse42|sandybridge|ivybridge|piledriver|haswell|skylakex|cannonlake|cascadelake|icelake|cooperlake|zen4|alderlake|sapphirerapids)[[:space:])]' "$GGML_CMAKE")
        [[ "$kept" -eq $(wc -w <<<"$VARIANTS") ]] || die "patching the CPU variant list failed ($kept kept)"
    fi
    if ! env CMAKE_ARGS="$FLAGS" CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" FORCE_CMAKE=1 \
        "$PY" -m pip wheel --no-deps --no-cache-dir -w "$WORK/dist" "$SRC" >"$WORK/build.log" 2>&1; then
        tail -n 40 "$WORK/build.log" >&2
        cp "$WORK/build.log" "$CACHE_ROOT/llama-cpp-python-build-failed.log"
        die "build failed (log: $CACHE_ROOT/llama-cpp-python-build-failed.log). Try LLAMA_CPP_BUILD=avx2 or generic."
    fi
    say "Built in $(( $(date +%s) - START )) s."
    BUILT="$(ls "$WORK"/dist/llama_cpp_python-"$VERSION"-*.whl | head -n1)"
    rm -rf "$CACHE_DIR"
    mkdir -p "$CACHE_DIR"
    mv "$BUILT" "$CACHE_DIR/"
    WHEEL="$CACHE_DIR/$(basename "$BUILT")"
else
    say "Using cached wheel $WHEEL"
fi

# --- install it ----------------------------------------------------------------------------
# Its dependencies are numpy, jinja2, diskcache and typing-extensions: nothing pulls torch.
"$PY" -m pip install --force-reinstall --no-deps "$WHEEL" >&2
"$PY" -m pip install "numpy>=1.20" "jinja2>=2.11.3" "diskcache>=5.6.1" "typing-extensions>=4.5" >&2
smoke_test >&2 || die "the installed llama-cpp-python does not load; see above"
say "Installed llama-cpp-python $VERSION ($MODE build $KEY)."
