#!/usr/bin/env bash
# The installed package from a consumer's side (issue 27): cmake --install into a fresh prefix, build
# examples/embed against that prefix only, train a small Swiss-roll model, and run the example on it.
#   install_and_embed.sh BUILD_DIR SCOREDIFF_BINARY SOURCE_DIR
set -euo pipefail
build=$1 bin=$2 src=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/p" > "$tmp/install.log"
echo "installed headers: $(cd "$tmp/p" && find . -name '*.hpp' | sort | tr '\n' ' ')"
# Only the two public headers go into the prefix: nothing internal can be included by a consumer.
[[ $(find "$tmp/p" -name '*.hpp' | wc -l) -eq 2 ]] || { echo "expected exactly 2 installed headers" >&2; exit 1; }
pkg=$(find "$tmp/p" -name scorediff.pc)
echo "pkg-config: $(PKG_CONFIG_PATH=$(dirname "$pkg") pkg-config --cflags --libs scorediff)"
cmake -S "$src/examples/embed" -B "$tmp/embed" -DCMAKE_PREFIX_PATH="$tmp/p" -DCMAKE_BUILD_TYPE=Release \
  > "$tmp/configure.log" || { cat "$tmp/configure.log"; exit 1; }
cmake --build "$tmp/embed" > "$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
"$bin" train --config swiss-roll --threads 1 --seed 1 --no-sample -q --out "$tmp/run" > /dev/null
"$tmp/embed/embed" "$tmp/run/last.safetensors" swiss-roll 2000
