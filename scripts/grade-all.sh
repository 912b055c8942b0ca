#!/usr/bin/env bash
# scripts/grade-all.sh: grades a class's submissions in one go (docs/assignments.md).
# `make grade-all DIR=...` calls it.
#
#   scripts/grade-all.sh DIR [--out FOLDER]
#
# DIR holds one folder per student, each the student copy `make assignment` handed out,
# worked on (ASSIGNMENT.md names the assignment), or a .tgz / .tar.gz of one. For each,
# a fresh copy of the assignment is made from this tree and only the student's versions of
# the files with the task (`make-assignment.sh --files NAME`) go into it: the tests, the
# graders and everything else are the course's, whatever the submission holds. Then its
# grade.sh runs. Writes FOLDER/grades.csv (student,assignment,score,points,parts) and
# FOLDER/STUDENT/grade.txt (grade.sh's whole output); FOLDER defaults to build/grade-all.
# Exit status 0 when every submission could be graded (whatever its score), 1 otherwise,
# 2 on a usage error.
set -uo pipefail

usage() { echo "usage: make grade-all DIR=submissions   (scripts/grade-all.sh DIR [--out FOLDER])" >&2; exit 2; }
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="" OUT="$SRC/build/grade-all"
while [ $# -gt 0 ]; do
    case "$1" in
        --out) [ $# -ge 2 ] || usage; OUT="$2"; shift 2;;
        -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0;;
        -*) echo "grade-all: unknown option $1" >&2; usage;;
        *) [ -z "$DIR" ] || { echo "grade-all: one DIR only (got '$DIR' and '$1')" >&2; usage; }; DIR="$1"; shift;;
    esac
done
[ -n "$DIR" ] || { echo "grade-all: DIR is missing: the folder of submissions" >&2; usage; }
[ -d "$DIR" ] || { echo "grade-all: DIR=$DIR: no such folder" >&2; exit 2; }
DIR="$(cd "$DIR" && pwd)"
mkdir -p "$OUT" || exit 2
OUT="$(cd "$OUT" && pwd)"
case "$OUT/" in "$DIR"/*) echo "grade-all: --out $OUT is inside DIR (the submissions stay as they came)" >&2; exit 2;; esac

# The course's build, copied into each fresh copy so that only the student's files compile.
BUILD="$SRC/build"
[ -f "$BUILD/libtinydiffusion.a" ] || echo "grade-all: no build/ in the course's tree (run make first): each submission builds from scratch, slowly" >&2

CSV="$OUT/grades.csv"
echo "student,assignment,score,points,parts" > "$CSV"
bad=0 n=0
shopt -s nullglob
for sub in "$DIR"/*; do
    student="$(basename "$sub")"
    case "$student" in *.tgz) student="${student%.tgz}";; *.tar.gz) student="${student%.tar.gz}";; esac
    [ -d "$sub" ] || [ -f "$sub" ] || continue
    [ -d "$sub" ] || case "$sub" in *.tgz|*.tar.gz) ;; *) continue;; esac
    n=$((n + 1))
    work="$OUT/$student"
    rm -rf "$work" && mkdir -p "$work"
    row() { echo "$student,$1,$2,$3,\"$4\"" >> "$CSV"; printf '  %-24s %-20s %s\n' "$student" "$1" "$5"; }
    # the submission, unpacked when it is an archive: the folder that holds ASSIGNMENT.md
    from="$sub"
    if [ -f "$sub" ]; then
        mkdir -p "$work/unpacked" && tar xzf "$sub" -C "$work/unpacked" 2>"$work/grade.txt" ||
            { row "" "" "" "" "error: $sub is not a readable .tgz"; bad=1; continue; }
        from="$(dirname "$(find "$work/unpacked" -maxdepth 3 -name ASSIGNMENT.md | head -n 1)")"
    fi
    if [ ! -f "$from/ASSIGNMENT.md" ]; then
        row "" "" "" "" "error: no ASSIGNMENT.md (not a copy made by make assignment)"; bad=1; continue
    fi
    name="$(sed -n '1s/^# Assignment \([a-z0-9-]*\):.*/\1/p' "$from/ASSIGNMENT.md")"
    files="$(bash "$SRC/scripts/make-assignment.sh" --files "$name" 2>/dev/null)"
    if [ -z "$name" ] || [ -z "$files" ]; then
        row "$name" "" "" "" "error: ASSIGNMENT.md names no assignment of this course"; bad=1; continue
    fi
    copy="$work/copy"
    bash "$SRC/scripts/make-assignment.sh" --out "$copy" "$name" > "$work/grade.txt" 2>&1 ||
        { row "$name" "" "" "" "error: make-assignment failed (see $work/grade.txt)"; bad=1; continue; }
    if [ -f "$BUILD/libtinydiffusion.a" ]; then
        mkdir -p "$copy/build" && cp -a "$BUILD/obj" "$BUILD/libtinydiffusion.a" "$copy/build/" 2>/dev/null
        [ -f "$BUILD/run_tests" ] && cp -a "$BUILD/run_tests" "$copy/build/"
    fi
    missing=""
    for f in $files; do
        if [ -f "$from/$f" ]; then cp "$from/$f" "$copy/$f" && touch "$copy/$f"
        else missing+=" $f"; fi
    done
    [ -z "$missing" ] || echo "grade-all: $student: not in the submission, graded as handed out:$missing" >> "$work/grade.txt"
    (cd "$copy" && bash grade.sh) >> "$work/grade.txt" 2>&1
    score="$(sed -n 's/^score: \([0-9]*\)\/\([0-9]*\)$/\1 \2/p' "$work/grade.txt" | tail -n 1)"
    parts="$(sed -n 's/^part \(.*\): \([0-9]*\/[0-9]*\).*/\1 \2/p' "$work/grade.txt" | paste -sd';' - | tr '"' "'")"
    if [ -z "$score" ]; then
        row "$name" "" "" "$parts" "error: no score line (see $work/grade.txt)"; bad=1; continue
    fi
    read -r got total <<< "$score"
    row "$name" "$got" "$total" "$parts" "score: $got/$total${missing:+ (missing:$missing)}"
    rm -rf "$copy/build" "$work/unpacked"  # the build is large; grade.txt keeps the log
done
[ "$n" -gt 0 ] || { echo "grade-all: DIR=$DIR holds no submission (one folder or .tgz per student)" >&2; exit 2; }
echo "grade-all: $n submissions graded into ${CSV#"$SRC"/}"
exit $bad
