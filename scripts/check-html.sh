#!/usr/bin/env bash
# scripts/check-html.sh: checks that HTML pages (the index.html of a run folder) really
# render, in headless Chromium, since a page can be well-formed and still show broken
# pictures. For each page it checks that
#   - the page loads;
#   - every <img> decodes in Chromium (complete && naturalWidth > 0), and a local .png
#     also ends with its IEND chunk: Chromium draws a truncated PNG (one half-written
#     while the page was made) without complaint;
#   - every href/src attribute that points to a local file (a relative path, or a
#     file: URL) names something that exists on disk;
# then writes a screenshot of the whole page (1280 px wide, as tall as the page) next
# to it, PAGE.screenshot.png, for a person to look at.
#
#   scripts/check-html.sh [--no-screenshot] PAGE.html|RUN_FOLDER ...
#
# A folder stands for its index.html. Prints one line per page; exits 0 when all pages
# pass, 1 when one fails, 2 on bad usage, 3 when Chromium is missing
# (install it with: bash scripts/install-deps.sh --html). CHROMIUM overrides the binary.
set -euo pipefail

CHROMIUM="${CHROMIUM:-chromium}"
TIMEOUT=60  # seconds for one Chromium run
WIDTH=1280
MAX_HEIGHT=32768  # a cap of ours (Chromium goes higher): beyond it the PNG is huge, the page likely a bug

say() { echo "check-html: $*"; }
plural() { if [ "$1" -eq 1 ]; then echo "1 $2"; else echo "$1 ${2}s"; fi; }
usage() { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

screenshot=1
pages=()
for arg in "$@"; do
  case "$arg" in
    --no-screenshot) screenshot=0 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "check-html: unknown option '$arg' (known: --no-screenshot)" >&2; exit 2 ;;
    *) pages+=("$arg") ;;
  esac
done
if [ ${#pages[@]} -eq 0 ]; then usage >&2; exit 2; fi

if ! command -v "$CHROMIUM" >/dev/null 2>&1; then
  say "error: '$CHROMIUM' not found; install it with: bash scripts/install-deps.sh --html" >&2
  exit 3
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/check-html.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# --no-sandbox: Chromium's sandbox refuses to run as root, and it only ever loads our
# own local pages here. A throw-away profile keeps runs independent of each other and
# of anyone's browser. --disable-dev-shm-usage: containers often have a tiny /dev/shm.
chromium_run() {
  timeout "$TIMEOUT" "$CHROMIUM" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --user-data-dir="$tmp/profile" --no-first-run --disable-extensions --mute-audio \
    --hide-scrollbars "$@" 2>>"$tmp/chromium.log"
}

# Percent-encodes a path for a file:// URL (bytes, whatever the locale).
file_url() {
  local LC_ALL=C s="$1" out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c="${s:i:1}"
    case "$c" in
      [A-Za-z0-9/._~-]) out+="$c" ;;
      *) out+="$(printf '%%%02X' "'$c")" ;;
    esac
  done
  echo "file://$out"
}

# The wrapper's own output is all encodeURIComponent text, so it survives --dump-dom's
# HTML serialisation unchanged; this undoes it.
urldecode() { local s="${1//\\/\\\\}"; printf '%b' "${s//%/\\x}"; }

# The page cannot be edited, so a wrapper page in $tmp loads it in an iframe and
# inspects it from outside; reading a file:// iframe's document needs
# --allow-file-access-from-files (without it contentDocument is null).
# The checks run synchronously in the iframe's load handler, which fires after the
# page's pictures have loaded and before the wrapper's own load event, after which
# --dump-dom serialises the wrapper: so the result is always in the dump (an async
# check, e.g. awaiting img.decode(), loses that race now and then).
# The iframe starts as tall as the tallest screenshot, so that pictures with
# loading=lazy are in view and load with the page; it then shrinks to 1 px so that
# scrollHeight gives the height of the content, not of the viewport.
write_wrapper() {  # $1: the page's file:// URL (percent-encoded: no quotes in it)
  cat > "$tmp/wrapper.html" <<EOF
<!doctype html><meta charset=utf-8>
<pre id=out>pending</pre>
<script>
const enc = encodeURIComponent;
// The file a URL names, or '' when it is not a local file.
function localPath(url, base) {
  try { const u = new URL(url, base); return u.protocol === 'file:' ? decodeURIComponent(u.pathname) : ''; }
  catch (e) { return ''; }
}
const f = document.createElement('iframe');
f.style.cssText = 'width:${WIDTH}px;height:${MAX_HEIGHT}px;border:0';
f.onload = () => {
  const lines = [];
  try {
    const d = f.contentDocument;
    lines.push('PAGE ' + (enc(localPath(d.URL)) || '-') + ' ' + d.readyState);
    for (const img of d.images) {
      // complete is also true for a picture that failed; false: never even tried.
      const state = !img.complete ? 'unloaded' : img.naturalWidth > 0 ? 'ok' : 'broken';
      const src = img.getAttribute('src');
      lines.push(['IMG', state, enc(src === null ? '(no src)' : src),
                  enc(src ? localPath(src, d.baseURI) : '') || '-'].join(' '));
    }
    for (const el of d.querySelectorAll('[href], [src]')) {
      if (el.tagName === 'IMG' || el.tagName === 'BASE') continue;  // images: above; base: not a target
      for (const attr of ['href', 'src']) {
        const v = el.getAttribute(attr);
        if (!v || v.startsWith('#')) continue;  // nothing to find on disk
        const p = localPath(v, d.baseURI);
        if (p) lines.push(['REF', enc(el.tagName.toLowerCase() + ' ' + attr + '=' + v), enc(p)].join(' '));
      }
    }
    f.style.height = '1px';
    lines.push('HEIGHT ' + Math.ceil(d.documentElement.scrollHeight));
  } catch (e) {
    lines.push('ERROR ' + enc(String(e)));
  }
  document.getElementById('out').textContent = lines.join('\n');
};
f.src = '$1';
document.body.appendChild(f);
</script>
EOF
}

# A PNG ends with the 12 bytes of an empty IEND chunk.
png_complete() { [ "$(tail -c 12 -- "$1" | od -An -tx1 | tr -d ' \n')" = "0000000049454e44ae426082" ]; }

check_page() {  # $1: page path as given; prints its line, returns 1 when it fails
  local page="$1" abs url problems=() nimg=0 nref=0 height=0 loaded=0
  [ -d "$page" ] && page="${page%/}/index.html"
  if [ ! -f "$page" ]; then say "$page: FAIL: no such file"; return 1; fi
  abs="$(cd "$(dirname -- "$page")" && pwd -P)/$(basename -- "$page")"
  url="$(file_url "$abs")"
  write_wrapper "$url"

  : > "$tmp/chromium.log"
  local rc=0 report
  chromium_run --allow-file-access-from-files --dump-dom "$(file_url "$tmp/wrapper.html")" > "$tmp/dom.html" || rc=$?
  report="$(sed -n '/<pre id="out">/,/<\/pre>/p' "$tmp/dom.html" | sed 's/<[^>]*>//g')"

  local kind a b c path
  while read -r kind a b c; do
    case "$kind" in
      PAGE)
        # An iframe shows Chromium's error page, not ours, when the file cannot be read.
        if [ "$(urldecode "$a")" = "$abs" ] && [ "$b" = complete ]; then loaded=1; fi ;;
      IMG)
        nimg=$((nimg + 1))
        path="$(urldecode "$c")"
        if [ "$a" = unloaded ]; then
          problems+=("image $(urldecode "$b") did not load with the page (loading=lazy, more than ${MAX_HEIGHT}px down?)")
        elif [ "$a" != ok ]; then
          if [ "$c" != - ] && [ ! -e "$path" ]; then
            problems+=("broken image $(urldecode "$b") (no such file: $path)")
          else
            problems+=("broken image $(urldecode "$b") (Chromium cannot decode it)")
          fi
        elif [ "$c" != - ] && [[ "${path,,}" == *.png ]] && ! png_complete "$path"; then
          problems+=("broken image $(urldecode "$b") (truncated PNG: no IEND chunk at the end)")
        fi ;;
      REF)
        nref=$((nref + 1))
        path="$(urldecode "$b")"
        [ -e "$path" ] || problems+=("broken link $(urldecode "$a") (no such file: $path)") ;;
      HEIGHT) height="$a" ;;
      ERROR) problems+=("the checking script failed: $(urldecode "$a")") ;;
    esac
  done <<< "$report"

  if [ "$loaded" -eq 0 ]; then
    if [ "$rc" -eq 124 ]; then
      say "$page: FAIL: the page did not load in Chromium within $TIMEOUT s (a script that never ends?)"
      return 1
    fi
    say "$page: FAIL: the page did not load in Chromium (exit status $rc)"
    # Without a D-Bus (a container, a server) Chromium complains about it at every start.
    grep -v 'dbus/' "$tmp/chromium.log" | tail -n 5 | sed 's/^/  chromium: /' || true
    return 1
  fi

  local shot="" note=""
  if [ "$screenshot" -eq 1 ]; then
    local name="${page##*/}"
    shot="$(dirname -- "$page")/${name%.*}.screenshot.png"
    [ "$height" -ge 1 ] 2>/dev/null || height=800
    if [ "$height" -gt "$MAX_HEIGHT" ]; then note=", cut at ${MAX_HEIGHT}px of ${height}"; height=$MAX_HEIGHT; fi
    rm -f -- "$shot"
    # The budget lets what the page starts at load (timers, transitions) run before the shot.
    chromium_run --virtual-time-budget=1000 --window-size="$WIDTH,$height" \
      --screenshot="$(cd "$(dirname -- "$shot")" && pwd -P)/$(basename -- "$shot")" "$url" >/dev/null || true
    [ -s "$shot" ] || problems+=("Chromium wrote no screenshot $shot")
  fi

  local counts
  counts="$(plural "$nimg" image), $(plural "$nref" link)"
  if [ ${#problems[@]} -gt 0 ]; then
    say "$page: FAIL ($counts): $(plural ${#problems[@]} problem)"
    printf '  %s\n' "${problems[@]}"
    return 1
  fi
  say "$page: ok ($counts${shot:+; screenshot $shot$note})"
}

status=0
for p in "${pages[@]}"; do
  check_page "$p" || status=1
done
exit $status
