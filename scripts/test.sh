#!/usr/bin/env bash
# The project's test command: fetch the two reference models if missing (cached in $CRIA_HOME), then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin cria
for model in smollm2-135m-instruct gemma-3-270m; do
    ./target/release/cria pull "$model"
done
cargo test --workspace --release --no-fail-fast
# The forward pass keeps llama.cpp's parity on every forced kernel path, not just the fastest one this CPU has
# (issue 4): parity and batching under AVX2, and batching (which includes the position-0 check against
# llama.cpp) under the scalar reference path, which is slow. The conformance suite (tiny models, well under a
# second) runs under each path too.
if grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
    CRIA_ISA=avx2 cargo test -p cria-model --release --test parity --test batching --test conformance --test moe_batching
fi
# Where the CPU has AVX-VNNI, CRIA_ISA=avx2 runs the VNNI kernels; the plain `maddubs` ones (what a Zen 3 runs)
# need their own pass.
if grep -qw avx_vnni /proc/cpuinfo 2>/dev/null; then
    CRIA_ISA=avx2-novnni cargo test -p cria-model --release --test parity --test batching
    CRIA_ISA=avx2-novnni cargo test -p cria-kernels --release --test packed_order
fi
CRIA_ISA=scalar cargo test -p cria-model --release --test batching --test conformance --test moe_batching
if [ -f tests/openai/run.sh ]; then
    bash tests/openai/run.sh
fi
# The chat page in headless chromium (installs chromium and chromium-driver with apt-get when missing);
# screenshots in target/webui-artifacts.
# The GPU backend on lavapipe (a software Vulkan GPU, installed with apt-get when no adapter is found): op
# tests against the CPU kernels, logit parity with llama.cpp, and `cria serve --device gpu` (docs/GPU.md).
if [ -f tests/gpu/run.sh ]; then
    bash tests/gpu/run.sh
fi
if [ -f tests/webui/run.sh ]; then
    bash tests/webui/run.sh
fi
