#!/usr/bin/env bash
# reproduce/render.sh: fills a page template with measurements.
#
#   bash reproduce/render.sh TEMPLATE PAGE MEASUREMENTS...
#
# MEASUREMENTS are files of `key value` lines (the value is the rest of the line). In the
# template:
#   {{key}}                    the value of key
#   {{a < b ? word1 : word2}}  word1 if the number a is smaller than b, else word2 (also >);
#                              a and b are keys or numbers: a sentence that depends on the
#                              outcome is decided by the measurements, never typed in
# A placeholder whose key has no measurement is an error: the page is not written (the
# previous one stays), and every missing key is named, with its line in the template. (The
# two texts of a comparison hold no ":" themselves: one would be ambiguous, and is an error.)
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: render.sh TEMPLATE PAGE MEASUREMENTS..." >&2
  exit 2
fi
template=$1 page=$2
shift 2
for f in "$template" "$@"; do
  [ -f "$f" ] || { echo "render: $f: no such file" >&2; exit 2; }
done

tmp=$page.tmp
if ! awk -v template="$template" '
  # Measurement files first: key, then the rest of the line.
  FILENAME != template {
    if (NF == 0) next
    key = $1
    sub(/^[^ \t]+[ \t]*/, "")
    value[key] = $0
    next
  }

  # lookup(name): a measurement, or a number written in the template.
  function lookup(name) {
    if (name ~ /^-?[0-9.]+$/) return name
    if (name in value) return value[name]
    missing[++nmissing] = "render: " template ":" FNR ": no measurement for \"" name "\""
    return "?"
  }

  function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }

  # fill(inner): the text of one placeholder (what is between {{ and }}).
  function fill(inner,   q, c, cond, words, op, parts, a, b) {
    q = index(inner, "?")
    if (q == 0) return lookup(trim(inner))
    cond = substr(inner, 1, q - 1)
    words = substr(inner, q + 1)
    c = index(words, ":")
    if (c == 0 || index(substr(words, c + 1), ":") > 0)
      missing[++nmissing] = "render: " template ":" FNR ": a comparison needs one \":\" between its two texts: {{" inner "}}"
    op = cond ~ /</ ? "<" : ">"
    split(cond, parts, op)
    a = lookup(trim(parts[1])); b = lookup(trim(parts[2]))
    if ((op == "<" && a + 0 < b + 0) || (op == ">" && a + 0 > b + 0)) return trim(substr(words, 1, c - 1))
    return trim(substr(words, c + 1))
  }

  {
    line = $0; out = ""
    while ((s = index(line, "{{")) > 0) {
      e = index(substr(line, s + 2), "}}")
      if (e == 0) break
      out = out substr(line, 1, s - 1) fill(substr(line, s + 2, e - 1))
      line = substr(line, s + e + 3)
    }
    print out line
  }

  END {
    for (i = 1; i <= nmissing && i <= 20; ++i) print missing[i] > "/dev/stderr"
    if (nmissing > 20) print "render: ... and " nmissing - 20 " more" > "/dev/stderr"
    if (nmissing > 0) exit 1
  }
' "$@" "$template" > "$tmp"; then
  rm -f "$tmp"
  echo "render: $page not written (see above; make reproduce, or TABLE=... for the tables whose keys are missing)" >&2
  exit 1
fi
mv "$tmp" "$page"
