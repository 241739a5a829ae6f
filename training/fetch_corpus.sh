#!/bin/sh
# Fetch the raw corpus into training/data/raw (not committed).
# Everything comes from Debian packages (binary packages that ship sources,
# and source packages fetched with `apt-get source`) and from the npm
# registry (`npm pack`). Versions are pinned where the registry allows it.
# The apt source lists live in a private directory so the machine's own apt
# configuration is left untouched.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$HERE/data
mkdir -p "$DATA/src" "$DATA/npm" "$DATA/raw"

# Binary packages whose payload is source code (Go/Rust std libraries,
# header-only C++ libraries, a pure-Lua library) + the regex module.
apt-get install -y -q python3-regex golang-1.19-src rust-src lua-penlight \
  nlohmann-json3-dev libfmt-dev rapidjson-dev >/dev/null

# Source packages (orig tarballs) from Debian bookworm.
A=$DATA/apt
mkdir -p "$A/lists/partial" "$A/cache/archives/partial"
echo "deb-src http://deb.debian.org/debian bookworm main" > "$A/sources.list"
APTO="-o Dir::Etc::SourceList=$A/sources.list -o Dir::Etc::SourceParts=/dev/null \
  -o Dir::State::Lists=$A/lists -o Dir::Cache=$A/cache"
apt-get $APTO update -q >/dev/null
cd "$DATA/src"
for p in lua5.4 zlib libuv1 jansson redis libyaml lua-cjson lua-argparse \
         lua-luassert lua-say commons-io jackson-core libcommons-lang3-java jsoup; do
  apt-get $APTO source --download-only -q "$p" >/dev/null 2>&1 || true
done

cd "$DATA/npm"
npm pack --silent typescript@5.4.5 lodash@4.17.21 express@4.19.2 commander@12.0.0 \
  yargs@17.7.2 rxjs@7.8.1 immer@10.1.1 redux@5.0.1 preact@10.22.0 \
  axios@1.7.2 chalk@5.3.0 >/dev/null

cd "$DATA/raw"
for f in ../npm/*.tgz; do n=$(basename "$f" .tgz); mkdir -p "$n"; tar xzf "$f" -C "$n"; done
for f in ../src/*.orig.tar.*; do n=$(basename "$f" | sed 's/_.*//'); mkdir -p "$n"; tar xf "$f" -C "$n"; done
echo "raw corpus in $DATA/raw"
