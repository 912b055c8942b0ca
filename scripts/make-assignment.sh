#!/usr/bin/env bash
# scripts/make-assignment.sh: a student copy of the tree for one course assignment
# (docs/assignments.md). `make assignment NAME=...` calls it.
#
#   scripts/make-assignment.sh NAME           writes build/assignments/NAME/
#   scripts/make-assignment.sh                lists the assignments (also for an unknown NAME); exit 2
#   scripts/make-assignment.sh --check        checks every marker against scripts/assignments.txt
#   scripts/make-assignment.sh --files NAME   prints the files a student edits for NAME, one a line
#   options: --out DIR     write the copy into DIR instead (DIR is replaced if it holds an earlier copy)
#            --solution    the reference copy: NAME's regions keep their solution, markers removed
#            --src DIR     the tree to read (default: the repository that holds this script)
#
# The copy: the source tree without build*/, runs/, data/ and .git; in it the regions
# marked `// BEGIN SOLUTION NAME` ... `// END SOLUTION NAME` become a TODO line plus their
# stub (the region's `// STUB: code` lines, uncommented), the regions marked
# `// BEGIN HIDE NAME` ... `// END HIDE NAME` (code elsewhere that holds the same formula)
# become their stub lines alone, and every other assignment's markers are removed (their
# solutions stay). Plus ASSIGNMENT.md (the task and its written question), hints.md (three
# tiers, the formula in the last) and grade.sh (builds the tests, runs each graded part,
# prints "score: X/N"). The copy's scripts/assignments.txt keeps no hints or fingerprints.
# A file that only lost markers keeps its modification time, so a build folder copied in
# from the solution tree recompiles only the stubbed files (tests/test_assignments.cpp
# relies on this). Errors name file:line and exit 1.
set -euo pipefail

die() { echo "make-assignment: $*" >&2; exit 1; }

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAME="" OUT="" MODE=stub CHECK=0 FILES=0
while [ $# -gt 0 ]; do
    case "$1" in
        --src) [ $# -ge 2 ] || die "--src needs a folder"; SRC="$(cd "$2" && pwd)" || die "--src $2: no such folder"; shift 2;;
        --out) [ $# -ge 2 ] || die "--out needs a folder"; OUT="$2"; shift 2;;
        --solution) MODE=solution; shift;;
        --check) CHECK=1; shift;;
        --files) FILES=1; shift;;
        -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0;;
        -*) die "unknown option $1 (see --help)";;
        *) [ -z "$NAME" ] || die "one NAME only (got '$NAME' and '$1')"; NAME="$1"; shift;;
    esac
done
MAP="$SRC/scripts/assignments.txt"
[ -f "$MAP" ] || die "$MAP: no such file (the list of assignments)"

# ---- the list: scripts/assignments.txt -> one line per assignment -------------------------
# name, title, line of its name: in the file, separated by US (\037: not a blank, so read
# keeps an empty field). Checks the file's form.
read_map() {
    awk -v file="scripts/assignments.txt" '
    function err(msg) { printf "%s:%d: %s\n", file, NR, msg > "/dev/stderr"; bad = 1; exit 1 }
    function flush() {
        if (name == "") return
        if (title == "") { NR = at; err("assignment " name " has no title:") }
        if (!parts) { NR = at; err("assignment " name " has no part: (a graded part: points | name | -tc filter | -sc filter)") }
        if (!question) { NR = at; err("assignment " name " has no question: (its written question)") }
        if (!hint3) { NR = at; err("assignment " name " has no hint3: (the last hint tier: the formula)") }
        printf "%s\037%s\037%d\n", name, title, at
        name = ""; title = ""; parts = 0; question = 0; hint3 = 0
    }
    /^#/ { next }
    /^[ \t]*$/ { flush(); next }
    {
        key = $0; sub(/:.*$/, "", key); val = $0
        if (index(val, ":") == 0) err("expected key: value, got \"" $0 "\"")
        val = substr(val, index(val, ":") + 1); sub(/^ /, "", val)
        if (key == "name") {
            if (name != "") err("name: " val " inside the record of " name " (records are separated by a blank line)")
            if (val !~ /^[a-z0-9][a-z0-9-]*$/) err("name \"" val "\": use a-z, 0-9 and -")
            if (val in seen) err("assignment " val " listed twice (first at line " seen[val] ")")
            name = val; seen[val] = NR; at = NR
        } else if (name == "") err("a record starts with name:")
        else if (key == "title") title = val
        else if (key == "part") {
            n = split(val, f, /[ ]*[|][ ]*/)
            if (n != 4 || f[1] !~ /^[1-9][0-9]*$/ || f[2] == "" || f[3] == "")
                err("part: write points | name | -tc filter | -sc filter (the last may be empty), got \"" val "\"")
            if ((f[3] f[4]) ~ /[\047"\t\037]/) err("part: no quotes or tabs in a test filter")
            parts++
        } else if (key == "question") question = 1
        else if (key == "hint3") hint3 = 1
        else if (key == "fingerprint") { if (val == "") err("fingerprint: an empty string") }
        else if (key == "strip") {
            n = split(val, f, / :: /)
            if (n < 2 || n > 3 || f[1] == "" || f[2] == "")
                err("strip: write path :: first line :: last line (the last may be left out: one line), got \"" val "\"")
        }
        else if (key != "about" && key != "hint1" && key != "hint2")
            err("unknown key " key ": (name, title, part, about, question, hint1, hint2, hint3, fingerprint, strip)")
    }
    END { if (!bad) flush(); exit bad }' "$MAP"
}

# The KEY: lines of one assignment (about, question, hint1, part, ...), as written.
map_key() {
    awk -v want="$1" -v key="$2" '
    /^name:/ { v = $0; sub(/^name: ?/, "", v); cur = v; next }
    index($0, key ":") == 1 && cur == want { v = substr($0, length(key) + 2); sub(/^ /, "", v); print v }' "$MAP"
}

# ---- the markers ---------------------------------------------------------------------------
# One awk program reads one source file. mode=check prints each region as
# "name<TAB>file<TAB>line<TAB>kind" (kind: SOLUTION or HIDE); mode=rewrite prints the file
# with the regions named `target` replaced by their stub (stub=1) and every other marker
# line dropped, and writes to `side` one line per stubbed SOLUTION region: TODO line,
# excerpt start, excerpt end, the enclosing signature. A HIDE region becomes its stub lines
# alone: no TODO, no default stub.
MARKERS_AWK='
function err(line, msg) { printf "%s:%d: %s\n", file, line, msg > "/dev/stderr"; bad = 1; exit 1 }
# A printed line, in the output file: remembers where the enclosing function starts (its
# first column-0 line with a parenthesis, with the comment block right above it).
function emit(s) {
    print s; out++
    if (s ~ /^\/\//) { if (!incomment) cstart = out; incomment = 1; return }
    if (s ~ /^[A-Za-z_].*\(/) { sigstart = incomment ? cstart : out; sigtext = s }
    incomment = 0
}
{
    low = tolower($0)
    begin_like = low ~ /^[ \t]*\/\/[ \t]*begin[ \t]+(solution|hide)/
    end_like = low ~ /^[ \t]*\/\/[ \t]*end[ \t]+(solution|hide)/
    stub_like = $0 ~ /^[ \t]*\/\/[ \t]*STUB[ \t]*:/  # (a lower-case "stub:" is prose)
    replacing = mode == "rewrite" && stub && open == target
}
begin_like {
    if ($0 !~ /^[ \t]*\/\/ BEGIN (SOLUTION|HIDE) [a-z0-9][a-z0-9-]*(: .*)?[ \t]*$/)
        err(NR, "malformed marker: write // BEGIN SOLUTION name, // BEGIN SOLUTION name: hint or // BEGIN HIDE name (name: a-z, 0-9, -)")
    rest = $0; sub(/^[ \t]*\/\/ BEGIN /, "", rest)
    k = rest; sub(/ .*$/, "", k); sub(/^[A-Z]+ /, "", rest)
    name = rest; sub(/[: \t].*$/, "", name)
    hint = ""; if (index(rest, ": ") > 0) hint = substr(rest, index(rest, ": ") + 2)
    if (open != "") err(NR, "BEGIN " k " " name " inside region " open " (opened at line " openline "): regions do not nest")
    open = name; openline = NR; head = 1; nstub = 0; kind = k
    indent = $0; sub(/\/\/.*$/, "", indent)
    if (mode == "check") printf "%s\t%s\t%d\t%s\n", name, file, NR, kind
    if (mode == "rewrite" && stub && name == target && kind == "SOLUTION") {
        emit(indent "// TODO(" name "): " (hint != "" ? hint : "write this part"))
        todo = out
    }
    next
}
stub_like {
    if ($0 !~ /^[ \t]*\/\/ STUB:( .*)?$/) err(NR, "malformed marker: write // STUB: code")
    if (!head) err(NR, "// STUB: outside the head of a region (stub lines come right after // BEGIN SOLUTION)")
    nstub++
    if (replacing) { code = $0; sub(/\/\/ STUB: ?/, "", code); emit(code) }
    next
}
end_like {
    if ($0 !~ /^[ \t]*\/\/ END (SOLUTION|HIDE) [a-z0-9][a-z0-9-]*[ \t]*$/)
        err(NR, "malformed marker: write // END SOLUTION name or // END HIDE name")
    k = $0; sub(/^[ \t]*\/\/ END /, "", k); name = k; sub(/ .*$/, "", k)
    sub(/^[A-Z]+ /, "", name); sub(/[ \t]+$/, "", name)
    if (open == "") err(NR, "END " k " " name " without a BEGIN " k " " name)
    if (name != open || k != kind) err(NR, "END " k " " name " closes region " kind " " open " (opened at line " openline ")")
    if (replacing && kind == "SOLUTION" && nstub == 0) emit(indent "td::fail(\"assignment " name ": not implemented yet\");")
    if (replacing && kind == "SOLUTION") printf "%d\t%d\t%d\t%s\n", todo, sigstart ? sigstart : todo, out, sigtext > side
    open = ""; head = 0
    next
}
{
    head = 0
    if (mode == "rewrite" && !replacing) emit($0)
}
END {
    if (!bad && open != "") err(openline, "BEGIN " kind " " open " has no END " kind " " open)
    exit bad
}'

# The source files that mention a marker (C, C++ and CUDA; not build*/, runs/, data/).
marked_files() {
    (cd "$SRC" && grep -rlIE '^[[:space:]]*//[[:space:]]*([Bb][Ee][Gg][Ii][Nn]|[Ee][Nn][Dd])[[:space:]]+([Ss][Oo][Ll][Uu][Tt][Ii][Oo][Nn]|[Hh][Ii][Dd][Ee])|^[[:space:]]*//[[:space:]]*STUB[[:space:]]*:' \
        --include='*.cpp' --include='*.h' --include='*.cc' --include='*.hpp' --include='*.cu' --include='*.cuh' \
        --exclude-dir=build --exclude-dir='build-*' --exclude-dir=runs --exclude-dir=data --exclude-dir=.git . \
        2>/dev/null | sed 's|^\./||' | LC_ALL=C sort) || true
}

# Every region in the tree, "name<TAB>file<TAB>line<TAB>kind", checking every marker; then
# that the regions and the list agree (each region's name is listed, each listed name has a
# SOLUTION region).
scan() {
    local f
    REGIONS=""
    for f in $(marked_files); do
        REGIONS+="$(awk -v mode=check -v file="$f" "$MARKERS_AWK" "$SRC/$f")"$'\n' || exit 1
    done
    REGIONS="$(printf '%s' "$REGIONS" | sed '/^$/d')"
    local name file line
    while IFS=$'\t' read -r name file line _; do
        [ -n "$name" ] || continue
        printf '%s\n' "$MAP_LINES" | cut -d$'\037' -f1 | grep -qxF "$name" ||
            die "$file:$line: region $name is not listed in scripts/assignments.txt (add a record for it)"
    done <<< "$REGIONS"
    local at
    while IFS=$'\037' read -r name _ at; do
        printf '%s\n' "$REGIONS" | awk -F'\t' '$4 == "SOLUTION"' | cut -f1 | grep -qxF "$name" ||
            die "scripts/assignments.txt:$at: assignment $name has no region in the sources (no // BEGIN SOLUTION $name)"
    done <<< "$MAP_LINES"
}

files_of() { printf '%s\n' "$REGIONS" | awk -F'\t' -v n="$1" '$1 == n && $4 == "SOLUTION" { print $2 ":" $3 }' | paste -sd' ' -; }

list_and_exit() {
    echo "usage: make assignment NAME=<name>   (scripts/make-assignment.sh NAME; --help for more)" >&2
    echo "assignments:" >&2
    local name title
    while IFS=$'\037' read -r name title _; do
        printf '  %-20s %s  [%s]\n' "$name" "$title" "$(files_of "$name" | tr ' ' '\n' | sed 's/:[0-9]*$//' | uniq | paste -sd' ' -)" >&2
    done <<< "$MAP_LINES"
    exit 2
}

MAP_LINES="$(read_map)" || exit 1
scan

if [ "$CHECK" = 1 ]; then
    echo "make-assignment: $(printf '%s\n' "$MAP_LINES" | wc -l) assignments, $(printf '%s\n' "$REGIONS" | wc -l) regions, every marker well formed"
    exit 0
fi
[ -n "$NAME" ] || list_and_exit
RECORD="$(printf '%s\n' "$MAP_LINES" | awk -F'\037' -v n="$NAME" '$1 == n')"
[ -n "$RECORD" ] || { echo "make-assignment: unknown assignment '$NAME'" >&2; list_and_exit; }
IFS=$'\037' read -r _ TITLE _ <<< "$RECORD"
if [ "$FILES" = 1 ]; then files_of "$NAME" | tr ' ' '\n' | sed 's/:[0-9]*$//' | uniq; exit 0; fi
# The graded parts, "points|name|-tc filter|-sc filter", blanks around the bars dropped.
PARTS="$(map_key "$NAME" part | sed 's/[[:space:]]*|[[:space:]]*/|/g; s/[[:space:]]*$//')"
TOTAL="$(printf '%s\n' "$PARTS" | awk -F'|' '{ n += $1 } END { print n }')"

# ---- the copy ------------------------------------------------------------------------------
[ -n "$OUT" ] || OUT="$SRC/build/assignments/$NAME"
mkdir -p "$(dirname "$OUT")"
OUT="$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")"
case "$OUT/" in
    "$SRC"/build/*|"$SRC"/build-*/*|"$SRC"/runs/*|"$SRC"/data/*) ;;
    "$SRC"/*) die "--out $OUT is inside the tree it copies (use build/...)";;
esac
if [ -e "$OUT" ]; then
    [ -f "$OUT/ASSIGNMENT.md" ] || [ -z "$(ls -A "$OUT")" ] ||
        die "$OUT exists and is not an assignment copy (no ASSIGNMENT.md): not replacing it"
    rm -rf "$OUT"
fi
mkdir -p "$OUT"
shopt -s nullglob dotglob
for entry in "$SRC"/*; do
    case "$(basename "$entry")" in build|build-*|runs|data|.git) continue;; esac
    cp -a "$entry" "$OUT/"
done
shopt -u nullglob dotglob
find "$OUT" -name __pycache__ -type d -prune -exec rm -rf {} +
find "$OUT" -name '*.tmp' -type f -delete

SIDE="$OUT/.regions.tmp"
: > "$SIDE"
STUBBED=()
for f in $(marked_files); do
    stub=0
    [ "$MODE" = stub ] && printf '%s\n' "$REGIONS" | awk -F'\t' -v n="$NAME" -v f="$f" '$1 == n && $2 == f { ok = 1 } END { exit !ok }' && stub=1
    : > "$SIDE.one"
    awk -v mode=rewrite -v target="$NAME" -v stub="$stub" -v side="$SIDE.one" -v file="$f" "$MARKERS_AWK" \
        "$SRC/$f" > "$OUT/$f.tmp" || exit 1
    mv "$OUT/$f.tmp" "$OUT/$f"
    if [ "$stub" = 1 ]; then
        STUBBED+=("$f")
        sed "s|^|$f\t|" "$SIDE.one" >> "$SIDE"
    else
        touch -r "$SRC/$f" "$OUT/$f"  # only markers removed: the solution tree's objects still match
    fi
done
rm -f "$SIDE.one"

# strip: lines of files that cannot hold markers (docs, rendered notebooks) that state the
# answer: from the first line that contains `first` to the next one after it that contains
# `last` (without a last: that one line), gone from the student copy. An anchor that no longer matches is an error: the leak would be back.
if [ "$MODE" = stub ]; then
    while IFS= read -r spec; do
        [ -n "$spec" ] || continue
        IFS=$'\037' read -r spath first last <<< "$(printf '%s' "$spec" | sed 's/ :: /\x1f/g')"
        [ -f "$OUT/$spath" ] || die "scripts/assignments.txt: strip: $spath: no such file (assignment $NAME)"
        awk -v a="$first" -v b="$last" '
            state == 0 && index($0, a) { state = b == "" ? 2 : 1; next }
            state == 1 { if (index($0, b)) state = 2; next }
            { print }
            END { exit state == 2 ? 0 : state == 0 ? 3 : 4 }' "$OUT/$spath" > "$OUT/$spath.tmp" || {
            rc=$?; rm -f "$OUT/$spath.tmp"
            [ $rc = 3 ] && die "scripts/assignments.txt: strip: $spath has no line with \"$first\" (assignment $NAME)"
            die "scripts/assignments.txt: strip: $spath has no line with \"$last\" after \"$first\" (assignment $NAME)"
        }
        mv "$OUT/$spath.tmp" "$OUT/$spath"
    done <<< "$(map_key "$NAME" strip)"
fi

# The copy's list keeps no hints and no fingerprints (the answers, in other words).
sed -i -E '/^(hint[123]|fingerprint|strip):/d' "$OUT/scripts/assignments.txt"

# ---- grade.sh ------------------------------------------------------------------------------
{
cat <<EOF
#!/usr/bin/env bash
# grade.sh: grades the assignment $NAME (ASSIGNMENT.md). Builds the test runner, then runs
# the tests of each graded part; a part scores its points when all its tests pass. Prints
# one "part NAME: P/POINTS" line per part, then "score: X/$TOTAL"; exit status 0 on full
# marks only.
#   bash grade.sh                 build/run_tests
#   bash grade.sh SANITIZE=1      build-sanitize/run_tests, under ASan + UBSan (any make switch passes)
#   bash grade.sh BUILD=DIR ...   another build folder
set -uo pipefail
cd "\$(dirname "\$0")"
# points|part|doctest -tc filter|doctest -sc filter (may be empty)
parts=(
EOF
printf '%s\n' "$PARTS" | sed "s/'/'\\\\''/g; s/^/    '/; s/\$/'/"
cat <<'EOF'
)
build=build
case " $* " in
    *" SANITIZE=1 "*) build=build-sanitize;;
    *" DEBUG=1 "*) case " $* " in *" OMP=1 "*) build=build-debug-omp;; *) build=build-debug;; esac;;
    *" PORTABLE=1 "*) build=build-portable;;
esac
for a in "$@"; do case "$a" in BUILD=*) build="${a#BUILD=}";; esac; done
EOF
cat <<EOF
if ! make --no-print-directory -j"\${JOBS:-2}" "\$@" BUILD="\$build" "\$build/run_tests"; then
    echo "score: 0/$TOTAL"
    echo "grade: FAIL ($NAME): the build failed"
    exit 1
fi
EOF
cat <<'EOF'
: > "$build/grade.log"
got=0 total=0
for p in "${parts[@]}"; do
    IFS='|' read -r points part tc sc <<< "$p"
    args=("-tc=$tc")
    [ -z "$sc" ] || args+=("-sc=$sc")
    "$build/run_tests" "${args[@]}" > "$build/grade-part.log" 2>&1
    rc=$?
    { echo "== part $part: run_tests ${args[*]}"; cat "$build/grade-part.log"; } >> "$build/grade.log"
    total=$((total + points))
    # a filter that matches nothing passes vacuously: that is a broken grader, not a pass
    if grep -q '^0 passed, 0 failed' "$build/grade-part.log"; then
        echo "part $part: 0/$points (no test ran: the grader is broken, tell the course staff)"
    elif [ $rc -eq 0 ]; then
        got=$((got + points))
        echo "part $part: $points/$points"
    else
        tail -n 30 "$build/grade-part.log" | sed 's/^/    /'
        echo "part $part: 0/$points"
    fi
done
echo "score: $got/$total"
EOF
cat <<EOF
if [ "\$got" -eq "\$total" ]; then echo "grade: PASS ($NAME)"; exit 0; fi
echo "grade: FAIL ($NAME) (the whole log: \$build/grade.log)"
exit 1
EOF
} > "$OUT/grade.sh"
chmod +x "$OUT/grade.sh"

# ---- ASSIGNMENT.md and hints.md ------------------------------------------------------------
{
    echo "# Assignment $NAME: $TITLE"
    echo
    [ "$MODE" = stub ] || { echo "(The reference copy: every solution is in place.)"; echo; }
    map_key "$NAME" about
    echo
    echo "## What you hand in"
    echo
    echo "1. **The derivation**, in \`ANSWERS.md\` at the top of this folder: derive the formula"
    echo "   you implement from the definitions above before you write code. \`hints.md\` holds"
    echo "   three tiers of hints; read them in order and only as far as you need (tier 3 states"
    echo "   the formula: say in ANSWERS.md if you read it)."
    echo "2. **The code**, in place of each stub listed under Where. \`bash grade.sh\` checks it."
    echo "3. **The answer to the written question** below, in \`ANSWERS.md\`."
    echo
    echo "## Written question"
    echo
    map_key "$NAME" question
    echo
    echo "## Where"
    echo
    if [ "$MODE" = stub ]; then
        while IFS=$'\t' read -r f todo from to sig; do
            fn="${sig%%(*}"; fn="${fn##* }"
            echo "- \`$f:$todo\`, in \`$fn\`: the line \`TODO($NAME)\` and the stub under it."
        done < "$SIDE"
        echo
        echo "Replace each stub with your code; keep the signatures (the rest of the engine calls them)."
        echo "What you start from:"
        while IFS=$'\t' read -r f todo from to sig; do
            echo
            echo "\`$f\`, lines $from-$to:"
            echo
            echo '```cpp'
            sed -n "${from},${to}p" "$OUT/$f"
            echo '```'
        done < "$SIDE"
    else
        echo "In: $(files_of "$NAME")."
    fi
    echo
    echo "## Grading"
    echo
    echo "    bash grade.sh                # builds build/run_tests, runs the graded parts"
    echo "    bash grade.sh SANITIZE=1     # the same under AddressSanitizer + UBSan (build-sanitize/)"
    echo
    echo "A part scores its points when all of its tests pass (doctest filters of \`build/run_tests\`):"
    echo
    echo "| part | points | tests |"
    echo "| --- | --- | --- |"
    while IFS='|' read -r points part tc sc; do
        echo "| $part | $points | \`-tc=\"$tc\"\`${sc:+ \`-sc=\"$sc\"\`} |"
    done <<< "$PARTS"
    echo
    echo "grade.sh prints one line per part, then \`score: X/$TOTAL\`, then \`grade: PASS\` (full marks) or"
    echo "\`grade: FAIL\`. The stub scores 0: its tests fail with \"not implemented yet\". Do not edit"
    echo "the tests: the course grades your copy with its own. \`make test\` runs every other test as"
    echo "well: the ones that use your code fail until it is written. To step through it:"
    echo "\`make DEBUG=1\` and docs/debugging.md."
} > "$OUT/ASSIGNMENT.md"
{
    echo "# Hints for $NAME"
    echo
    echo "Read one tier at a time, and try again before you read the next."
    for tier in 1 2 3; do
        echo
        case $tier in
            1) echo "## Tier 1: where to start";;
            2) echo "## Tier 2: the key step";;
            3) echo "## Tier 3: the formula";;
        esac
        echo
        map_key "$NAME" "hint$tier"
    done
} > "$OUT/hints.md"
rm -f "$SIDE"

if [ "$MODE" = stub ]; then
    echo "make-assignment: wrote ${OUT#"$SRC"/}/ (the stub of $NAME in ${STUBBED[*]})"
else
    echo "make-assignment: wrote ${OUT#"$SRC"/}/ (the reference solution of $NAME, markers removed)"
fi
echo "  read ${OUT#"$SRC"/}/ASSIGNMENT.md; grade with: (cd ${OUT#"$SRC"/} && bash grade.sh)"
