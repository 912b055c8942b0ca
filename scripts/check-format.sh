#!/usr/bin/env bash
# scripts/check-format.sh: is every C++ file in the house style (.clang-format)?
#
#   bash scripts/check-format.sh          names each file clang-format would change; exit 1 if any
#   bash scripts/check-format.sh --fix    formats them in place (then look at the diff)
#
# CI runs the check, so the style holds without anyone having to remember it. Where hand
# alignment helps the reader (a table of cases, a matrix), fence it with
# `// clang-format off` ... `// clang-format on`. The notebooks (notebooks-cpp/) are
# laid out as literate programs and keep their own layout (notebooks-cpp/.clang-format).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
command -v "$CLANG_FORMAT" >/dev/null ||
  { echo "check-format: $CLANG_FORMAT not found (Debian: apt-get install clang-format)" >&2; exit 2; }

mapfile -t files < <(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')
if [ "${1:-}" = --fix ]; then
  "$CLANG_FORMAT" -i "${files[@]}"
  echo "check-format: formatted ${#files[@]} files"
  exit 0
fi

bad=()
for f in "${files[@]}"; do
  "$CLANG_FORMAT" --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-format: ${#bad[@]} of ${#files[@]} files are not in the house style (.clang-format):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  echo "check-format: see what would change with: $CLANG_FORMAT FILE | diff FILE -; fix all with: bash scripts/check-format.sh --fix" >&2
  exit 1
fi
echo "check-format: all ${#files[@]} C++ files follow .clang-format"
