# shellcheck shell=bash
# bench/common.sh: what the bench/run_*.sh scripts share; sourced by them from the
# repository root. Messages name the script that sources it.
#
# Environment: ROUNDS (default 3): ours and torch run alternately, ROUNDS times each;
#              PYTHON (default /usr/bin/python3, Debian's, which has python3-torch);
#              WAIT_IDLE (default 60): seconds to wait for a busy machine to go idle first.

SELF=$(basename "$0")

# bench_args DEFAULT_BINARY "$@": BIN (a first argument not starting with '-', else the
# default), ARGS (the rest, for both programs) and the environment's settings.
bench_args() {
  BIN=$1; shift
  if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then BIN=$1; shift; fi
  ARGS=("$@")
  ROUNDS=${ROUNDS:-3}
  PYTHON=${PYTHON:-/usr/bin/python3}
  WAIT_IDLE=${WAIT_IDLE:-60}
}

# bench_prepare NAME: the bench-only dependencies (PyTorch, NumPy, OpenBLAS), $BIN built,
# have_torch (1 when $PYTHON imports torch), and LOG, the folder for every round's raw
# output: <build dir>/bench-NAME/<date-time>.
bench_prepare() {
  if ! bash scripts/install-deps.sh --bench; then
    echo "$SELF: warning: could not install the bench dependencies; going on with what is there" >&2
  fi
  if [ ! -x "$BIN" ]; then
    make --no-print-directory "$BIN" || { echo "$SELF: cannot build $BIN" >&2; exit 1; }
  fi
  have_torch=0
  if "$PYTHON" -c 'import torch' 2>/dev/null; then have_torch=1; fi
  LOG="$(dirname "$BIN")/bench-$1/$(date +%Y%m%d-%H%M%S)"
  mkdir -p "$LOG"
}

# How busy the machine is: the share of CPU time idle over one second.
cpu_idle_pct() {
  local a b
  a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
  local total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  echo $(( total > 0 ? 100 * (b[4] - a[4]) / total : 0 ))
}

# Sets idle. Other work on the machine (a build, another benchmark) halves a 2-core
# result: wait a little for it to finish, then go on regardless (the header says how
# idle it was).
wait_for_idle() {
  idle=$(cpu_idle_pct)
  local waited=0
  while [ "$idle" -lt 90 ] && [ "$waited" -lt "$WAIT_IDLE" ]; do
    [ "$waited" -eq 0 ] && echo "$SELF: machine only ${idle}% idle; waiting up to ${WAIT_IDLE}s for it to quieten" >&2
    sleep 4; waited=$((waited + 5))
    idle=$(cpu_idle_pct)
  done
}

# MALLOC (default steady): the glibc malloc settings both sides run with, and malloc_note
# for the header. steady: GLIBC_TUNABLES mmap_threshold=32 MiB and trim_threshold=1 GiB, so
# freed tensors are reused instead of being returned to the kernel and page-faulted back
# in at every call; default: glibc's own heuristics, under which a process lands, by the
# luck of its allocation history, in a fast or a page-faulting regime.
malloc_settings() {
  MALLOC=${MALLOC:-steady}
  case "$MALLOC" in
    steady)  export GLIBC_TUNABLES="glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}"
             malloc_note="steady: GLIBC_TUNABLES=$GLIBC_TUNABLES, both sides (MALLOC=default: glibc's own)" ;;
    default) malloc_note="glibc defaults${GLIBC_TUNABLES:+ + GLIBC_TUNABLES=$GLIBC_TUNABLES} (numbers may jump between processes: page faults)" ;;
    *) echo "$SELF: MALLOC=$MALLOC: known are steady and default" >&2; exit 2 ;;
  esac
}

# Sets busy: when wait_for_idle left the machine busy, who is busy (the header repeats it).
busy_processes() {
  busy=""
  if [ "$idle" -lt 90 ]; then
    busy=$(ps -eo pcpu=,pid=,comm= --sort=-pcpu | head -3 | awk '$1 >= 10 { printf "%s%s (pid %s) %s%%", sep, $3, $2, $1; sep = ", " }')
  fi
}

# run_rounds TORCH_SCRIPT: ours, then torch (when there is torch), ROUNDS times, into
# $LOG/ours.R.txt and $LOG/torch.R.txt; then idle_after.
run_rounds() {
  local r
  for r in $(seq 1 "$ROUNDS"); do
    echo "round $r/$ROUNDS: ours" >&2
    "$BIN" "${ARGS[@]}" > "$LOG/ours.$r.txt" || { echo "$SELF: $BIN failed (round $r)" >&2; exit 1; }
    if [ "$have_torch" = 1 ]; then
      echo "round $r/$ROUNDS: torch" >&2
      "$PYTHON" "$1" "${ARGS[@]}" > "$LOG/torch.$r.txt" \
        || { echo "$SELF: $1 failed (round $r)" >&2; exit 1; }
    fi
  done
  idle_after=$(cpu_idle_pct)
}

# field SIDE KEY: the value of the '# KEY ' line in round 1's output of SIDE (ours, torch).
field() {
  sed -n "s/^# $2 //p" "$LOG/$1.1.txt"
}

# The report's first lines: a blank line, TITLE, date, machine.
print_title() {
  echo
  echo "$1"
  echo "date:    $(date '+%Y-%m-%d %H:%M:%S %Z')"
  echo "machine: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores online"
}

print_no_torch() {
  echo "torch:   NOT AVAILABLE: $PYTHON cannot import torch (Debian: apt-get install python3-torch, and use /usr/bin/python3); our numbers alone"
}

print_method() {
  echo "method:  $(field ours method); $ROUNDS alternating rounds, best round shown"
}

# print_idle BUSY_NOTE: the idle line (BUSY_NOTE follows it when the machine was busy),
# the raw-output folder and a blank line.
print_idle() {
  echo "idle:    ${idle}% of CPU idle before, ${idle_after}% just after$([ "$idle" -lt 90 ] && echo "  ($1)")"
  echo "raw:     $LOG"
  echo
}

# Every round's output, ours and torch, in round order, for the table's awk.
round_files() {
  # sorted on the file names alone: a dot in $LOG's own path (./build/...) must not shift the key
  (cd "$LOG" && ls ours.*.txt torch.*.txt 2>/dev/null) | sort -t. -k2,2n | sed "s|^|$LOG/|"
}

# table_awk PROGRAM: runs the report's awk PROGRAM over every round's output, after what
# both tables share: impl (ours or torch, the file being read), and
#   record(KEY, VALUE, BETTER, FMT): VALUE of row KEY for this side; best[impl SUBSEP KEY]
#     keeps the best round's (BETTER "max" or "min"), rounds[impl SUBSEP KEY] lists every
#     round's as FMT, joined by '/'; order[1..n] the keys as first seen (seen[KEY]);
#   print_rounds(TITLE, WIDTH): TITLE after a blank line, then a line per key: every
#     round of ours, and of torch when there is torch.
table_awk() {
  awk -v have_torch="$have_torch" '
    function record(key, v, better, fmt,   k) {
      if (!(key in seen)) { seen[key] = 1; order[++n] = key }
      k = impl SUBSEP key
      if (!(k in best) || (better == "max" ? v > best[k] : v < best[k])) best[k] = v
      if (k in rounds) rounds[k] = rounds[k] "/" sprintf(fmt, v)
      else rounds[k] = sprintf(fmt, v)
    }
    function print_rounds(title, width,   i, key, line) {
      printf "\n%s\n", title
      for (i = 1; i <= n; ++i) {
        key = order[i]
        line = sprintf("  %-" width "s ours %s", key, rounds["ours" SUBSEP key])
        if (have_torch) line = line sprintf("   torch %s", rounds["torch" SUBSEP key])
        print line
      }
    }
    FNR == 1 { impl = (FILENAME ~ /\/torch\./) ? "torch" : "ours" }
  '"$1" $(round_files)
}
