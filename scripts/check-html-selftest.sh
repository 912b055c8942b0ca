#!/usr/bin/env bash
# scripts/check-html-selftest.sh: tests scripts/check-html.sh on the pages in tests/html/,
# since a checker that passes everything looks exactly like one that works: the good page
# must pass (and get a full-page screenshot), the bad one must fail naming each broken
# picture and link and nothing else, a missing page must fail, and a missing Chromium
# must give exit status 3. Runs on a copy in a temporary folder so that the screenshots
# stay out of the source tree. Exits 0 when every check holds, 3 without Chromium.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
check="$root/scripts/check-html.sh"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/check-html-selftest.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
cp -r "$root/tests/html" "$tmp/html"

failures=0
pass() { echo "check-html-selftest: ok: $*"; }
fail() { echo "check-html-selftest: FAIL: $*" >&2; failures=$((failures + 1)); }

# Runs check-html, keeping its output in $out and its exit status in $rc.
run_check() { rc=0; out="$(bash "$check" "$@" 2>&1)" || rc=$?; }
expect_rc() {  # $1: wanted status, $2: what the case is
  if [ "$rc" -eq "$1" ]; then pass "$2: exit $rc"; else fail "$2: exit $rc, wanted $1"; printf '%s\n' "$out" | sed 's/^/    /' >&2; fi
}
expect_text() {  # $1: text the output must contain, $2: what the case is
  if grep -qF -- "$1" <<< "$out"; then pass "$2"; else fail "$2: no '$1' in:"; printf '%s\n' "$out" | sed 's/^/    /' >&2; fi
}
# Width and height of a PNG, from its IHDR.
png_size() { od -An -tu1 -j16 -N8 -- "$1" | awk '{ print $1*2^24 + $2*2^16 + $3*2^8 + $4, $5*2^24 + $6*2^16 + $7*2^8 + $8 }'; }

run_check --no-screenshot "$tmp/html/good/index.html"
if [ "$rc" -eq 3 ]; then printf '%s\n' "$out" >&2; exit 3; fi  # no Chromium: nothing to test

run_check "$tmp/html/good/index.html"
expect_rc 0 "good page"
expect_text "good/index.html: ok (2 images, 1 link; screenshot" "good page: counts its pictures and its local link"
shot="$tmp/html/good/index.screenshot.png"
if [ -s "$shot" ]; then
  read -r w h < <(png_size "$shot")
  # The page is 1500 px of spacer plus some text: the shot must hold all of it, and no
  # more than a few hundred pixels of it (fonts differ between machines).
  if [ "$w" -eq 1280 ] && [ "$h" -gt 1600 ] && [ "$h" -lt 2200 ]; then pass "good page: screenshot ${w}x${h}"
  else fail "good page: screenshot is ${w}x${h}, wanted 1280 wide and the page's height"; fi
else
  fail "good page: no screenshot at $shot"
fi

run_check --no-screenshot "$tmp/html/bad/index.html"
expect_rc 1 "bad page"
expect_text "bad/index.html: FAIL (4 images, 2 links): 4 problems" "bad page: four problems"
expect_text "broken image missing.png (no such file:" "bad page: names the missing picture"
expect_text "broken image corrupt.png (Chromium cannot decode it)" "bad page: names the corrupt picture"
expect_text "broken image truncated.png (truncated PNG" "bad page: names the truncated picture"
expect_text "broken link a href=missing.csv (no such file:" "bad page: names the missing link"
if grep -qE 'loss\.png|metrics\.csv' <<< "$out"; then fail "bad page: blames a good picture or link:"; printf '%s\n' "$out" >&2
else pass "bad page: blames nothing that works"; fi

run_check --no-screenshot "$tmp/html/good/index.html" "$tmp/html/no-such-page.html"
expect_rc 1 "a good page and a missing one"
expect_text "no-such-page.html: FAIL: no such file" "missing page: named"

rc=0; out="$(CHROMIUM="$tmp/no-chromium" bash "$check" "$tmp/html/good/index.html" 2>&1)" || rc=$?
expect_rc 3 "without Chromium"
expect_text "scripts/install-deps.sh --html" "without Chromium: says how to install it"

if [ "$failures" -gt 0 ]; then echo "check-html-selftest: $failures check(s) failed" >&2; exit 1; fi
echo "check-html-selftest: all checks passed"
