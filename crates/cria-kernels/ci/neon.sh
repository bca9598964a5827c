#!/usr/bin/env bash
# Cross-compiles cria-kernels' tests to aarch64 and runs them under qemu-aarch64 (`-cpu max`: NEON + dotprod),
# so the NEON path is as tested as x86's. Installs what it needs (Debian packages, the rustup target) if missing.
# Usage (from anywhere): bash crates/cria-kernels/ci/neon.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/../../.."

if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross
fi
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    rustup target add aarch64-unknown-linux-gnu
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu max"
# The real-model tests read the models through the emulator too; they stay on unless the caller skips them.
# proptest case counts are lowered under qemu by the tests themselves (cfg target_arch = aarch64).
cargo test -p cria-kernels --target aarch64-unknown-linux-gnu -j 2 "$@"
