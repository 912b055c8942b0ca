#!/usr/bin/env bash
# scripts/gpu-check.sh: everything the GPU half of tinydiffusion can be asked on a machine
# with a GPU, in one command and one report (bench/README.md, "GPU"):
#
#   1. the machine: nvidia-smi -L, the driver, nvcc, the cores
#   2. build (make -j$(nproc), CUDA for sm_90 only, in build-gpu/ and build-gpu-cuda/ so the
#      default build dirs, made for sm_80 + sm_90, are never mixed with it): run_tests and
#      the GPU benches, nothing else
#   3. the CUDA tests: run_tests -tc='*cuda*,*gpu*,*device*' (doctest filters ignore case)
#   4. the benches: our GEMM ladder vs cuBLAS (FP32, TF32); conv2d vs cuDNN (FP32, then
#      TF32 on both sides); fused attention vs the naive 3-kernel form (when
#      bench/cuda_attention.cu exists); a DDPM training step with the DDPM paper's CIFAR-10
#      UNet at batch 128, ours (FP32, TF32) and PyTorch's on the same GPU when a python3
#      there imports a torch that sees the GPU
#
# The report: $OUT/gpu-check.md when OUT is set (the device tool's output folder), else
# bench/results/gpu-check.md; everything the commands printed goes to gpu-check.log beside
# it. Each section gives its exact command, its time and its output; the report is written
# as it goes, so a run stopped early still leaves what it did. The whole run keeps to a
# time budget (BUDGET seconds, default 540: the device tool stops a command at 600 s), and
# each step to a timeout of its own.
#
# Without a GPU it builds the same (a check that everything compiles), prints one line
# saying there is no GPU, and exits 0.
#
#   bash scripts/gpu-check.sh                 build, tests, benches, report
#   bash scripts/gpu-check.sh --quick         shorter benches (fewer sizes and steps)
#   bash scripts/gpu-check.sh --build-only    build and stop
#   bash scripts/gpu-check.sh --no-build      use the binaries already in $GPU_BUILD
#   bash scripts/gpu-check.sh --all-tests     every test of run_tests, not only the GPU ones
#   bash scripts/gpu-check.sh --prepare       (on the machine you start from) copy the headers
#                                             the build needs (Eigen, doctest, stb, zlib) and
#                                             libz.a into build-gpu-deps/, for a GPU machine
#                                             that lacks them; carry that folder there
#   make gpu-check GPU_CHECK_ARGS=--quick     the same through make
#
# Environment: GPU_BUILD (build-gpu), GPU_CUDA_BUILD (build-gpu-cuda), CUDA_ARCHS (90),
# JOBS (all cores), BUDGET (540), REPORT (the report's path), PYTHON (tried first for the
# PyTorch side), CUDNN_INC / CUDNN_LIBDIR (cuDNN outside the toolkit, passed to make; when
# unset and the toolkit has no cuDNN, the script looks in /usr/lib, /usr/local and /opt).
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)

MODE=full QUICK=0 ALL_TESTS=0 BUILD_STEP=1
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --build-only) MODE=build-only ;;
    --no-build) BUILD_STEP=0 ;;
    --all-tests) ALL_TESTS=1 ;;
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
DEPS=build-gpu-deps
START=$(date +%s)
unset TD_CUDA_TF32 NVIDIA_TF32_OVERRIDE TD_CUDA_STANDIN  # each command below says its own precision
export PYTHONUNBUFFERED=1  # a Python step stopped by its timeout still leaves what it printed

# ---- --prepare: the build's system headers, for a machine that has none ------------------
if [ "$MODE" = prepare ]; then
  rm -rf "$DEPS" && mkdir -p "$DEPS/include" "$DEPS/lib" || exit 1
  for h in eigen3 doctest stb zlib.h zconf.h; do
    [ -e "/usr/include/$h" ] || { echo "gpu-check --prepare: no /usr/include/$h here" >&2; exit 1; }
    cp -a "/usr/include/$h" "$DEPS/include/" || exit 1
  done
  libz=$(gcc -print-file-name=libz.a)
  [ -f "$libz" ] && cp "$libz" "$DEPS/lib/"
  echo "gpu-check --prepare: $(du -sh "$DEPS" | cut -f1) in $DEPS/; name it in the device tool's carry: [\"$DEPS\"]"
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
          "$B/run_tests" gpu-benches)
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

# ---- no GPU: build, say so, stop ------------------------------------------------------------
if [ "$HAVE_GPU" = 0 ] || [ "$MODE" = build-only ]; then
  why="no GPU here (nvidia-smi -L lists none)"; [ "$HAVE_GPU" = 1 ] && why="--build-only"
  if [ "$BUILD_STEP" = 0 ]; then echo "gpu-check: $why; --no-build: nothing done"; exit 0; fi
  run_build
  if [ "$BUILD_RC" != 0 ]; then
    tail -n 40 "$WORK/build.log" >&2
    echo "gpu-check: $why, and the build FAILED (rc $BUILD_RC, ${BUILD_S}s): $WORK/build.log;" \
         "command: $(show "${MAKE_CMD[@]}")" >&2
    exit 1
  fi
  echo "gpu-check: $why: built run_tests and the GPU benches in $B/ (${BUILD_S}s, sm_$ARCHS), ran nothing"
  exit 0
fi

# ---- the report -----------------------------------------------------------------------------
: > "$LOG"
say() { printf '%s\n' "$*" >> "$REPORT"; }
progress() { echo "gpu-check [$(( $(date +%s) - START ))s]: $*"; }
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
SUMMARY=()

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
    SUMMARY+=("| $name | skipped (time budget) | |"); STEP_RC=124; return
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
  say "skipped (--no-build): the binaries already in $B/."
fi
have() { [ -x "$B/$1" ]; }
missing() {  # a section for a program the build did not produce
  say ""; say "## $1"; say ""; say "**not run**: $B/$2 was not built (see Build)."
  SUMMARY+=("| $1 | **not built** | |")
}

# ---- tests ----------------------------------------------------------------------------------
if have run_tests; then
  if [ "$ALL_TESTS" = 1 ]; then
    step "Tests: every test case" 300 text "$B/run_tests"
  else
    step "Tests: the CUDA cases" 180 text "$B/run_tests" "-tc=*cuda*,*gpu*,*device*"
  fi
else
  missing "Tests" run_tests
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

# ---- summary --------------------------------------------------------------------------------
say ""; say "## Summary"; say ""
say "| step | status | time |"; say "|---|---|---|"
for line in "${SUMMARY[@]}"; do say "$line"; done
say ""; say "Total: $(( $(date +%s) - START ))s."
progress "done: $REPORT"
echo
cat "$REPORT"
