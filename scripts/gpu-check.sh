#!/usr/bin/env bash
# scripts/gpu-check.sh: everything the GPU half of tinydiffusion can be asked on a machine
# with a GPU, in one command and one report (bench/README.md, "GPU"): the machine, a build
# for sm_90, the CUDA tests (each test case in a process of its own) and the benches (each
# checks its results: "ok" in the report means ran AND checked).
#
#   bash scripts/gpu-check.sh [--quick] [--build-only] [--no-build] [--all-tests]
#                             [--tests-only] [--standin] [--prepare]
#   make gpu-check GPU_CHECK_ARGS=--quick     the same through make
#
# The report: $OUT/gpu-check.md when OUT is set, else bench/results/gpu-check.md, with
# gpu-check.log beside it, written as it goes within a time budget (BUDGET seconds).
# Without a GPU it builds, says there is none and exits 0. The steps, the options and the
# environment are described in full below.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)

# ---- what it does, step by step
#
#   1. the machine: nvidia-smi -L, the driver, nvcc, the cores
#   2. build (make -j$(nproc), CUDA for sm_90 only, in build-gpu/ and build-gpu-cuda/ so the
#      default build dirs, made for sm_80 + sm_90, are never mixed with it): run_tests, the
#      diffuse CLI (the device tests run it) and the GPU benches, nothing else; or nothing,
#      when --prepare built them beforehand (below)
#   3. the CUDA tests, each test case in a process of its own: run_tests -ltc lists the cases
#      matching -tc='*cuda*,*gpu*,*device*' (doctest filters ignore case), then each runs
#      alone, under a timeout. A kernel that faults (an illegal address) leaves a sticky
#      error that fails every later CUDA call of its process: alone, it fails its own case
#      and no other. The report has one row per case: passed, failed, crashed (a signal),
#      timed out, skipped (the case printed SKIPPED), or not reached (the time budget)
#   4. the benches: our GEMM ladder vs cuBLAS (FP32, TF32); conv2d vs cuDNN (FP32, then
#      TF32 on both sides); fused attention vs the naive 3-kernel form (when
#      bench/cuda_attention.cu exists); a DDPM training step with the DDPM paper's CIFAR-10
#      UNet at batch 128, ours (FP32, TF32) and PyTorch's on the same GPU when a python3
#      there imports a torch that sees the GPU. Every bench checks its results (against
#      cuBLAS, cuDNN or the CPU; FP32 within 1e-4, TF32 within 1e-2, relative) and exits 3
#      past the tolerance: "ok" in the report means ran AND checked (bench/cuda_timing.h).
#      Timed calls start with a flushed L2 cache.
#
# The report: $OUT/gpu-check.md when OUT is set (a folder the caller collects), else
# bench/results/gpu-check.md; everything the commands printed goes to gpu-check.log beside
# it. Each section gives its exact command, its time and its output; the report is written
# as it goes, so a run stopped early still leaves what it did. The whole run keeps to a
# time budget (BUDGET seconds, default 540: under a 600 s limit on the whole command), and
# each step to a timeout of its own; what the budget did not reach is listed at the end
# ("Not done").
#
# Without a GPU it builds the same (a check that everything compiles), prints one line
# saying there is no GPU, and exits 0 (or 1 when the build fails). With --standin it goes
# on instead, on the host-memory stand-in for the GPU (TD_CUDA_STANDIN=1): the per-case
# test runner and the report, benches skipped: how a machine without a GPU tests this script.
#
#   bash scripts/gpu-check.sh                 build, tests, benches, report
#   bash scripts/gpu-check.sh --quick         shorter benches (fewer sizes and steps)
#   bash scripts/gpu-check.sh --build-only    build and stop
#   bash scripts/gpu-check.sh --no-build      use the binaries already in $GPU_BUILD
#   bash scripts/gpu-check.sh --all-tests     every test case of run_tests, not only the GPU ones
#   bash scripts/gpu-check.sh --tests-only    the tests, no benches
#   bash scripts/gpu-check.sh --standin       no GPU here: the tests on the stand-in (see above)
#   bash scripts/gpu-check.sh --prepare       (on the machine you start from) everything the GPU
#                                             machine would otherwise spend its minutes on, in
#                                             build-gpu-deps/: the headers the build needs
#                                             (Eigen, doctest, stb, zlib) and libz.a, for a
#                                             machine that lacks them; and the programs,
#                                             built here for sm_90 (portable x86-64, no
#                                             -march=native) with a stamp of the sources they
#                                             were built from. Carry that folder there: a
#                                             run whose sources match the stamp, and whose
#                                             programs start there, skips the build.
#   make gpu-check GPU_CHECK_ARGS=--quick     the same through make
#
# On the GPU machine, after --prepare here and build-gpu-deps/ copied along:
#   bash scripts/gpu-check.sh
#
# Environment: GPU_BUILD (build-gpu), GPU_CUDA_BUILD (build-gpu-cuda), CUDA_ARCHS (90),
# JOBS (all cores), BUDGET (540), CASE_TIMEOUT (120: one test case), REPORT (the report's
# path), PYTHON (tried first for the PyTorch side), CUDNN_INC / CUDNN_LIBDIR (cuDNN outside
# the toolkit, passed to make; when unset and the toolkit has no cuDNN, the script looks in
# /usr/lib, /usr/local and /opt).

MODE=full QUICK=0 ALL_TESTS=0 BUILD_STEP=1 BENCHES=1 STANDIN=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --build-only) MODE=build-only ;;
    --no-build) BUILD_STEP=0 ;;
    --all-tests) ALL_TESTS=1 ;;
    --tests-only) BENCHES=0 ;;
    --standin) STANDIN=1 ;;
    --prepare) MODE=prepare ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check: unknown option '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

B=${GPU_BUILD:-build-gpu}
CB=${GPU_CUDA_BUILD:-build-gpu-cuda}
ARCHS=${CUDA_ARCHS:-90}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 4)}
BUDGET=${BUDGET:-540}
CASE_TIMEOUT=${CASE_TIMEOUT:-120}
DEPS=build-gpu-deps
START=$(date +%s)
unset TD_CUDA_TF32 NVIDIA_TF32_OVERRIDE TD_CUDA_STANDIN  # each command below says its own precision
export PYTHONUNBUFFERED=1  # a Python step stopped by its timeout still leaves what it printed

# The programs a check runs (in $B/), and what --prepare packs of them.
PROGRAMS=(run_tests diffuse test_mpi_ranks bench_cuda_gemm bench_cuda_conv bench_cuda_unet bench_cuda_attention)

# A fingerprint of everything the programs are compiled from: a prepared build is used only
# where the sources are the ones it was built from (the device machine gets a copy of the
# working tree, without .git: so the files themselves, not a commit id).
source_stamp() {
  find Makefile td.h autograd bench cuda diffusion distributed nn notebooks-cpp/render tensor tests tools \
       -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name Makefile \) \
       -not -path 'tests/fixtures/*' 2>/dev/null | LC_ALL=C sort | xargs sha1sum | sha1sum | cut -c1-16
}

# ---- --prepare: what the GPU machine would otherwise spend its minutes on ------------------
if [ "$MODE" = prepare ]; then
  rm -rf "$DEPS" && mkdir -p "$DEPS/include" "$DEPS/lib" "$DEPS/bin" || exit 1
  for h in eigen3 doctest stb zlib.h zconf.h; do
    [ -e "/usr/include/$h" ] || { echo "gpu-check --prepare: no /usr/include/$h here" >&2; exit 1; }
    cp -a "/usr/include/$h" "$DEPS/include/" || exit 1
  done
  libz=$(gcc -print-file-name=libz.a)
  [ -f "$libz" ] && cp "$libz" "$DEPS/lib/"
  # The programs, for sm_90, without -march=native (PORTABLE=1: this machine's CPU need not
  # be the GPU machine's), in $B/ as a run there would build them.
  mkdir -p "$B" || exit 1
  t0=$(date +%s)
  if ! make --no-print-directory -j"$JOBS" PORTABLE=1 BUILD="$B" CUDA_BUILD="$CB" CUDA_ARCHS="$ARCHS" MPI=0 \
         "${PROGRAMS[@]/#/$B/}" > "$B/prepare-build.log" 2>&1; then
    tail -n 30 "$B/prepare-build.log" >&2
    echo "gpu-check --prepare: the build FAILED ($B/prepare-build.log); $DEPS/ has the headers only" >&2
    exit 1
  fi
  for p in "${PROGRAMS[@]}"; do
    [ -x "$B/$p" ] && { cp "$B/$p" "$DEPS/bin/" && strip "$DEPS/bin/$p" || exit 1; }
  done
  # libgomp (OpenMP) is the one library the programs take from the compiler's installation
  gomp=$(gcc -print-file-name=libgomp.so.1)
  [ -f "$gomp" ] && cp -L "$gomp" "$DEPS/bin/"
  # packed: what is copied to the GPU machine should be small (64 MiB at most), and the programs compress to a third
  tar -czf "$DEPS/programs.tar.gz" -C "$DEPS" bin && rm -rf "$DEPS/bin" || exit 1
  source_stamp > "$DEPS/programs.stamp"
  echo "gpu-check --prepare: built in $(( $(date +%s) - t0 ))s; $(du -sh "$DEPS" | cut -f1) in $DEPS/" \
       "(programs $(du -sh "$DEPS/programs.tar.gz" | cut -f1)); name it in the device tool's carry: [\"$DEPS\"]"
  exit 0
fi

# The headers the build takes from the system, when this machine lacks them: from $DEPS/
# (made by --prepare elsewhere and carried here). CPLUS_INCLUDE_PATH acts as -isystem for
# g++ (nvcc's host compiler too); LIBRARY_PATH lets -lz find libz.a.
deps_note=""
if [ -d "$DEPS/include" ]; then
  for h in eigen3/Eigen/Core doctest/doctest.h stb/stb_image.h zlib.h; do
    if [ ! -e "/usr/include/$h" ]; then
      export CPLUS_INCLUDE_PATH="$ROOT/$DEPS/include/eigen3:$ROOT/$DEPS/include${CPLUS_INCLUDE_PATH:+:$CPLUS_INCLUDE_PATH}"
      deps_note="headers from $DEPS/include (this machine lacks /usr/include/$h)"
      break
    fi
  done
  if [ "$(gcc -print-file-name=libz.so)" = libz.so ] && [ -f "$DEPS/lib/libz.a" ]; then
    export LIBRARY_PATH="$ROOT/$DEPS/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
    deps_note="${deps_note:+$deps_note; }libz.a from $DEPS/lib"
  fi
fi

# ---- where things go -----------------------------------------------------------------------
if [ -n "${REPORT:-}" ]; then :
elif [ -n "${OUT:-}" ]; then REPORT=$OUT/gpu-check.md
else REPORT=bench/results/gpu-check.md
fi
mkdir -p "$(dirname "$REPORT")" "$B/gpu-check" || exit 1
LOG=${REPORT%.md}.log
WORK=$B/gpu-check  # each step's stdout and stderr

GPU_LIST=$(nvidia-smi -L 2>/dev/null | grep -i gpu)
if [ -z "$GPU_LIST" ] && ls /dev/nvidia[0-9]* > /dev/null 2>&1; then
  GPU_LIST="(nvidia-smi -L lists no GPU, but $(ls /dev/nvidia[0-9]* | head -n 1) exists: trying it)"
fi
HAVE_GPU=0; [ -n "$GPU_LIST" ] && HAVE_GPU=1

# cuDNN: the Makefile looks beside the CUDA toolkit's libraries. When it is not there (and
# CUDNN_LIBDIR is not set), look for it elsewhere on the machine: Debian / Ubuntu packages,
# or the copy PyTorch's wheels carry (nvidia/cudnn/lib next to nvidia/cudnn/include).
if [ -z "${CUDNN_LIBDIR:-}" ] && ! ls /usr/local/cuda/lib64/libcudnn.so* > /dev/null 2>&1; then
  so=$(find /usr/lib/x86_64-linux-gnu /usr/local /opt -maxdepth 9 -name 'libcudnn.so*' 2>/dev/null | sort | head -n 1)
  if [ -n "$so" ]; then
    CUDNN_LIBDIR=$(dirname "$so")
    for inc in "$CUDNN_LIBDIR/../include" /usr/include /usr/include/x86_64-linux-gnu; do
      [ -f "$inc/cudnn.h" ] && { CUDNN_INC=$(cd "$inc" && pwd); break; }
    done
  fi
fi

MAKE_CMD=(make --no-print-directory -k -j"$JOBS" BUILD="$B" CUDA_BUILD="$CB" CUDA_ARCHS="$ARCHS" MPI=0
          "$B/run_tests" "$B/diffuse" gpu-benches)
[ -n "${CUDNN_INC:-}" ] && MAKE_CMD+=(CUDNN_INC="$CUDNN_INC")
[ -n "${CUDNN_LIBDIR:-}" ] && MAKE_CMD+=(CUDNN_LIBDIR="$CUDNN_LIBDIR")

# show WORD...: the command as one would type it (words with special characters quoted).
show() {
  local out="" w
  for w in "$@"; do
    if [[ "$w" =~ ^[A-Za-z0-9_./=,:+-]+$ ]]; then out+="$w "; else out+="'${w//\'/\'\\\'\'}' "; fi
  done
  echo "${out% }"
}

# run_build [SECONDS]: the build into $WORK/build.log, stopped after SECONDS if given;
# sets BUILD_RC and BUILD_S.
run_build() {
  local t0 stop_after=()
  t0=$(date +%s)
  [ $# -gt 0 ] && stop_after=(timeout --kill-after=10 "$1")
  "${stop_after[@]}" "${MAKE_CMD[@]}" > "$WORK/build.log" 2>&1
  BUILD_RC=$?
  BUILD_S=$(( $(date +%s) - t0 ))
}

# ---- the programs --prepare built, when they fit this tree and start here --------------------
PREBUILT_NOTE=""
if [ "$BUILD_STEP" = 1 ] && [ "$MODE" = full ] && [ -f "$DEPS/programs.stamp" ] && [ -f "$DEPS/programs.tar.gz" ]; then
  if [ "$(cat "$DEPS/programs.stamp")" != "$(source_stamp)" ]; then
    PREBUILT_NOTE="the programs in $DEPS/ were built from other sources (stamp differs): building here"
  elif ! rm -rf "$DEPS/bin" || ! tar -xzf "$DEPS/programs.tar.gz" -C "$DEPS"; then
    PREBUILT_NOTE="$DEPS/programs.tar.gz did not unpack: building here"
  elif ! LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$ROOT/$DEPS/bin" "$DEPS/bin/run_tests" -ltc \
         -tc='no such case' > /dev/null 2>&1; then
    PREBUILT_NOTE="the programs in $DEPS/bin/ do not start here: building here"
  else
    mkdir -p "$B" || exit 1
    for p in "${PROGRAMS[@]}"; do [ -x "$DEPS/bin/$p" ] && cp "$DEPS/bin/$p" "$B/"; done
    # (libgomp beside them: the OpenMP runtime they were linked with, wherever this machine has its own)
    export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$ROOT/$DEPS/bin"
    # (the benches find cuBLAS and cuDNN where the toolkit was on the machine that built
    # them; a cuDNN found elsewhere here, above, is added to the search)
    [ -n "${CUDNN_LIBDIR:-}" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$CUDNN_LIBDIR"
    BUILD_STEP=0
    PREBUILT_NOTE="programs prebuilt by --prepare (sources match stamp $(cat "$DEPS/programs.stamp")), copied into $B/: no build"
    for p in "${PROGRAMS[@]}"; do
      lost=$([ -x "$B/$p" ] && ldd "$B/$p" 2>/dev/null | awk '/not found/ { print $1 }' | tr '\n' ' ')
      [ -n "$lost" ] && PREBUILT_NOTE+="; $p will not start here: ${lost% } not found"
    done
  fi
fi

# ---- no GPU: build, say so, stop (unless --standin) -----------------------------------------
if { [ "$HAVE_GPU" = 0 ] && [ "$STANDIN" = 0 ]; } || [ "$MODE" = build-only ]; then
  why="no GPU here (nvidia-smi -L lists none)"; [ "$HAVE_GPU" = 1 ] && why="--build-only"
  if [ "$BUILD_STEP" = 0 ]; then echo "gpu-check: $why; ${PREBUILT_NOTE:---no-build}: nothing built, nothing run"; exit 0; fi
  run_build
  if [ "$BUILD_RC" != 0 ]; then
    tail -n 40 "$WORK/build.log" >&2
    echo "gpu-check: $why, and the build FAILED (rc $BUILD_RC, ${BUILD_S}s): $WORK/build.log;" \
         "command: $(show "${MAKE_CMD[@]}")" >&2
    exit 1
  fi
  echo "gpu-check: $why: built run_tests, diffuse and the GPU benches in $B/ (${BUILD_S}s, sm_$ARCHS), ran nothing"
  exit 0
fi

# --standin without a GPU: every cuda tensor lives on the host stand-in; no benches
if [ "$HAVE_GPU" = 0 ]; then
  export TD_CUDA_STANDIN=1
  BENCHES=0
  GPU_LIST="none: --standin, the host-memory stand-in (TD_CUDA_STANDIN=1); benches skipped"
fi

# ---- the report -----------------------------------------------------------------------------
: > "$LOG"
say() { printf '%s\n' "$*" >> "$REPORT"; }
progress() { echo "gpu-check [$(( $(date +%s) - START ))s]: $*"; }
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
SUMMARY=()
NOT_DONE=()  # what the budget (or a missing program) kept from running, for the last section

# step NAME LIMIT_S FORMAT CMD...: runs CMD (from the repository root) under `timeout`, at
# most LIMIT_S seconds and never past the budget; writes a section with the command, the
# time, the status and the output: FORMAT md (the program prints markdown) or text (put in
# a code block; long outputs keep their head and tail). Sets STEP_RC.
step() {
  local name=$1 limit=$2 format=$3; shift 3
  local id=${name//[^A-Za-z0-9]/_} remaining t0 s status
  remaining=$(( $(left) - 10 ))
  say ""; say "## $name"; say ""
  say "\`\`\`"; say "$(show "$@")"; say "\`\`\`"; say ""
  if [ "$remaining" -lt 20 ]; then
    say "**skipped**: the time budget (${BUDGET}s) is spent."
    SUMMARY+=("| $name | skipped (time budget) | |"); NOT_DONE+=("$name"); STEP_RC=124; return
  fi
  [ "$limit" -gt "$remaining" ] && limit=$remaining
  progress "$name (at most ${limit}s)"
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" env "$@" > "$WORK/$id.out" 2> "$WORK/$id.err"
  STEP_RC=$?
  s=$(( $(date +%s) - t0 ))
  { echo "==== $name: $(show "$@")"; cat "$WORK/$id.out"
    echo "---- stderr"; cat "$WORK/$id.err"; echo "---- rc $STEP_RC, ${s}s"; } >> "$LOG"
  case $STEP_RC in
    0) status="ok" ;;
    3) status="**wrong results** (exit code 3: past the tolerance)" ;;
    124|137) status="**timed out** after ${limit}s" ;;
    *) status="**failed** (exit code $STEP_RC)" ;;
  esac
  say "$status, ${s}s."; say ""
  if [ "$format" = md ]; then
    cat "$WORK/$id.out" >> "$REPORT"
  elif [ -s "$WORK/$id.out" ]; then
    say "\`\`\`"
    if [ "$(wc -l < "$WORK/$id.out")" -gt 150 ]; then
      head -n 60 "$WORK/$id.out" >> "$REPORT"; say "... ($(wc -l < "$WORK/$id.out") lines in all: $LOG) ..."
      tail -n 80 "$WORK/$id.out" >> "$REPORT"
    else
      cat "$WORK/$id.out" >> "$REPORT"
    fi
    say "\`\`\`"
  fi
  if [ "$STEP_RC" != 0 ] && [ -s "$WORK/$id.err" ]; then
    say ""; say "stderr (last 30 lines):"; say "\`\`\`"; tail -n 30 "$WORK/$id.err" >> "$REPORT"; say "\`\`\`"
  fi
  SUMMARY+=("| $name | $status | ${s}s |")
}

{
  echo "# GPU check: tinydiffusion's CUDA tests and GPU benches"
  echo ""
  echo "$(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname); written by \`bash scripts/gpu-check.sh $*\`"
  echo "(bench/README.md, \"GPU\", says what each table measures)."
  echo ""
  echo "## Machine"
  echo ""
  echo '```'
  echo "$ nvidia-smi -L"
  echo "$GPU_LIST"
  echo "$ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv 2>&1
  echo "$ nvcc --version | tail -1"
  if command -v nvcc >/dev/null; then nvcc --version; else /usr/local/cuda/bin/nvcc --version; fi 2>&1 | tail -n 1
  echo "$ g++ --version | head -1; nproc"
  g++ --version 2>&1 | head -n 1
  nproc
  echo '```'
  [ -n "$deps_note" ] && echo "" && echo "Build note: $deps_note."
  [ -n "$PREBUILT_NOTE" ] && echo "" && echo "Build note: $PREBUILT_NOTE."
} > "$REPORT"
progress "GPU: $GPU_LIST"
progress "report: $REPORT (log: $LOG)"

# ---- build ----------------------------------------------------------------------------------
say ""; say "## Build"; say ""
say "\`\`\`"; say "$(show "${MAKE_CMD[@]}")"; say "\`\`\`"; say ""
if [ "$BUILD_STEP" = 1 ]; then
  progress "build (make -j$JOBS, sm_$ARCHS)"
  run_build $(( BUDGET - 120 ))  # leave at least two minutes for the tests and benches
  cat "$WORK/build.log" >> "$LOG"
  if [ "$BUILD_RC" = 0 ]; then
    say "ok, ${BUILD_S}s."
    SUMMARY+=("| Build | ok | ${BUILD_S}s |")
  else
    say "**failed** (make exit code $BUILD_RC, ${BUILD_S}s; make -k went on with the other targets). Last 40 lines:"
    say "\`\`\`"; tail -n 40 "$WORK/build.log" >> "$REPORT"; say "\`\`\`"
    SUMMARY+=("| Build | **failed** (rc $BUILD_RC) | ${BUILD_S}s |")
  fi
else
  say "skipped: ${PREBUILT_NOTE:-(--no-build) the binaries already in $B/}."
fi
have() { [ -x "$B/$1" ]; }
missing() {  # a section for a program the build did not produce
  say ""; say "## $1"; say ""; say "**not run**: $B/$2 was not built (see Build)."
  SUMMARY+=("| $1 | **not built** | |"); NOT_DONE+=("$1 (not built)")
}

# ---- tests ----------------------------------------------------------------------------------
# run_cases TITLE FILTER: every test case that FILTER selects, each in a process of its own
# (see the header), one row per case in the report; the output of each case that did not
# pass, its last 40 lines, below the table. Sets TESTS_FAILED.
run_cases() {
  local title=$1 filter=$2 names=() name pat out rc s t0 t_all status limit failed_out=()
  local n=0 passed=0 bad=0 skipped=0 late=0
  say ""; say "## $title"; say ""
  say "Each case alone: \`$B/run_tests -tc=NAME\` (commas in NAME written ?, since doctest splits filters"
  say "at commas), at most ${CASE_TIMEOUT}s each; the list from \`$(show "$B/run_tests" -ltc "-tc=$filter")\`."
  say ""
  # doctest -ltc: the names sit between the two lines of '=' after "listing all test case names"
  mapfile -t names < <("$B/run_tests" -ltc "-tc=$filter" 2>> "$LOG" |
                       awk '/listing all test case names/ { seen = 1; next }
                            seen && /^=+$/ { bar++; next } seen && bar == 1 && NF { print }')
  if [ ${#names[@]} = 0 ]; then
    say "**failed**: no test case matches (run_tests -ltc listed none)."
    SUMMARY+=("| $title | **failed** (no cases listed) | |"); TESTS_FAILED=1; return
  fi
  progress "$title: ${#names[@]} cases, one process each"
  say "| # | test case | result | time |"; say "|---|---|---|---|"
  t_all=$(date +%s)
  for name in "${names[@]}"; do
    n=$((n + 1))
    if [ $(( $(left) - 15 )) -lt 20 ]; then
      say "| $n | $name | not reached (time budget) | |"; late=$((late + 1)); NOT_DONE+=("test case: $name"); continue
    fi
    limit=$CASE_TIMEOUT; [ "$limit" -gt $(( $(left) - 15 )) ] && limit=$(( $(left) - 15 ))
    pat=${name//,/?}
    out="$WORK/case_$n.out"
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$B/run_tests" "-tc=$pat" > "$out" 2>&1
    rc=$?; s=$(( $(date +%s) - t0 ))
    { echo "==== test case $n: $name (rc $rc, ${s}s)"; cat "$out"; } >> "$LOG"
    if [ $rc = 0 ] && grep -q '^SKIPPED' "$out"; then
      status="skipped: $(grep -m1 '^SKIPPED' "$out" | cut -c10-170)"; skipped=$((skipped + 1))
    elif [ $rc = 0 ] && grep -q '^1 passed, 0 failed' "$out"; then
      status="passed"; passed=$((passed + 1))
    elif [ $rc = 0 ]; then
      status="**not run** (the filter found no case; see the log)"; bad=$((bad + 1))
    elif [ $rc = 124 ] || [ $rc = 137 ]; then
      status="**timed out** after ${limit}s"; bad=$((bad + 1))
    elif [ $rc -gt 128 ]; then
      status="**crashed** (signal $((rc - 128)))"; bad=$((bad + 1))
    else
      status="**failed** (exit code $rc)"; bad=$((bad + 1))
    fi
    [[ "$status" == passed || "$status" == skipped* ]] || failed_out+=("$n")
    say "| $n | $name | $status | ${s}s |"
    progress "  [$n/${#names[@]}] $status (${s}s): $name"
  done
  for n in "${failed_out[@]}"; do
    say ""; say "Case $n, ${names[$((n - 1))]}: the last 40 lines of its output"; say '```'
    tail -n 40 "$WORK/case_$n.out" >> "$REPORT"; say '```'
  done
  s=$(( $(date +%s) - t_all ))
  say ""; say "$passed passed, $bad failed, $skipped skipped, $late not reached, of ${#names[@]} cases (${s}s)."
  if [ $bad -gt 0 ]; then status="**$bad of ${#names[@]} failed**"
  elif [ $late -gt 0 ]; then status="$passed passed, **$late not reached** (time budget)"
  else status="ok ($passed passed, $skipped skipped)"
  fi
  SUMMARY+=("| $title | $status | ${s}s |")
  TESTS_FAILED=$bad
}

TESTS_FAILED=0
if have run_tests; then
  if [ "$ALL_TESTS" = 1 ]; then
    run_cases "Tests: every test case" "*"
  else
    run_cases "Tests: the CUDA cases" "*cuda*,*gpu*,*device*"
  fi
else
  missing "Tests" run_tests
  TESTS_FAILED=1
fi

# ---- benches --------------------------------------------------------------------------------
# In order of what they tell: GEMM, conv FP32, attention, the UNet step (ours and PyTorch's,
# FP32 then TF32), conv with TF32 last; what the budget does not reach is marked skipped.
if [ "$QUICK" = 1 ]; then
  GEMM_ARGS=(--sizes "1024,4096" --min-time 0.1)
  CONV_ARGS=(--min-time 0.05)
  UNET_ARGS=(--steps 3 --warmup 1 --max-time 10)
else
  GEMM_ARGS=()
  CONV_ARGS=(--min-time 0.1)
  UNET_ARGS=(--steps 10 --warmup 2 --max-time 25)
fi

if [ "$BENCHES" = 0 ]; then
  why="--tests-only"; [ "$HAVE_GPU" = 0 ] && why="--standin: no GPU"
  say ""; say "## Benches"; say ""; say "skipped ($why)."
  SUMMARY+=("| Benches | skipped ($why) | |")
else
if have bench_cuda_gemm; then
  step "GEMM: our ladder vs cuBLAS" 120 md "$B/bench_cuda_gemm" "${GEMM_ARGS[@]}"
else
  missing "GEMM: our ladder vs cuBLAS" bench_cuda_gemm
fi

if have bench_cuda_conv; then
  step "conv2d vs cuDNN, FP32" 120 md "$B/bench_cuda_conv" "${CONV_ARGS[@]}"
else
  missing "conv2d vs cuDNN" bench_cuda_conv
fi

if [ -f bench/cuda_attention.cu ]; then
  if have bench_cuda_attention; then
    step "Attention: fused vs naive 3-kernel" 90 md "$B/bench_cuda_attention"
  else
    missing "Attention: fused vs naive 3-kernel" bench_cuda_attention
  fi
fi

# The UNet step: ours and PyTorch's (the first python3 whose torch sees the GPU), one table.
TORCH_PY="" TORCH_TRIED=()
for py in ${PYTHON:-} python3 /usr/bin/python3 /opt/torch/.venv/bin/python3; do
  command -v "$py" >/dev/null 2>&1 || continue
  answer=$(timeout 60 "$py" -c 'import torch; print(torch.__version__, torch.cuda.is_available())' 2>&1 | tail -n 1)
  TORCH_TRIED+=("\`$py -c 'import torch; print(torch.__version__, torch.cuda.is_available())'\`: $answer")
  case "$answer" in *" True") TORCH_PY=$py; break ;; esac
done
UNET_ROWS=()
unet_rows() { grep '^| ' "$WORK/$1.out" 2>/dev/null; }
for precision in FP32 TF32; do
  tf32_env=() tf32_flag=()
  [ "$precision" = TF32 ] && tf32_env=(TD_CUDA_TF32=1) tf32_flag=(--tf32)
  if have bench_cuda_unet; then
    step "UNet training step, ours, $precision" 150 md "${tf32_env[@]}" "$B/bench_cuda_unet" "${UNET_ARGS[@]}"
    UNET_ROWS+=("$(unet_rows "UNet_training_step__ours__$precision")")
  else
    missing "UNet training step, ours, $precision" bench_cuda_unet
  fi
  if [ -n "$TORCH_PY" ]; then
    step "UNet training step, PyTorch, $precision" 150 md "$TORCH_PY" bench/cuda_unet_torch.py "${tf32_flag[@]}" \
      "${UNET_ARGS[@]}"
    UNET_ROWS+=("$(unet_rows "UNet_training_step__PyTorch__$precision")")
  elif [ "$precision" = FP32 ]; then
    say ""; say "## UNet training step, PyTorch"; say ""
    say "**skipped**: no python3 here imports a torch that sees the GPU:"
    for t in "${TORCH_TRIED[@]}"; do say "- $t"; done
    [ ${#TORCH_TRIED[@]} = 0 ] && say "- no python3 found"
    SUMMARY+=("| UNet training step, PyTorch | skipped (no torch with CUDA) | |")
  fi
done

say ""; say "## UNet training step, side by side"; say ""
say "DDPM CIFAR-10 UNet (ch 128, mults 1,2,2,2, 2 res blocks, attention at 16x16, dropout 0.1), batch 128, AdamW;"
say "random data. images/s = batch / median step; the sections above give each side's notes."
say ""
say "| side | device | batch | steps | median step ms | images/s | fastest step ms | GPU memory MiB |"
say "|---|---|---|---|---|---|---|---|"
for line in "${UNET_ROWS[@]}"; do [ -n "$line" ] && say "$line"; done

if have bench_cuda_conv; then
  step "conv2d vs cuDNN, TF32 on both sides" 120 md TD_CUDA_TF32=1 "$B/bench_cuda_conv" "${CONV_ARGS[@]}"
fi
fi  # BENCHES

# ---- summary --------------------------------------------------------------------------------
say ""; say "## Summary"; say ""
say "| step | status | time |"; say "|---|---|---|"
for line in "${SUMMARY[@]}"; do say "$line"; done
say ""; say "Total: $(( $(date +%s) - START ))s of a ${BUDGET}s budget."
say ""; say "## Not done"; say ""
if [ ${#NOT_DONE[@]} = 0 ]; then
  say "Nothing: every step ran."
else
  say "Kept from running by the time budget (BUDGET=${BUDGET}s) or a failed build; rerun them alone:"
  for x in "${NOT_DONE[@]}"; do say "- $x"; done
fi
progress "done: $REPORT"
echo
cat "$REPORT"
# Exit 0 when every test case passed or skipped; the benches' verdicts are in the report.
[ "$TESTS_FAILED" = 0 ]
