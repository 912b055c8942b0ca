#!/usr/bin/env bash
# tests/fuzz/run.sh: runs libFuzzer targets one after another and sums them up.
#   tests/fuzz/run.sh BUILD_DIR SECONDS TARGET...      (what `make fuzz` calls)
# Each target fuzzes for SECONDS, at the lowest CPU priority (nice 19), starting from
# the committed seeds in tests/fuzz/corpus/TARGET/ plus what earlier runs found
# (BUILD_DIR/corpus/TARGET/, where new inputs go; the committed seeds stay untouched).
# A crash, leak, sanitizer report, hang (over 60 s on one input) or allocation over
# 512 MB stops that target; its input is saved in BUILD_DIR/crashes/TARGET/ and the
# script exits 1 at the end. Replay one: BUILD_DIR/fuzz_TARGET FILE.
# Logs: BUILD_DIR/logs/TARGET.log. Last line: "fuzz: N targets clean" or the failures.
set -uo pipefail
build=$1 seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)

summary=()
failed=()
for t in "$@"; do
  mkdir -p "$build/corpus/$t" "$build/crashes/$t" "$build/logs"
  dict=()
  [ -f "$here/$t.dict" ] && dict=(-dict="$here/$t.dict")
  log="$build/logs/$t.log"
  echo "== fuzz_$t: ${seconds} s (log: $log)"
  start=$(date +%s)
  # -malloc_limit_mb: no single allocation may exceed 512 MB. Inputs are a few KB, so a
  # bigger one means a header's claim was trusted before it was checked.
  # -timeout: one input taking 60 s is a hang. It is wall-clock time, and at nice 19 on
  # a busy machine a 0.1 s input once took over 10 s: hence the wide margin.
  nice -n 19 "$build/fuzz_$t" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -print_final_stats=1 -artifact_prefix="$build/crashes/$t/" "${dict[@]}" \
    "$build/corpus/$t" "$here/corpus/$t" >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  corpus=$(ls "$build/corpus/$t" | wc -l)
  if [ $rc -eq 0 ]; then
    result="clean"
  else
    result="FAILED (exit $rc): $(grep -m1 -E 'ERROR: |runtime error|property broken|deadly signal|Timeout|out-of-memory' "$log")"
    failed+=("$t")
  fi
  line=$(printf "%-12s %12s execs  %5d s  %5s inputs kept  %s" "$t" "${execs:-?}" "$took" "$corpus" "$result")
  echo "   $line"
  summary+=("$line")
done

echo
echo "fuzz summary (target, executions, seconds, inputs kept in BUILD_DIR/corpus, result):"
for line in "${summary[@]}"; do echo "  $line"; done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} failed: ${failed[*]} (reproducers in $build/crashes/)"
  exit 1
fi
echo "fuzz: $# targets clean"
